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
STATS = LabelStats.from_counts([40, 25, 12, 5, 10], n_train=50, labels=LABELS, depths=[1, 2, 2, 3, 3], parents=PARENTS)


def test_mcm_by_hand():
    h = Hierarchy.from_label_stats(STATS)
    assert h.descendant_matrix().astype(int).tolist() == [
        [1, 1, 1, 1, 1],
        [0, 1, 0, 1, 1],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 1],
    ]
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
    h = [
        max(p[0], p[1], p[4]),  # a: descendants a,b,c,d,e; positives a,b,e
        max(p[1], p[4]),  # b: b,d,e; positives b,e
        max(p[2], p[3]),  # c (negative): c,d
        p[3],  # d (negative)
        p[4],
    ]  # e
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
    on_negatives = np.mean(
        [b * (1.0 if t else w[j]) for j, (b, t) in enumerate(zip(bce, [1, 1, 0, 0, 1], strict=True))]
    )
    on_positives = np.mean(
        [b * (w[j] if t else 1.0) for j, (b, t) in enumerate(zip(bce, [1, 1, 0, 0, 1], strict=True))]
    )
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


# --- the max-constraint functions against the landed level-wise scatter and C-HMCNN's dense formulation ---


def _random_dag(n, seed, extra=0.4):
    """Parents drawn among earlier nodes: every node past the first few has one or two parents (a DAG)."""
    rng = np.random.default_rng(seed)
    parents = [[] for _ in range(3)]
    for k in range(3, n):
        first = int(rng.integers(0, k))
        more = [int(rng.integers(0, k))] if rng.random() < extra else []
        parents.append(sorted({first, *more}))
    return parents


def _landed_mcm(parents, p):
    """tailsweep's previous MCM: one out-of-place scatter_reduce(amax) per height level (ties split the gradient)."""
    from tailsweep.datasets._graph import edges_from_lists, heights

    child, parent = edges_from_lists(parents)
    h = heights(child, parent, len(parents))
    out = p
    for k in range(int(h.max()) + 1):
        sel = h[child] == k
        if sel.any():
            c, q = torch.from_numpy(child[sel]), torch.from_numpy(parent[sel])
            idx = q.unsqueeze(0).expand(out.shape[0], -1)
            out = out.scatter_reduce(1, idx, out.index_select(1, c), reduce="amax", include_self=True)
    return out


def _dense_mcm(h, p):
    """C-HMCNN's get_constr_out: torch.max over R * p along the last axis (the first maximum gets the gradient)."""
    r = torch.from_numpy(h.descendant_matrix()).to(p.dtype)
    return (p.unsqueeze(1) * r.unsqueeze(0)).max(-1).values


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mcm_values_and_gradients_match_the_landed_and_the_dense_formulation(dtype):
    parents = _random_dag(80, seed=1)
    h = Hierarchy(parents)
    assert any(len(ps) == 2 for ps in parents)
    p0 = torch.rand(12, 80, dtype=dtype) * 0.98 + 0.01  # positive, no ties
    g = torch.randn(12, 80, dtype=dtype)
    grads = []
    for f in (h.mcm, lambda p: _landed_mcm(parents, p), lambda p: _dense_mcm(h, p)):
        p = p0.clone().requires_grad_(True)
        out = f(p)
        (out * g).sum().backward()
        grads.append((out.detach(), p.grad))
    for out, grad in grads[1:]:
        assert torch.equal(grads[0][0], out)
        assert torch.allclose(grads[0][1], grad, atol=1e-6)
    # every output's gradient lands on exactly one input of its row (the argmax), so the row sums are kept
    assert torch.allclose(grads[0][1].sum(1), g.sum(1), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_tie_sends_the_whole_gradient_to_the_lowest_indexed_argmax_as_torch_max_does(dtype):
    h = Hierarchy.from_label_stats(STATS)  # a: b, c, d, e below; d under b and c
    p = torch.tensor([[0.1, 0.7, 0.2, 0.7, 0.7], [0.5, 0.5, 0.5, 0.5, 0.1]], dtype=dtype, requires_grad=True)
    h.mcm(p).sum().backward()
    ours = p.grad.clone()
    p.grad = None
    _dense_mcm(h, p).sum().backward()
    assert torch.equal(ours, p.grad)
    # row 0: a, b, d, e... a's max 0.7 is reached at b, d and e -> b (index 1); b's at b, d, e -> b; c's at d
    assert ours[0].tolist() == [0.0, 2.0, 0.0, 2.0, 1.0]
    # row 1: a tie of a with its descendants stays on a; b and c keep their own
    assert ours[1].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]


