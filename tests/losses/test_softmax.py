"""two_way and multilabel_softmax against hand computations (docs/methods.md, section 1), and how evaluation reads
multilabel_softmax's scores."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tailsweep.datasets import LabelStats
from tailsweep.losses import SCHEMES, batch_presence, build_loss, ensemble_coherent, masked_logsumexp

STATS4 = LabelStats.from_counts([10, 5, 2, 1], n_train=20)


def softplus(v):
    return math.log1p(math.exp(v))


def lse(values):
    return math.log(sum(math.exp(v) for v in values))


def hand_two_way(x, y, tp, tn):
    """The two-way loss from its definition: per set S, softplus(T_n LSE_neg(x/T_n) + T_p LSE_pos(-x/T_p)); sets
    are the label columns and the rows that hold a positive; an empty negative side gives 0."""

    def term(xs, ys):
        neg = [v / tn for v, t in zip(xs, ys, strict=True) if t == 0]
        pos = [-v / tp for v, t in zip(xs, ys, strict=True) if t == 1]
        return softplus(tn * lse(neg) + tp * lse(pos)) if neg else 0.0

    cols = [[row[j] for row in x] for j in range(len(x[0]))]
    ycols = [[row[j] for row in y] for j in range(len(y[0]))]
    class_terms = [term(c, yc) for c, yc in zip(cols, ycols, strict=True) if 1 in yc]
    sample_terms = [term(r, yr) for r, yr in zip(x, y, strict=True) if 1 in yr]
    mean = lambda ts: sum(ts) / len(ts) if ts else 0.0  # noqa: E731
    return mean(class_terms) + mean(sample_terms)


# --- two_way ------------------------------------------------------------------------------------------------
def test_two_way_by_hand_single_pairs():
    stats = LabelStats.from_counts([1, 1], n_train=2)
    loss = build_loss("two_way", stats)
    # one row, a positive (2.0) and a negative (0.5): class way: label 0 has no negative (0), label 1 no
    # positive (left out); sample way: softplus(0.5 - 2.0), the temperatures cancel on single entries
    assert loss(torch.tensor([[2.0, 0.5]]), torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.2014132780, rel=1e-6)
    one = LabelStats.from_counts([1], n_train=2)
    # one label, a positive row (1.0) and a negative row (3.0): class way softplus(3 - 1); the sample way's only
    # row with a positive has no negative (0), the other row has no positive (left out)
    got = build_loss("two_way", one)(torch.tensor([[1.0], [3.0]]), torch.tensor([[1.0], [0.0]]))
    assert got.item() == pytest.approx(2.1269280110, rel=1e-6)


def test_two_way_temperatures_by_hand():
    stats = LabelStats.from_counts([1, 1, 1], n_train=2)
    x, y = torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[1.0, 1.0, 0.0]])
    # sample way only (class way: labels 0, 1 have no negative -> 0, label 2 no positive -> left out):
    # softplus(T_n log e^(2/T_n) + T_p log(e^0 + e^(-1/T_p)))
    assert build_loss("two_way", stats, t_pos=1.0, t_neg=1.0)(x, y).item() == pytest.approx(2.4076059644, rel=1e-6)
    assert build_loss("two_way", stats, t_pos=4.0, t_neg=1.0)(x, y).item() == pytest.approx(4.3171847993, rel=1e-6)


@pytest.mark.parametrize(("tp", "tn"), [(4.0, 1.0), (1.0, 0.5), (8.0, 2.0)])
def test_two_way_matches_the_definition_with_empty_sets(tp, tn):
    x = [
        [2.0, -1.0, 0.5, 1.0, 0.3],
        [-0.5, 1.5, -2.0, 0.5, -1.2],
        [1.0, 0.0, -1.0, 2.0, 0.7],
        [0.2, 0.4, 0.1, -0.3, 2.5],
    ]
    # label 2: no positive (left out of the class mean); label 3: positive in rows 0-2, negative in row 3;
    # row 3: no positive (left out of the sample mean)
    y = [[1, 0, 0, 1, 0], [0, 1, 0, 1, 1], [1, 0, 0, 1, 0], [0, 0, 0, 0, 0]]
    got = build_loss("two_way", LabelStats.from_counts([2, 1, 0, 3, 1], n_train=4), t_pos=tp, t_neg=tn)
    assert got(torch.tensor(x), torch.tensor(y, dtype=torch.float32)).item() == pytest.approx(
        hand_two_way(x, y, tp, tn), rel=1e-6
    )


def test_two_way_batch_without_positives_is_zero_not_nan():
    loss = build_loss("two_way", STATS4)
    z = torch.randn(5, 4, requires_grad=True)
    out = loss(z, torch.zeros(5, 4))  # the authors' code: mean of an empty tensor, NaN
    out.backward()
    assert out.item() == 0.0 and torch.equal(z.grad, torch.zeros(5, 4))


def test_two_way_gradients_stay_finite_at_extreme_logits_and_empty_sets():
    loss = build_loss("two_way", STATS4, t_pos=0.5, t_neg=0.25)
    z = (torch.randn(6, 4) * 200).requires_grad_()
    y = torch.tensor([[1.0, 0, 0, 1]] * 3 + [[0, 0, 0, 1]] * 3)  # label 0 half, labels 1-2 none, label 3 all
    loss(z, y).backward()
    assert torch.isfinite(z.grad).all() and z.grad[:, 0].abs().sum() > 0
    assert z.grad[:, 1:3].abs().sum() > 0  # negatives of labels without a positive still train (sample way)


def test_two_way_class_term_grows_with_duplicated_rows():
    """The class way is over the batch's rows: the same rows twice add (T_p + T_n) log 2 inside each class
    softplus, so (unlike a per-element mean) the loss depends on the batch size."""
    loss = build_loss("two_way", STATS4, t_pos=4.0, t_neg=1.0)
    x = torch.randn(5, 4)
    y = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    pos, neg = y > 0, y == 0
    once, _ = loss.way(x, pos, neg, 0)
    twice, _ = loss.way(torch.cat([x, x]), torch.cat([pos, pos]), torch.cat([neg, neg]), 0)
    arg = torch.log(torch.expm1(once))  # inverse softplus
    assert torch.allclose(twice, F.softplus(arg + 5.0 * math.log(2)), rtol=1e-5)
    rows_once, _ = loss.way(x, pos, neg, 1)
    rows_twice, _ = loss.way(torch.cat([x, x]), torch.cat([pos, pos]), torch.cat([neg, neg]), 1)
    assert torch.allclose(rows_twice, torch.cat([rows_once, rows_once]))  # the sample way is per row


def test_two_way_ignores_a_constant_added_to_every_logit():
    """Both ways compare logits with logits of the same set, so nothing anchors the logits to 0: the fixed 0.5
    threshold is arbitrary for two_way (docs/methods.md), unlike multilabel_softmax's."""
    x = torch.randn(6, 4)
    y = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]])
    two_way = build_loss("two_way", STATS4)
    assert torch.allclose(two_way(x + 7.5, y), two_way(x, y), rtol=1e-5)
    zlpr = build_loss("multilabel_softmax", STATS4)
    assert not torch.allclose(zlpr(x + 7.5, y), zlpr(x, y))


