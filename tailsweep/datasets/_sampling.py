"""Data-side baselines: label-path random oversampling (the second seed's "LPROS", METHODS.md section 2).

A row's *label paths* end at its leaves: the positive nodes none of whose children is positive in that
row. Per path (identified by its end node j): count_j = rows with a path ending at j, and its imbalance
ratio IRLbP_j = max_k count_k / count_j. Paths whose ratio is above the mean ratio are the minority.
Random rows of minority paths are duplicated, deepest paths first and one row per path per round
(so every minority path gains before any gains twice), until a path stops being minority or the budget
of ``budget * N`` new rows is spent. Counts are updated as rows are added (a cloned row raises every
path it carries); the mean ratio stays the one measured before sampling, as in ML-ROS (Charte et al.).
"""

from __future__ import annotations

import numpy as np


def row_leaves(targets: np.ndarray, parents: list[list[int]]) -> np.ndarray:
    """Boolean (N, C): node j is positive in row i and none of j's children is."""
    from scipy import sparse  # here, not at module level: every Train worker imports this module

    y = np.asarray(targets) > 0
    num = y.shape[1]
    child = [c for c, ps in enumerate(parents) for _ in ps]
    parent = [p for ps in parents for p in ps]
    edges = sparse.csr_matrix((np.ones(len(child)), (parent, child)), shape=(num, num))  # E[p, c] = 1
    has_positive_child = np.asarray((sparse.csr_matrix(y.astype(np.float64)) @ edges.T).todense()) > 0
    return y & ~has_positive_child


def lpros_indices(targets: np.ndarray, parents: list[list[int]], depths, budget: float = 0.1,
                  seed: int = 0) -> np.ndarray:
    """Indices of training rows to append (duplicates), at most ``floor(budget * N)`` of them."""
    leaves = row_leaves(targets, parents)
    n = leaves.shape[0]
    counts = leaves.sum(0).astype(np.int64)
    present = np.flatnonzero(counts)
    if n == 0 or len(present) < 2:
        return np.zeros(0, np.int64)
    ratio = counts[present].max() / counts[present]
    mean_ratio = ratio.mean()
    depths = np.asarray(depths)
    minority = [int(j) for j in present[ratio > mean_ratio]]
    minority.sort(key=lambda j: (-depths[j], counts[j], j))  # deepest first, then rarest
    rows_of = {j: np.flatnonzero(leaves[:, j]) for j in minority}
    rng = np.random.default_rng(seed)
    left = int(budget * n)
    added: list[int] = []
    while left > 0 and minority:
        for j in list(minority):
            if left == 0:
                break
            row = int(rng.choice(rows_of[j]))
            added.append(row)
            counts += leaves[row]
            left -= 1
        top = counts.max()
        minority = [j for j in minority if top / counts[j] > mean_ratio]
    return np.asarray(added, dtype=np.int64)
