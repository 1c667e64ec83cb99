"""Hierarchical schemes on a hand-worked 5-node DAG (node 3 has two parents)."""

import numpy as np
import pytest
import torch

from tailsweep.datasets import LabelStats
from tailsweep.losses import Hierarchy, build_loss, node_imbalance_weights, subtree_counts
from tailsweep.losses._hierarchy import probability_bce

#   a
#  / \
# b   c      d has two parents (b and c); e is a leaf under b
#  \ / \
#   d   (c has only d)
#   b -> e
PARENTS = [[], ["a"], ["a"], ["b", "c"], ["b"]]
LABELS = ["a", "b", "c", "d", "e"]
STATS = LabelStats.from_counts([40, 25, 12, 5, 10], n_train=50, labels=LABELS, depths=[1, 2, 2, 3, 3],
                               parents=PARENTS)


def test_mcm_by_hand():
    h = Hierarchy.from_label_stats(STATS)
    assert h.descendant_matrix().astype(int).tolist() == [
        [1, 1, 1, 1, 1], [0, 1, 0, 1, 1], [0, 0, 1, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]
    p = torch.tensor([[0.1, 0.2, 0.3, 0.9, 0.05], [0.5, 0.1, 0.2, 0.0, 0.6]])
    expected = torch.tensor([[0.9, 0.9, 0.9, 0.9, 0.05], [0.6, 0.6, 0.2, 0.0, 0.6]])
    assert torch.allclose(h.mcm(p), expected)


def test_mcm_coherent_on_random_inputs_and_matches_dense():
    rng = np.random.default_rng(0)
    # a random DAG: each node's parents drawn among earlier nodes
    parents = [[]] + [sorted(set(rng.integers(0, k, size=rng.integers(1, 3)).tolist())) for k in range(1, 60)]
    h = Hierarchy(parents)
    p = torch.rand(16, 60)
    out = h.mcm(p)
    for c, ps in enumerate(parents):
        for q in ps:
            assert (out[:, q] >= out[:, c]).all()
    r = torch.from_numpy(h.descendant_matrix()).float()
    dense = (p.unsqueeze(1) * r.unsqueeze(0)).amax(-1)  # C-HMCNN's B x C x C formulation
    assert torch.allclose(out, dense)


def test_mcloss_by_hand():
    z = torch.tensor([[0.3, -1.0, 0.5, 2.0, -0.7]])
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0]])
    p = torch.sigmoid(z)[0].tolist()
    # y=1 nodes: max over descendants of y*p; y=0 nodes: max over descendants of p
    h = [max(p[0], p[1], p[4]),  # a: descendants a,b,c,d,e; positives a,b,e
         max(p[1], p[4]),  # b: b,d,e; positives b,e
         max(p[2], p[3]),  # c (negative): c,d
         p[3],  # d (negative)
         p[4]]  # e
    yy = [1, 1, 0, 0, 1]
    expected = -np.mean([np.log(v) if t else np.log(1 - v) for v, t in zip(h, yy, strict=True)])
    assert build_loss("mcloss", STATS)(z, y).item() == pytest.approx(expected, rel=1e-5)


def test_node_imbalance_weights_by_hand():
    # subtree counts: a = 40+25+12+5+10, b = 25+5+10, c = 12+5, d = 5, e = 10
    assert subtree_counts(STATS).tolist() == [92, 40, 17, 5, 10]
    w = np.array([1.0, 50 / (5 * 40), 50 / (5 * 17), 50 / (5 * 5), 50 / (5 * 10)])  # a: n-bar >= N -> 1
    w[0] = 50 / (5 * 92)  # n-bar = 92 != N = 50 and != 0, so the formula applies
    expected = 0.25 + w.max() * (w - w.min()) / (w.max() - w.min())
    assert np.allclose(node_imbalance_weights(STATS), expected)
    loss = build_loss("node_imbalance", STATS)
    assert np.allclose(loss.node_weight.numpy(), expected)


