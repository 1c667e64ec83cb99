"""Label-path oversampling (LPROS, docs/methods.md section 2) by hand on a tiny tree."""

import numpy as np

from tailsweep.datasets import ancestor_closure_matrix, lpros_copies

# a -> b -> d ; a -> c        (tree)
LABELS = ["a", "b", "c", "d"]
PARENTS = {"a": [], "b": ["a"], "c": ["a"], "d": ["b"]}
DEPTHS = [1, 2, 2, 3]
CLOSURE = ancestor_closure_matrix(LABELS, PARENTS)


def _listed(rows):
    out = np.zeros((len(rows), 4), int)
    for i, labels in enumerate(rows):
        out[i, [LABELS.index(x) for x in labels]] = 1
    return out


# 10 rows list c, 5 list b, 1 lists d (listed labels, not closed upward).
# Subtree annotation counts: a 16, b 6, c 10, d 1; IRLbP 1, 2.67, 1.6, 16 -> mean 5.32: only d is minority.
ROWS = _listed([["c"]] * 10 + [["b"]] * 5 + [["d"]])


def test_counts_budget_copies_and_their_labels():
    # total annotations 16; budget 0.5 x 16 = 8; maxIncrease ceil(8 / 1) = 8; meanSize ceil(16 / 4) = 4:
    # d grows by min(8, 4 - 1) = 3 copies of its only row, each labelled d alone
    rows, nodes = lpros_copies(ROWS, CLOSURE, DEPTHS, budget=0.5, seed=0)
    assert rows.tolist() == [15, 15, 15]
    assert nodes.tolist() == [3, 3, 3]
    # a copy's targets: d closed upward (a, b, d), whatever else its source row carried
    assert np.asarray(CLOSURE[nodes].todense()).astype(int).tolist() == [[1, 1, 0, 1]] * 3
    # after d's level, b (9) and c (10) are not minority against the original mean: nothing more
    # budget 0.1 x 16 = 1 copy at most
    rows, nodes = lpros_copies(ROWS, CLOSURE, DEPTHS, budget=0.1, seed=0)
    assert rows.tolist() == [15] and nodes.tolist() == [3]
    # balanced: nothing to do
    rows, _ = lpros_copies(_listed([["b"], ["c"]]), CLOSURE, DEPTHS, budget=1.0)
    assert len(rows) == 0


def test_a_copy_labels_the_minority_node_not_the_source_row():
    # the only row that carries d also lists c: its copies are labelled d alone (a, b, d), not c
    listed = _listed([["c"]] * 10 + [["b"]] * 5 + [["d", "c"]])
    rows, nodes = lpros_copies(listed, CLOSURE, DEPTHS, budget=0.5, seed=0)
    assert set(rows.tolist()) == {15} and set(nodes.tolist()) == {3}
    assert not np.asarray(CLOSURE[nodes].todense())[:, 2].any()


def test_lpros_is_seeded_and_within_budget():
    rng = np.random.default_rng(0)
    kind = rng.integers(0, 20, 300)
    listed = _listed([["c"] if k < 14 else ["b"] if k < 18 else ["d"] for k in kind])
    a = lpros_copies(listed, CLOSURE, DEPTHS, budget=0.1, seed=3)
    b = lpros_copies(listed, CLOSURE, DEPTHS, budget=0.1, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    rows, nodes = a
    assert 0 < len(rows) <= 30 and all(listed[i, 3] == 1 for i in rows) and set(nodes.tolist()) == {3}
