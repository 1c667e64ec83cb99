"""Each scheme against a hand computation and the reference identities (docs/methods.md section 1)."""

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
    assert torch.allclose(
        build_loss("effective_number", STATS, beta=0.0)(Z, Y), F.binary_cross_entropy_with_logits(Z, Y)
    )
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


def test_focal_gamma_below_one_has_finite_gradients_at_saturated_logits():
    # (1 - p_t)^0.5 has an infinite derivative where 1 - p_t underflows to 0 (a confident right answer at
    # |z| = 30): the loss computes it as exp(gamma log(1 - p_t)), which stays finite
    z = torch.tensor([[30.0, -30.0, 30.0, -30.0]], requires_grad=True)
    y = torch.tensor([[1.0, 0.0, 0.0, 1.0]])  # two saturated right answers, two saturated wrong ones
    loss = build_loss("focal", LabelStats.from_counts([5, 5, 5, 5], n_train=10), gamma=0.5)
    value = loss(z, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(z.grad).all()
    assert z.grad[0, 2] > 0 and z.grad[0, 3] < 0  # the wrong answers are pushed back
    # the same value as the textbook formula where that one is finite
    zz = torch.tensor([[0.3, -1.2, 2.0, -0.4]])
    p = torch.sigmoid(zz)
    pt = p * y + (1 - p) * (1 - y)
    at = 0.25 * y + 0.75 * (1 - y)
    textbook = (at * (1 - pt) ** 0.5 * F.binary_cross_entropy_with_logits(zz, y, reduction="none")).mean()
    assert loss(zz, y).item() == pytest.approx(textbook.item(), rel=1e-5)


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
    if name == "two_way":  # its class way is over the batch's rows (test_softmax.py shows how it grows)
        return
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


# --- distribution_balanced, logit_adjusted and the focal modifier -------------------------------
# Rows of the hand examples: a row with two positives (labels 1 and 2), a row with none (r-hat = 1
# there by definition), a row with one positive, and a row whose only positive is the unseen label 3.
Y_DB = torch.tensor([[0.0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [1, 1, 0, 0], [0, 1, 0, 0]])
Z_DB = Z[:, :4].clone()
COUNTS, N = [80, 15, 4, 0], 100


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def softplus(x):
    return math.log1p(math.exp(x))


def hand_db(z, y, alpha=0.1, beta=10.0, mu=0.2, lam=2.0, kappa=0.05, gamma=None, bias="code"):
    """distribution_balanced from its definitions, in plain Python, per element then the mean."""
    total, count = 0.0, 0
    for zi, yi in zip(z.tolist(), y.tolist(), strict=True):
        p_inst = sum(1 / n for n, yk in zip(COUNTS, yi, strict=True) if yk and n > 0)
        for j, (zz, yy) in enumerate(zip(zi, yi, strict=True)):
            n = COUNTS[j]
            r_hat = alpha + sigmoid(beta * ((1 / n) / p_inst - mu)) if p_inst > 0 and n > 0 else 1.0
            prior = -kappa * math.log(N / n - 1) if 0 < n < N else 0.0
            # the authors' code adds b = prior / lam; the paper's reading subtracts nu = prior
            zs = zz + prior / lam if bias == "code" else zz - prior
            term = softplus(-zs) if yy else softplus(lam * zs) / lam
            if gamma is not None:
                p = sigmoid(zs)
                term *= (1 - (p if yy else 1 - p)) ** gamma
            total += r_hat * term
            count += 1
    return total / count


def hand_la(z, y, tau, gamma=None):
    total, count = 0.0, 0
    for zi, yi in zip(z.tolist(), y.tolist(), strict=True):
        for j, (zz, yy) in enumerate(zip(zi, yi, strict=True)):
            n = COUNTS[j]
            zs = zz + (tau * math.log(n / (N - n)) if 0 < n < N else 0.0)
            p = sigmoid(zs)
            term = bce(zs, yy)
            if gamma is not None:
                term *= (1 - (p if yy else 1 - p)) ** gamma
            total += term
            count += 1
    return total / count


def test_distribution_balanced_rebalancing_by_hand():
    loss = build_loss("distribution_balanced", STATS)
    r_hat = loss.rebalance_weight(Y_DB)
    # row 0, positives 1 (n=15) and 2 (n=4): P^I = 1/15 + 1/4 = 19/60
    r = [(1 / 80) / (19 / 60), (1 / 15) / (19 / 60), (1 / 4) / (19 / 60)]
    assert r == pytest.approx([3 / 76, 4 / 19, 15 / 19])
    want = [0.1 + sigmoid(10 * (x - 0.2)) for x in r] + [1.0]  # label 3 has n = 0: r-hat 1
    assert r_hat[0].tolist() == pytest.approx(want, rel=1e-6)
    assert r_hat[1].tolist() == [1.0] * 4  # no positives: r-hat 1 for the whole row
    # one positive of label 0: r = n_0 / n_j
    assert r_hat[2].tolist() == pytest.approx([0.1 + sigmoid(10 * (80 / n - 0.2)) for n in (80, 15, 4)] + [1.0])
    assert r_hat[3].tolist() == [1.0] * 4  # only an unseen label positive: P^I = 0
    # added to z: b_j = -kappa log(N/n_j - 1) / lam (the authors' code); 0 for n_j = 0 (and n_j = N)
    b = [-0.05 * math.log(100 / n - 1) / 2.0 for n in (80, 15, 4)] + [0.0]
    assert loss.shift.tolist() == pytest.approx(b, rel=1e-6)
    full = LabelStats.from_counts([100, 50], n_train=100)
    assert build_loss("distribution_balanced", full).shift.tolist() == [0.0, 0.0]


def test_distribution_balanced_direction_follows_the_authors_code():
    # label 2 is rare (n = 4 of 100): its logit is *lowered* inside the loss (b < 0), so a negative of it
    # costs less than under plain BCE and a positive more; label 0 is frequent (80): raised
    code = build_loss("distribution_balanced", STATS, lam=1.0, alpha=1.0, beta=0.0)
    assert code.shift[2].item() < 0 < code.shift[0].item()
    paper = build_loss("distribution_balanced", STATS, lam=1.0, alpha=1.0, beta=0.0, bias="paper")
    assert paper.shift[2].item() > 0 > paper.shift[0].item()  # the other reading: the opposite direction
    with pytest.raises(ValueError, match="bias. must be one of code, paper"):
        build_loss("distribution_balanced", STATS, bias="sideways")


def test_distribution_balanced_loss_by_hand():
    loss = build_loss("distribution_balanced", STATS)
    assert loss(Z_DB, Y_DB).item() == pytest.approx(hand_db(Z_DB, Y_DB), rel=1e-5)
    params = {"alpha": 0.5, "beta": 3.0, "mu": 0.1, "lam": 5.0, "kappa": 0.2}
    loss = build_loss("distribution_balanced", STATS, **params)
    assert loss(Z_DB, Y_DB).item() == pytest.approx(hand_db(Z_DB, Y_DB, **params), rel=1e-5)
    focal = build_loss("distribution_balanced", STATS, focal_gamma=2.0)
    assert focal(Z_DB, Y_DB).item() == pytest.approx(hand_db(Z_DB, Y_DB, gamma=2.0), rel=1e-5)
    table = loss.weight_table()
    assert set(table) == {"inv_freq", "logit_shift"} and all(len(v) == 4 for v in table.values())
    paper = build_loss("distribution_balanced", STATS, bias="paper")
    assert paper(Z_DB, Y_DB).item() == pytest.approx(hand_db(Z_DB, Y_DB, bias="paper"), rel=1e-5)
    assert table["inv_freq"] == pytest.approx([1 / 80, 1 / 15, 1 / 4, 0.0])


def test_distribution_balanced_reduces_to_bce():
    # alpha = 1, beta = 0 -> r-hat = 1.5 everywhere defined; kappa = 0, lam = 1 -> plain BCE terms.
    loss = build_loss("distribution_balanced", STATS, alpha=1.0, beta=0.0, kappa=0.0, lam=1.0)
    r_hat = loss.rebalance_weight(Y_DB)
    per = F.binary_cross_entropy_with_logits(Z_DB, Y_DB, reduction="none")
    assert torch.allclose(loss(Z_DB, Y_DB), (r_hat * per).mean())
    assert set(r_hat.unique().tolist()) == {1.0, 1.5}


def test_logit_adjusted_by_hand_and_tau_zero():
    for tau in (1.0, 0.5):
        loss = build_loss("logit_adjusted", STATS, tau=tau)
        assert loss(Z_DB, Y_DB).item() == pytest.approx(hand_la(Z_DB, Y_DB, tau), rel=1e-5)
    shift = build_loss("logit_adjusted", STATS).weight_table()["logit_shift"]
    assert shift == pytest.approx([math.log(80 / 20), math.log(15 / 85), math.log(4 / 96), 0.0], rel=1e-6)
    plain = build_loss("logit_adjusted", STATS, tau=0.0)
    assert torch.allclose(plain(Z, Y), build_loss("unweighted", STATS)(Z, Y))
    assert torch.allclose(plain(Z, Y), F.binary_cross_entropy_with_logits(Z, Y))
    focal = build_loss("logit_adjusted", STATS, tau=0.5, focal_gamma=2.0)
    assert focal(Z_DB, Y_DB).item() == pytest.approx(hand_la(Z_DB, Y_DB, 0.5, gamma=2.0), rel=1e-5)


FOCAL_SCHEMES = [
    "unweighted",
    "inverse_frequency",
    "sqrt_inverse_frequency",
    "pos_weight",
    "effective_number",
    "distribution_balanced",
    "logit_adjusted",
]


@pytest.mark.parametrize("name", FOCAL_SCHEMES)
def test_focal_modifier_gamma_zero_is_the_base_scheme(name):
    base = build_loss(name, STATS)
    assert torch.allclose(build_loss(name, STATS, focal_gamma=0.0)(Z, Y), base(Z, Y))
    assert torch.allclose(build_loss(name, STATS, focal_gamma=None)(Z, Y), base(Z, Y))


def test_focal_modifier_by_hand():
    raw = np.array([1 / 80, 1 / 15, 1 / 4])
    w = list(raw / raw.mean()) + [1.0]
    total = 0.0
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            z, y = float(Z[i, j]), float(Y[i, j])
            p = sigmoid(z)
            pt = p if y else 1 - p
            total += (w[j] if y else 1.0) * (1 - pt) ** 2 * bce(z, y)
    loss = build_loss("inverse_frequency", STATS, focal_gamma=2)
    assert loss(Z, Y).item() == pytest.approx(total / Z.numel(), rel=1e-5)
    # unweighted + focal_gamma is the focal loss without alpha
    ref = build_loss("focal", STATS, gamma=1.5, alpha=None)(Z, Y)
    assert torch.allclose(build_loss("unweighted", STATS, focal_gamma=1.5)(Z, Y), ref, rtol=1e-5)
    # no extra buffer: the modifier is a setting, not a weight vector
    assert set(dict(loss.named_buffers())) == {"pos_weight", "neg_weight"}


@pytest.mark.parametrize(
    ("name", "params", "word"),
    [
        ("logit_adjusted", {"tau": -0.5}, "tau"),
        ("distribution_balanced", {"lam": 0.0}, "lam"),
        ("distribution_balanced", {"lam": -1.0}, "lam"),
        ("distribution_balanced", {"alpha": -0.1}, "alpha"),
        ("inverse_frequency", {"focal_gamma": -1.0}, "focal_gamma"),
        ("distribution_balanced", {"focal_gamma": -0.5}, "focal_gamma"),
        ("logit_adjusted", {"focal_gamma": -2}, "focal_gamma"),
    ],
)
def test_invalid_params_are_named(name, params, word):
    with pytest.raises(ValueError, match=word):
        build_loss(name, STATS, **params)
    with pytest.raises(ValueError, match=word):  # the classes check too, not only the registry
        SCHEMES[name].loss_class.from_label_stats(STATS, **params)
