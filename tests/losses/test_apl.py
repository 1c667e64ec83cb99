"""apl (asymmetric polynomial loss) against hand computations (docs/methods.md, section 1)."""

import math

import pytest
import torch
import torch.nn.functional as F

from tailsweep.datasets import LabelStats
from tailsweep.losses import SCHEMES, build_loss

STATS = LabelStats.from_counts([3, 1], n_train=4)


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def hand_apl(x, y, gp=0.0, gn=4.0, m=0.05, e1=1.0, e2=-2.5, e0=0.0):
    """Mean over elements of APL from its definition, in plain Python."""
    total = 0.0
    for xi, yi in zip(x, y, strict=True):
        for v, t in zip(xi, yi, strict=True):
            p = sigmoid(v)
            if t:
                total -= (1 - p) ** gp * (math.log(p) + e1 * (1 - p) + e2 / 2 * (1 - p) ** 2)
            else:
                q = min(1 - p + m, 1.0)
                total -= (1 - q) ** gn * (math.log(q) + e0 * q)
    return total / sum(len(r) for r in x)


def test_apl_defaults_at_logit_zero_by_hand():
    # p = 0.5. Positive: -(log 0.5 + 0.5 - 1.25 * 0.25) = 0.5056472; negative: q = 0.55, weight 0.45^4,
    # -(0.45^4) log 0.55 = 0.0245149; mean of the two
    got = build_loss("apl", STATS)(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert got.item() == pytest.approx((0.5056472 + 0.0245149) / 2, rel=1e-5)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.1},
        {"clip": 0.0, "epsilon_pos": -0.5, "epsilon_pos2": 1.0, "epsilon_neg": 0.7},
        {"gamma_neg": 0.0, "epsilon_neg": -0.3},
    ],
)
def test_apl_by_hand(params):
    x = [[2.0, -1.5], [0.3, 0.04], [-3.0, 4.0]]
    y = [[1, 0], [0, 1], [1, 0]]
    names = ("gamma_pos", "gamma_neg", "clip", "epsilon_pos", "epsilon_pos2", "epsilon_neg")
    defaults = dict(zip(names, (0.0, 4.0, 0.05, 1.0, -2.5, 0.0), strict=True))
    want = hand_apl(x, y, *(defaults | params).values())
    got = build_loss("apl", STATS, **params)(torch.tensor(x), torch.tensor(y, dtype=torch.float32))
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_apl_reduces_to_asl_and_bce():
    z, y = torch.randn(6, 2) * 3, (torch.rand(6, 2) > 0.5).float()
    no_poly = {"epsilon_pos": 0.0, "epsilon_pos2": 0.0, "epsilon_neg": 0.0}
    asl = build_loss("asymmetric", STATS, gamma_pos=1.0, gamma_neg=3.0, clip=0.05)
    assert torch.allclose(build_loss("apl", STATS, gamma_pos=1.0, gamma_neg=3.0, **no_poly)(z, y), asl(z, y))
    plain = build_loss("apl", STATS, gamma_neg=0.0, clip=0.0, **no_poly)
    assert torch.allclose(plain(z, y), F.binary_cross_entropy_with_logits(z, y), rtol=1e-5)


def test_apl_focusing_weight_has_no_gradient():
    """One negative at x = 1: with the weight w = p_m^4 detached, d loss / dx = w p (1 - p) / q (only the log
    term is differentiated), as the authors' code computes it."""
    z = torch.tensor([[1.0]], requires_grad=True)
    build_loss("apl", LabelStats.from_counts([1], n_train=2))(z, torch.zeros(1, 1)).backward()
    p = sigmoid(1.0)
    q = 1 - p + 0.05
    assert z.grad.item() == pytest.approx((p - 0.05) ** 4 * p * (1 - p) / q, rel=1e-5)


def test_apl_keeps_a_gradient_for_a_saturated_positive():
    # the authors' code clamps p at 1e-8 before the log: a positive at x = -30 would get no gradient there
    z = torch.tensor([[-30.0]], requires_grad=True)
    build_loss("apl", LabelStats.from_counts([1], n_train=2))(z, torch.ones(1, 1)).backward()
    assert z.grad.item() < -0.5


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"gamma_neg": -1.0}, "gamma_neg"),
        ({"clip": 1.0}, "clip"),
        ({"epsilon_pos": float("nan")}, "epsilon_pos"),
        ({"epsilon_neg": float("inf")}, "epsilon_neg"),
    ],
)
def test_apl_invalid_params_are_named(params, key):
    with pytest.raises(ValueError, match=key):
        build_loss("apl", STATS, **params)
    with pytest.raises(ValueError, match=key):
        SCHEMES["apl"].loss_class.from_label_stats(STATS, **params)