def test_gradcheck_on_small_dags_in_float64():
    for seed, n in ((2, 9), (3, 15)):
        parents = _random_dag(n, seed, extra=0.6)
        h = Hierarchy(parents)
        p = (torch.rand(3, n, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
        assert torch.autograd.gradcheck(h.mcm, (p,))
        loss = build_loss(
            "mcloss", LabelStats.from_counts([1] * n, n_train=5, parents=[[f"l{q}" for q in ps] for ps in parents])
        )
        y = (torch.rand(3, n) < 0.4).double()
        assert torch.autograd.gradcheck(lambda q, loss=loss, y=y: loss.elementwise_bce(q, y), (p,))


def test_mcloss_equals_its_composition_from_mcm_and_bce():
    parents = _random_dag(200, seed=4)
    stats = LabelStats.from_counts([1] * 200, n_train=5, parents=[[f"l{q}" for q in ps] for ps in parents])
    loss = build_loss("mcloss", stats)
    z = torch.randn(16, 200, requires_grad=True)
    y = (torch.rand(16, 200) < 0.2).float()
    loss(z, y).backward()
    fused = z.grad.clone()
    z.grad = None
    p = torch.sigmoid(z)
    hh = (1 - y) * _landed_mcm(parents, p) + y * _landed_mcm(parents, y * p)
    composed = probability_bce(hh, y).mean()
    assert composed.item() == pytest.approx(loss(z, y).item(), rel=1e-6)
    composed.backward()
    assert torch.allclose(fused, z.grad, atol=1e-8)


def test_the_float32_sweep_agrees_with_the_float64_one_and_a_cycle_is_refused():
    parents = _random_dag(300, seed=5)
    h = Hierarchy(parents)
    p = torch.rand(8, 300, dtype=torch.float64)
    assert torch.equal(h.argmax_descendants(p.float()).long(), h.argmax_descendants(p).long())
    assert torch.equal(h.argmax_descendants(-p.float()).long(), h.argmax_descendants(-p).long())  # negative values
    with pytest.raises(ValueError, match="cycle"):
        Hierarchy([[2], [0], [1]])


def _stats_of(parents):
    return LabelStats.from_counts(
        list(range(1, len(parents) + 1)), n_train=len(parents) + 5, parents=[[f"l{q}" for q in ps] for ps in parents]
    )


def _closed(h, n_rows, rate, seed):
    """0/1 targets closed upward (every positive's ancestors positive), as HMC tables hold them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return h.mcm((torch.rand(n_rows, h.num_nodes, generator=g) < rate).float())


def _value_and_grad(loss, z, y):
    z = z.detach().clone().requires_grad_(True)
    out = loss(z, y)
    out.backward()
    return out.detach(), z.grad


@pytest.mark.parametrize(
    "scheme,params,heads",
    [
        ("mcloss", {}, 0),
        ("node_imbalance", {}, 0),
        ("node_imbalance", {"weight_targets": "positives", "schedule": "linear"}, 0),
        ("node_imbalance_focal", {"heads": 2}, 2),
        ("node_imbalance_focal", {"heads": 3, "reduction": "mean", "uncertainty": "entropy"}, 3),
    ],
)
def test_the_one_sweep_path_matches_the_composition_in_value_and_gradient(monkeypatch, scheme, params, heads):
    """Closed 0/1 targets take the fused one-sweep path (several CPU chunks here, the last one short); forcing
    the composition (two sweeps, torch's BCE) gives the same loss and gradient to float rounding."""
    import tailsweep.losses._hierarchy as hier

    monkeypatch.setattr(hier, "_CHUNK_ELEMENTS", 150 * 4)  # 4 rows per chunk: 13 rows -> 4 chunks
    parents = _random_dag(150, seed=7)
    loss = build_loss(scheme, _stats_of(parents), **params)
    if hasattr(loss, "set_progress"):
        loss.set_progress(3, 10)  # a schedule mid-epoch: weights that differ from the stored ones
    y = _closed(loss.hierarchy, 13, 0.08, seed=1)
    z = torch.randn(*((heads,) if heads else ()), 13, 150, generator=torch.Generator().manual_seed(2))
    calls = []
    real = hier._closed_sum
    monkeypatch.setattr(hier, "_closed_sum", lambda *a, **k: calls.append(1) or real(*a, **k))
    fused, g_fused = _value_and_grad(loss, z, y)
    assert calls, "closed 0/1 targets must take the one-sweep path"
    monkeypatch.setattr(loss, "fused_sum", lambda *a, **k: None)
    composed, g_composed = _value_and_grad(loss, z, y)
    assert fused.item() == pytest.approx(composed.item(), rel=2e-6)
    assert torch.allclose(g_fused, g_composed, rtol=1e-4, atol=1e-6 * g_composed.abs().max().item())
    assert torch.equal(g_fused == 0, g_composed == 0)  # the gradient of each max reaches the same argmax


def test_targets_that_are_soft_or_not_closed_upward_fall_back_to_the_composition():
    parents = _random_dag(60, seed=8)
    loss = build_loss("mcloss", _stats_of(parents))
    h = loss.hierarchy
    z = torch.randn(5, 60)
    y = _closed(h, 5, 0.2, seed=3)
    assert loss.fused_sum(z, y, divisor=y.numel()) is not None
    child = int(h.edge_child[0])
    open_y = torch.zeros(5, 60)
    open_y[2, child] = 1.0  # a positive under a negative parent
    soft = y * 0.9
    for bad in (open_y, soft):
        assert not h.closed_targets(bad)
        assert loss.fused_sum(z, bad, divisor=bad.numel()) is None
        p = torch.sigmoid(z)
        expected = (loss.elementwise_bce(p, bad) * loss.element_weight(bad)).mean()
        assert loss(z, bad).item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_one_sweep_path_scales_by_the_upstream_gradient_and_survives_a_retained_graph():
    parents = _random_dag(40, seed=9)
    loss = build_loss("mcloss", _stats_of(parents))
    y = _closed(loss.hierarchy, 6, 0.3, seed=4)
    z0 = torch.randn(6, 40)
    _, g1 = _value_and_grad(loss, z0, y)
    z = z0.clone().requires_grad_(True)
    out = 3.0 * loss(z, y)
    out.backward(retain_graph=True)
    assert torch.allclose(z.grad, 3 * g1)
    out.backward()  # the kept gradient was handed over: the second pass recomputes it
    assert torch.allclose(z.grad, 6 * g1)
    with torch.no_grad():
        assert loss(z, y).item() == pytest.approx(out.item() / 3, rel=1e-6)


def test_a_tie_in_the_one_sweep_path_goes_to_the_lowest_indexed_argmax():
    loss = build_loss("mcloss", STATS)
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0, 0.0]])  # closed upward
    z = torch.tensor([[0.0] * 5, [-1.0, -1.0, -1.0, 0.0, 0.0]])  # row 0 all ties; row 1: d and e tie under b
    z0 = z.clone()
    fused, g = _value_and_grad(loss, z, y)
    loss.fused_sum = lambda *a, **k: None
    composed, g2 = _value_and_grad(loss, z, y)
    assert fused.item() == pytest.approx(composed.item(), rel=1e-6)
    assert torch.allclose(g, g2)
    assert torch.equal(z, z0)
    # row 0: every node's own index is the lowest among its tied candidates, so each keeps its own gradient
    assert (g[0] != 0).tolist() == [True, True, True, True, True]
    # row 1: b (negative) ties between d and e -> d (index 3); c's max is d; a's positives are a alone
    assert (g[1] != 0).tolist() == [True, False, False, True, True]
    assert g[1, 3].item() == pytest.approx(3 * g[1, 4].item(), rel=1e-5)  # b, c and d itself against e alone


def test_the_one_sweep_path_leaves_its_inputs_alone_with_one_row_or_one_node():
    loss = build_loss("mcloss", STATS)
    z, y = torch.tensor([[0.3, -1.0, 0.5, 2.0, -0.7]]), torch.tensor([[1.0, 1.0, 0.0, 0.0, 1.0]])
    z0, y0 = z.clone(), y.clone()
    first = loss(z, y)
    assert torch.equal(z, z0) and torch.equal(y, y0)
    assert loss(z, y).item() == first.item()
    from tailsweep.losses._hierarchy import MCLoss

    single = MCLoss(Hierarchy([[]]))  # one node, no edge
    z1 = torch.randn(4, 1)
    z1c = z1.clone()
    single(z1, torch.ones(4, 1))
    assert torch.equal(z1, z1c)
