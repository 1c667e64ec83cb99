"""node_imbalance_focal, its uncertainty modes, schedules and mixed loss, by hand on the 5-node DAG."""

import math

import numpy as np
import pytest
import torch

from tailsweep.losses import (
    UNCERTAINTIES,
    build_loss,
    ensemble_coherent,
    node_imbalance_weights,
    schedule_fraction,
    uncertainty,
)
from tests.losses.test_hierarchy import STATS


def h2(q):
    return -(q * math.log2(q) + (1 - q) * math.log2(1 - q))


P = torch.tensor([0.9, 0.6, 0.2])  # three heads, one sample, one node


def test_uncertainty_modes_by_hand():
    p = P.view(3, 1, 1)
    mean = (0.9 + 0.6 + 0.2) / 3
    assert uncertainty(p, "margin").item() == pytest.approx(1 - abs(2 * mean - 1), abs=1e-6)
    assert uncertainty(p, "entropy").item() == pytest.approx(h2(mean), abs=1e-6)
    assert uncertainty(p, "aleatoric").item() == pytest.approx(np.mean([h2(q) for q in (0.9, 0.6, 0.2)]), abs=1e-6)
    pairs = [(0.9, 0.6), (0.9, 0.2), (0.6, 0.2)]
    js = np.mean([h2((a + b) / 2) - (h2(a) + h2(b)) / 2 for a, b in pairs])
    assert uncertainty(p, "epistemic").item() == pytest.approx(js, abs=1e-6)
    m, s = abs(2 * mean - 1), float(np.std([0.9, 0.6, 0.2], ddof=1))
    assert uncertainty(p, "gated_margin").item() == pytest.approx(1 - (1 - math.exp(-m / (2 * s))) * m, abs=1e-6)


@pytest.mark.parametrize("mode", UNCERTAINTIES)
def test_uncertainty_in_unit_interval_and_zero_when_heads_agree_confidently(mode):
    p = torch.rand(4, 8, 6)
    u = uncertainty(p, mode)
    assert u.shape == (8, 6) and (u >= 0).all() and (u <= 1 + 1e-6).all()
    sure = torch.full((4, 2, 3), 1 - 1e-6)
    assert uncertainty(sure, mode).max().item() < 1e-3


def test_disagreement_modes_need_two_heads():
    for mode in ("epistemic", "gated_margin"):
        with pytest.raises(ValueError, match=f"uncertainty '{mode}' measures disagreement.*heads = 1 has none"):
            build_loss("node_imbalance_focal", STATS, heads=1, uncertainty=mode)
    build_loss("node_imbalance_focal", STATS, heads=1, uncertainty="margin")  # fine: no disagreement needed


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="parameter .uncertainty. must be one of margin, entropy"):
        build_loss("node_imbalance_focal", STATS, uncertainty="variance")
    with pytest.raises(ValueError, match="'heads' must be a whole number >= 1, got 2.5"):
        build_loss("node_imbalance_focal", STATS, heads=2.5)
    with pytest.raises(ValueError, match=r"'mix' must be in \[0, 1\], got 1.5"):
        build_loss("node_imbalance", STATS, mix=1.5)
    with pytest.raises(ValueError, match="parameter .schedule. must be one of none, linear"):
        build_loss("node_imbalance", STATS, schedule="cosine")


def _mcloss_h(p, y):
    """mcloss outputs on the DAG a->b,c; b,c->d; b->e by hand."""
    yp = [a * b for a, b in zip(y, p, strict=True)]
    desc = [[0, 1, 2, 3, 4], [1, 3, 4], [2, 3], [3], [4]]
    return [max(yp[d] for d in ds) if y[j] else max(p[d] for d in ds) for j, ds in enumerate(desc)]


@pytest.mark.parametrize("mode", ["margin", "gated_margin"])
def test_node_imbalance_focal_by_hand(mode):
    z = torch.tensor([[[0.3, -1.0, 0.5, 2.0, -0.7]], [[-0.2, 0.4, 0.1, 1.0, 0.9]]])  # 2 heads, 1 sample
    y = [1, 1, 0, 0, 1]
    w = node_imbalance_weights(STATS, 0.25)
    p = torch.sigmoid(z)[:, 0].tolist()
    terms = []
    for j in range(5):
        pj = [p[0][j], p[1][j]]
        mean = sum(pj) / 2
        if mode == "margin":
            u = 1 - abs(2 * mean - 1)
        else:
            m, s = abs(2 * mean - 1), float(np.std(pj, ddof=1))
            u = 1 - (1 - math.exp(-m / (2 * s + 1e-10))) * m
        factor = 0.25 + u**2  # f_min = 0.25, k = 2
        for head in range(2):
            hj = _mcloss_h(p[head], y)[j]
            bce = -math.log(hj) if y[j] else -math.log(1 - hj)
            terms.append((1.0 if y[j] else w[j]) * factor * bce)  # w' on negatives (the authors' code)
    loss = build_loss("node_imbalance_focal", STATS, heads=2, uncertainty=mode, k=2)
    # summed over heads, batch and nodes (the authors' focal script); the mean is the other reading
    assert loss(z, torch.tensor([y], dtype=torch.float32)).item() == pytest.approx(np.sum(terms), rel=1e-5)
    mean = build_loss("node_imbalance_focal", STATS, heads=2, uncertainty=mode, k=2, reduction="mean")
    assert mean(z, torch.tensor([y], dtype=torch.float32)).item() == pytest.approx(np.mean(terms), rel=1e-5)