def test_batch_presence_by_hand():
    # N = 5 rows, B = 2: a label with 2 positives is absent from C(3,2) / C(5,2) = 3/10 of the batches
    got = batch_presence([2, 0, 4, 5], 5, 2)
    assert np.allclose(got, [0.7, 0.0, 1.0, 1.0])  # 4 positives: 1 negative row < B, every batch holds one
    assert batch_presence([16], 3718, 64)[0] == pytest.approx(1 - math.comb(3702, 64) / math.comb(3718, 64))
    with pytest.raises(ValueError, match="batch_size"):
        batch_presence([1], 5, 6)


def test_two_way_records_how_often_each_label_had_a_class_term():
    """Random batches of B = 16 from N = 200 rows: the measured share of batches in which each label had a class
    term (the weights artifact's class_term_share) matches batch_presence."""
    counts = [100, 10, 3, 0]
    rng = np.random.default_rng(0)
    y = np.zeros((200, 4), dtype=np.float32)
    for j, n in enumerate(counts):
        y[rng.choice(200, n, replace=False), j] = 1
    y = torch.from_numpy(y)
    loss = build_loss("two_way", LabelStats.from_counts(counts, n_train=200))
    gen = torch.Generator().manual_seed(0)
    for _ in range(2000):
        b = torch.randperm(200, generator=gen)[:16]
        loss(torch.zeros(16, 4), y[b])
    table = loss.weight_table()
    assert table["batches"] == 2000 and table["t_pos"] == 4.0 and table["t_neg"] == 1.0
    expected = batch_presence(counts, 200, 16)  # about 1, 0.59, 0.22, 0
    assert np.allclose(table["class_term_share"], expected, atol=0.03)
    assert table["class_term_share"][3] == 0.0


