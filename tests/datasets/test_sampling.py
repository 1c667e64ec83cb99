"""Label-path oversampling (LPROS) by hand."""

import numpy as np

from tailsweep.datasets import lpros_indices, row_leaves

# a -> b -> d ; a -> c        (tree)
PARENTS = [[], [0], [0], [1]]
DEPTHS = [1, 2, 2, 3]


def test_row_leaves():
    y = np.array([[1, 1, 0, 1], [1, 0, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]])
    assert row_leaves(y, PARENTS).astype(int).tolist() == [[0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]]


def test_lpros_duplicates_minority_paths_deepest_first_within_budget():
    # path counts: a->c 12 rows, a->b 6 rows, a->b->d 2 rows; ratios 1, 2, 6 -> mean 3: only d is minority
    y = np.array([[1, 0, 1, 0]] * 12 + [[1, 1, 0, 0]] * 6 + [[1, 1, 0, 1]] * 2)
    extra = lpros_indices(y, PARENTS, DEPTHS, budget=0.1, seed=0)
    assert len(extra) == 2  # floor(0.1 * 20)
    assert set(extra.tolist()) <= {18, 19}  # rows whose path ends at d
    # a big budget stops once d is no longer minority: 12 / count_d <= 3 -> count_d = 4 (2 added)
    extra = lpros_indices(y, PARENTS, DEPTHS, budget=5.0, seed=0)
    assert len(extra) == 2
    # balanced paths: nothing to do
    assert len(lpros_indices(np.array([[1, 0, 1, 0], [1, 1, 0, 0]]), PARENTS, DEPTHS, budget=1.0)) == 0


def test_lpros_is_seeded():
    rng = np.random.default_rng(0)
    y = np.zeros((200, 4), int)
    y[:, 0] = 1
    kind = rng.integers(0, 10, 200)
    y[kind < 7, 2] = 1
    y[kind >= 7, 1] = 1
    y[kind == 9, 3] = 1
    a = lpros_indices(y, PARENTS, DEPTHS, budget=0.1, seed=3)
    assert np.array_equal(a, lpros_indices(y, PARENTS, DEPTHS, budget=0.1, seed=3))
    assert 0 < len(a) <= 20 and all(y[i, 3] == 1 for i in a)