def _one_adam_step(reduction: str, weight_decay: float) -> list[torch.Tensor]:
    torch.manual_seed(0)
    net = torch.nn.Linear(6, 5 * 2)
    x, y = torch.randn(4, 6), (torch.rand(4, 5) > 0.5).float()
    loss_fn = build_loss("node_imbalance_focal", STATS, heads=2, reduction=reduction)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=weight_decay)
    loss_fn(net(x).view(4, 2, 5).transpose(0, 1), y).backward()
    opt.step()
    return [p.detach().clone() for p in net.parameters()]


def test_sum_with_weight_decay_equals_mean_with_decay_divided_by_m_b_c():
    # Adam's coupled weight decay adds wd * theta to the gradient. Under the sum the loss gradient is
    # M*B*C' = 2*4*5 = 40 times the mean's, so sum with wd equals mean with wd / 40 (the whole gradient is
    # scaled by 40, which Adam's step ignores but for eps). One step: |diff| <= lr * eps / |g| per parameter,
    # here < 1e-7 (g ~ 1e-2 .. 1e-1 under the mean, eps = 1e-8, lr = 1e-3): assert 1e-6.
    wd, scale = 0.1, 2 * 4 * 5
    summed = _one_adam_step("sum", wd)
    mean_scaled = _one_adam_step("mean", wd / scale)
    for a, b in zip(summed, mean_scaled, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    # and the same decay under the mean is a different (over-regularised) step
    mean_same = _one_adam_step("mean", wd)
    assert any(not torch.allclose(a, b, atol=1e-5, rtol=0) for a, b in zip(summed, mean_same, strict=True))


def test_uncertainty_is_detached_and_heads_get_gradients():
    loss = build_loss("node_imbalance_focal", STATS, heads=3, uncertainty="epistemic")
    z = torch.randn(3, 4, 5, requires_grad=True)
    loss(z, (torch.rand(4, 5) > 0.5).float()).backward()
    assert z.grad is not None and (z.grad.abs().sum((1, 2)) > 0).all()


def test_prediction_is_the_mean_of_coherent_probabilities():
    loss = build_loss("node_imbalance_focal", STATS, heads=2)
    z = torch.randn(2, 3, 5)
    expected = (loss.hierarchy.mcm(torch.sigmoid(z[0])) + loss.hierarchy.mcm(torch.sigmoid(z[1]))) / 2
    assert torch.allclose(ensemble_coherent(z, loss.hierarchy), expected)
    out = ensemble_coherent(z, loss.hierarchy)
    for child, parent in [(1, 0), (2, 0), (3, 1), (3, 2), (4, 1)]:
        assert (out[:, parent] >= out[:, child]).all()


def test_schedules():
    assert [schedule_fraction("linear", i, 5) for i in range(5)] == [0, 0.25, 0.5, 0.75, 1]
    assert schedule_fraction("exponential", 2, 5) == pytest.approx(0.5**3)
    assert schedule_fraction("exponential", 2, 5, power=2) == pytest.approx(0.5**2)
    assert [schedule_fraction("alternate", i, 4) for i in range(4)] == [0, 1, 0, 1]
    assert schedule_fraction("none", 3, 5) == 0
    loss = build_loss("node_imbalance", STATS, schedule="linear")
    ones, w = torch.ones(5), loss.node_weight
    loss.set_progress(0, 5)  # first minibatch: w' on negatives, 1 on positives
    pos, neg = loss.target_weights()
    assert torch.allclose(pos, ones) and torch.allclose(neg, w)
    loss.set_progress(4, 5)  # last minibatch: both target weights at the uniform omega
    pos, neg = loss.target_weights()
    assert torch.allclose(pos, torch.full((5,), 0.25)) and torch.allclose(neg, torch.full((5,), 0.25))
    loss.set_progress(2, 5)
    pos, neg = loss.target_weights()
    assert torch.allclose(pos, (ones + 0.25) / 2) and torch.allclose(neg, (w + 0.25) / 2)
    # at the end of an epoch the loss is a uniformly scaled mcloss
    z, y = torch.randn(4, 5), (torch.rand(4, 5) > 0.4).float()
    loss.set_progress(4, 5)
    assert loss(z, y).item() == pytest.approx(0.25 * build_loss("mcloss", STATS)(z, y).item(), rel=1e-6)
    expo = build_loss("node_imbalance", STATS, schedule="exponential", schedule_power=2)
    expo.set_progress(2, 5)
    assert torch.allclose(expo.target_weights()[1], w + (0.25 - w) * 0.25)
    with pytest.raises(ValueError, match="schedule_power"):
        build_loss("node_imbalance", STATS, schedule_power=0)


def test_mixed_loss_blends_weighted_and_unweighted():
    z, y = torch.randn(4, 5), (torch.rand(4, 5) > 0.4).float()
    weighted = build_loss("node_imbalance", STATS)(z, y)
    plain = build_loss("mcloss", STATS)(z, y)
    mixed = build_loss("node_imbalance", STATS, mix=0.3)(z, y)
    assert mixed.item() == pytest.approx(0.3 * weighted.item() + 0.7 * plain.item(), rel=1e-6)