@pytest.mark.parametrize(("params", "key"), [({"t_pos": 0.0}, "t_pos"), ({"t_neg": -1.0}, "t_neg")])
def test_two_way_temperatures_must_be_positive(params, key):
    with pytest.raises(ValueError, match=rf"{key}.* must be > 0"):
        build_loss("two_way", STATS4, **params)
    with pytest.raises(ValueError, match=rf"{key} \(temperature"):  # the class checks too
        SCHEMES["two_way"].loss_class.from_label_stats(STATS4, **params)


def test_masked_logsumexp_excludes_entries_exactly():
    v = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    out, has = masked_logsumexp(v, mask, 1)
    assert out[0].item() == pytest.approx(math.log(math.e + math.e**3)) and has.tolist() == [True, False]
    (out * has).sum().backward()
    assert torch.isfinite(v.grad).all() and v.grad[0, 1] == 0 and v.grad[1].abs().sum() == 0


# --- multilabel_softmax ---------------------------------------------------------------------------------------
def test_multilabel_softmax_by_hand():
    x = torch.tensor([[1.0, -1.0, 2.0], [0.5, 0.5, -3.0], [3.0, -0.5, 1.0]])
    y = torch.tensor([[1.0, 0, 0], [0, 0, 0], [1, 1, 1]])
    e = math.exp
    rows = [
        math.log(1 + e(-1) + e(2)) + math.log(1 + e(-1)),  # negatives -1, 2; positive 1
        math.log(1 + 2 * e(0.5) + e(-3)) + 0.0,  # no positive: log(1 + 0) = 0
        0.0 + math.log(1 + e(-3) + e(0.5) + e(-1)),  # no negative
    ]
    assert build_loss("multilabel_softmax", STATS4)(x, y).item() == pytest.approx(sum(rows) / 3, rel=1e-6)


def test_multilabel_softmax_with_one_label_is_bce():
    """With C = 1 the row loss is log(1 + e^x) for a negative and log(1 + e^-x) for a positive: BCE."""
    x, y = torch.randn(7, 1) * 3, (torch.rand(7, 1) > 0.5).float()
    got = build_loss("multilabel_softmax", LabelStats.from_counts([3], n_train=7))(x, y)
    assert torch.allclose(got, F.binary_cross_entropy_with_logits(x, y), rtol=1e-6)


def test_multilabel_softmax_trains_to_the_zero_threshold_that_evaluation_uses():
    """Minimising the loss over free logits puts every positive above 0 and every negative below, and the
    evaluation path (sigmoid, then p >= 0.5) then predicts exactly the targets: its fixed threshold is the
    method's own, and AP (a ranking metric) is the same on the logits as on their sigmoid."""
    gen = torch.Generator().manual_seed(0)
    y = (torch.rand(8, 6, generator=gen) > 0.6).float()
    z = torch.zeros(8, 6, requires_grad=True)
    loss = build_loss("multilabel_softmax", LabelStats.from_counts([3] * 6, n_train=8))
    for _ in range(200):  # plain gradient descent
        (grad,) = torch.autograd.grad(loss(z, y), z)
        z.data -= grad
    from tailsweep.trainables._metrics import average_precision, predicted  # evaluation's own functions

    p = ensemble_coherent(z.detach(), None).numpy()  # what the worker's predict() returns for flat tables
    assert np.array_equal(predicted(p, 0.5), y.numpy().astype(bool))
    assert np.array_equal(predicted(p, 0.5), z.detach().numpy() >= 0)
    scores = torch.randn(50) * 4
    labels = (torch.rand(50) > 0.7).numpy()
    assert average_precision(labels, torch.sigmoid(scores).numpy()) == pytest.approx(
        average_precision(labels, scores.numpy())
    )


def test_multilabel_softmax_is_finite_on_saturated_logits():
    z = (torch.randn(4, 5) * 500).requires_grad_()
    y = torch.tensor([[1.0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 0, 1]])
    out = build_loss("multilabel_softmax", LabelStats.from_counts([1] * 5, n_train=4))(z, y)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(z.grad).all()