def _mcloss_elements(z, y):
    """Per-node BCE of the mcloss outputs on the DAG, by hand (one row)."""
    p = torch.sigmoid(z)[0].tolist()
    desc = [[0, 1, 2, 3, 4], [1, 3, 4], [2, 3], [3], [4]]
    yy = y[0].tolist()
    h = [max(p[d] * yy[d] for d in ds) if yy[j] else max(p[d] for d in ds) for j, ds in enumerate(desc)]
    return [-np.log(v) if t else -np.log(1 - v) for v, t in zip(h, yy, strict=True)]


def test_weight_targets_both_ways_by_hand():
    z = torch.tensor([[0.3, -1.0, 0.5, 2.0, -0.7]])
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0]])
    w = node_imbalance_weights(STATS)
    bce = _mcloss_elements(z, y)
    # the authors' code (default): y = 0 gets w', y = 1 gets 1
    on_negatives = np.mean([b * (1.0 if t else w[j]) for j, (b, t) in enumerate(zip(bce, [1, 1, 0, 0, 1], strict=True))])
    on_positives = np.mean([b * (w[j] if t else 1.0) for j, (b, t) in enumerate(zip(bce, [1, 1, 0, 0, 1], strict=True))])
    default = build_loss("node_imbalance", STATS)
    assert default.weight_targets == "negatives"
    assert default(z, y).item() == pytest.approx(on_negatives, rel=1e-5)
    positives = build_loss("node_imbalance", STATS, weight_targets="positives")
    assert positives(z, y).item() == pytest.approx(on_positives, rel=1e-5)
    assert np.allclose(default.neg_weight.numpy(), w) and np.allclose(default.pos_weight.numpy(), 1)
    assert np.allclose(positives.pos_weight.numpy(), w) and np.allclose(positives.neg_weight.numpy(), 1)
    # the weight artifact says which targets the weights multiply
    assert default.weight_table()["weight_targets"] == "negatives"
    # all-negative rows: only the weights on negatives change the loss
    z, y0 = torch.randn(3, 5), torch.zeros(3, 5)
    assert torch.allclose(positives(z, y0), build_loss("mcloss", STATS)(z, y0))
    assert not torch.allclose(default(z, y0), build_loss("mcloss", STATS)(z, y0))
    with pytest.raises(ValueError, match="weight_targets. must be one of negatives, positives"):
        build_loss("node_imbalance", STATS, weight_targets="both")


def test_bce_keeps_its_gradient_at_saturation():
    # a positive leaf whose output fell to 1e-9: torch's BCE (C-HMCNN's) still pulls it up, about -1/h;
    # the clamp to [1e-7, 1 - 1e-7] tailsweep used before gave exactly 0
    h = torch.tensor([1e-9], dtype=torch.float64, requires_grad=True)
    probability_bce(h, torch.ones(1, dtype=torch.float64)).sum().backward()
    assert h.grad.item() == pytest.approx(-1e9, rel=1e-6)
    clamped = torch.tensor([1e-9], requires_grad=True)
    torch.nn.functional.binary_cross_entropy(clamped.clamp(1e-7, 1 - 1e-7), torch.ones(1)).backward()
    assert clamped.grad.item() == 0.0
    # through mcloss: a rare leaf positive at logit -20 (p ~ 2e-9) gets a gradient on its logit
    z = torch.full((1, 5), -20.0, requires_grad=True)
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0]])
    build_loss("mcloss", STATS)(z, y).backward()
    assert z.grad[0, 4].item() < -0.1  # d/dz -log(sigmoid(z)) / 5 nodes = -(1 - p) / 5
    assert torch.isfinite(z.grad).all()


def test_hierarchical_scheme_on_a_flat_table_is_refused():
    flat = LabelStats.from_counts([5, 6], n_train=10)
    with pytest.raises(ValueError, match="'mcloss' needs a label hierarchy; this table has none"):
        build_loss("mcloss", flat)


def test_gradients_reach_the_logits():
    z = torch.randn(4, 5, requires_grad=True)
    y = (torch.rand(4, 5) > 0.5).float()
    build_loss("node_imbalance", STATS)(z, y).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
