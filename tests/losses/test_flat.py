"""Each scheme against a hand computation and the reference identities (METHODS.md section 1)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tailsweep.datasets import LabelStats
from tailsweep.losses import (
    SCHEMES,
    build_loss,
    effective_number_weights,
    inverse_frequency_weights,
)

STATS = LabelStats.from_counts([80, 15, 4, 0], n_train=100)
torch.manual_seed(0)
Z = torch.randn(6, 4) * 2
Y = (torch.rand(6, 4) > 0.5).float()


def bce(z, y):
    p = 1 / (1 + math.exp(-z))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def hand_weighted(wp, wn):
    total = 0.0
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            z, y = float(Z[i, j]), float(Y[i, j])
            p = 1 / (1 + math.exp(-z))
            total += -(wp[j] * y * math.log(p) + wn[j] * (1 - y) * math.log(1 - p))
    return total / Z.numel()


def test_unweighted_is_pytorch_bce():
    loss = build_loss("unweighted", STATS)
    assert torch.allclose(loss(Z, Y), F.binary_cross_entropy_with_logits(Z, Y))


def test_inverse_frequency_by_hand():
    # n = 80, 15, 4 (and 0 -> weight 1); 1/n normalised to mean 1 over labels with positives
    raw = np.array([1 / 80, 1 / 15, 1 / 4])
    w = list(raw / raw.mean()) + [1.0]
    assert np.allclose(inverse_frequency_weights(STATS.counts), w)
    loss = build_loss("inverse_frequency", STATS)
    assert loss(Z, Y).item() == pytest.approx(hand_weighted(w, [1, 1, 1, 1]), rel=1e-5)
    clipped = build_loss("inverse_frequency", STATS, max_weight=1.5).pos_weight
    assert clipped.max().item() == pytest.approx(1.5)


def test_sqrt_inverse_frequency_by_hand():
    raw = np.array([80, 15, 4]) ** -0.5
    w = list(raw / raw.mean()) + [1.0]
    loss = build_loss("sqrt_inverse_frequency", STATS)
    assert loss(Z, Y).item() == pytest.approx(hand_weighted(w, [1, 1, 1, 1]), rel=1e-5)


def test_pos_weight_matches_pytorch():
    pw = torch.tensor([20 / 80, 85 / 15, 96 / 4, 1.0])
    ref = torch.nn.BCEWithLogitsLoss(pos_weight=pw)(Z, Y)
    assert torch.allclose(build_loss("pos_weight", STATS)(Z, Y), ref, rtol=1e-5)


def test_effective_number_by_hand_and_limits():
    beta = 0.9
    pos = np.array([(1 - beta) / (1 - beta**n) for n in (80, 15, 4)])
    neg = np.array([(1 - beta) / (1 - beta**n) for n in (20, 85, 96, 100)])
    wp = list(pos / pos.mean()) + [1.0]
    wn = neg / neg.mean()
    got_p, got_n = effective_number_weights(STATS.counts, 100, beta)
    assert np.allclose(got_p, wp) and np.allclose(got_n, wn)
    loss = build_loss("effective_number", STATS, beta=beta)
    assert loss(Z, Y).item() == pytest.approx(hand_weighted(wp, wn), rel=1e-5)
    # beta = 0 is unweighted; beta -> 1 approaches inverse frequency on positives
    assert torch.allclose(build_loss("effective_number", STATS, beta=0.0)(Z, Y), F.binary_cross_entropy_with_logits(Z, Y))
    near_one, _ = effective_number_weights(STATS.counts, 100, 1 - 1e-9)
    assert np.allclose(near_one, inverse_frequency_weights(STATS.counts), rtol=1e-4)
    with pytest.raises(ValueError, match="beta"):
        effective_number_weights(STATS.counts, 100, 1.0)


def test_focal_by_hand_and_gamma_zero():
    gamma, alpha = 2.0, 0.25
    total = 0.0
    for z, y in zip(Z.ravel().tolist(), Y.ravel().tolist(), strict=True):
        p = 1 / (1 + math.exp(-z))
        pt = p if y else 1 - p
        at = alpha if y else 1 - alpha
        total += at * (1 - pt) ** gamma * bce(z, y)
    assert build_loss("focal", STATS)(Z, Y).item() == pytest.approx(total / Z.numel(), rel=1e-5)
    plain = build_loss("focal", STATS, gamma=0.0, alpha=None)
    assert torch.allclose(plain(Z, Y), F.binary_cross_entropy_with_logits(Z, Y))


def test_asymmetric_by_hand_and_reduction():
    gp, gn, m = 1.0, 4.0, 0.05
    total = 0.0
    for z, y in zip(Z.ravel().tolist(), Y.ravel().tolist(), strict=True):
        p = 1 / (1 + math.exp(-z))
        if y:
            total += -((1 - p) ** gp) * math.log(p)
        else:
            pm = max(p - m, 0.0)
            total += -(pm**gn) * math.log(1 - pm)
    loss = build_loss("asymmetric", STATS, gamma_pos=gp, gamma_neg=gn, clip=m)
    assert loss(Z, Y).item() == pytest.approx(total / Z.numel(), rel=1e-5)
    plain = build_loss("asymmetric", STATS, gamma_pos=0.0, gamma_neg=0.0, clip=0.0)
    assert torch.allclose(plain(Z, Y), F.binary_cross_entropy_with_logits(Z, Y), rtol=1e-5)


@pytest.mark.parametrize("name", [n for n, i in SCHEMES.items() if not i.needs_hierarchy])
def test_every_scheme_is_finite_mean_and_differentiable(name):
    loss_fn = build_loss(name, STATS)
    z = (torch.randn(5, 4) * 30).requires_grad_()  # extreme logits
    for y in (torch.zeros(5, 4), torch.ones(5, 4), (torch.rand(5, 4) > 0.5).float()):
        out = loss_fn(z, y)
        assert out.ndim == 0 and torch.isfinite(out)
    out.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    # mean, not sum: doubling the batch with a copy leaves the loss unchanged
    zz = torch.randn(3, 4)
    yy = (torch.rand(3, 4) > 0.5).float()
    assert torch.allclose(loss_fn(zz, yy), loss_fn(torch.cat([zz, zz]), torch.cat([yy, yy])), rtol=1e-5)


def test_weights_are_buffers_that_move_and_checkpoint():
    loss = build_loss("effective_number", STATS)
    names = dict(loss.named_buffers())
    assert set(names) == {"pos_weight", "neg_weight"}
    assert set(loss.state_dict()) == {"pos_weight", "neg_weight"}
    assert loss.to(torch.float64).pos_weight.dtype == torch.float64
