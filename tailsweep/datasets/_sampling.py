"""Data-side baselines: label-path random oversampling (the second seed's "LPROS", docs/methods.md section 2),
as the authors' code does it.

* A node's count is the number of *annotations* in its subtree: each training row's listed labels (the
  labels column as written, before closing upward) count once per label, then are summed up the tree
  (for a DAG, a descendant counts once however many paths lead to it).
* IRLbP_j = maxCount / count_j over nodes with a non-zero count; nodes above the mean ratio are minority.
* Budget: S x the total annotation count. A minority node grows by at most maxIncrease =
  ceil(budget / #minority) and never past meanSize = ceil(total / #nodes).
* The hierarchy is walked from its deepest level up; each minority node at that level gets
  min(maxIncrease, meanSize - count_j) copies of random training rows that carry it (listed, or else
  through a listed descendant), **each copy labelled with that node alone** (closed upward). Counts are
  updated, and the minority set is recomputed against the *original* mean ratio before the next level.
* Only the training split is read or copied: validation rows are never duplicated, even when a sweep
  trains on train + val (C-HMCNN's protocol).
"""

from __future__ import annotations

import math

import numpy as np


def lpros_copies(
    annotations: np.ndarray, closure, depths, budget: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The copies LPROS adds: (row index of each copy in ``annotations``, the node it is labelled with).

    Args:
        annotations: (N, C) listed labels of the training rows (not closed upward), 0/1.
        closure: sparse (C, C) matrix, closure[j, k] = 1 iff k is j or an ancestor of j
            (``datasets.ancestor_closure_matrix``); a copy labelled j gets closure row j as its targets.
        depths: depth of each node (1 = top level).
        budget: S, the share of the total annotation count that may be added.
    """
    from scipy import sparse

    a = sparse.csr_matrix(np.asarray(annotations) > 0, dtype=np.float64)
    closure = sparse.csr_matrix(closure, dtype=np.float64)
    num = a.shape[1]
    carries = (a @ closure) > 0  # row i carries node k (listed, or through a listed descendant)
    carries = sparse.csc_matrix(carries)
    counts = np.asarray(closure.T @ np.asarray(a.sum(axis=0)).ravel()).ravel()  # annotations in each subtree
    total = float(a.sum())
    present = counts > 0
    empty = np.zeros(0, np.int64)
    if total == 0 or present.sum() < 2:
        return empty, empty
    mean_ratio = float(np.mean(counts[present].max() / counts[present]))

    def minority() -> np.ndarray:
        ratio = np.where(present, counts.max() / np.maximum(counts, 1e-12), 0.0)
        return present & (ratio > mean_ratio)

    left = int(budget * total)
    n_minority = int(minority().sum())
    if left <= 0 or n_minority == 0:
        return empty, empty
    max_increase = math.ceil(left / n_minority)
    mean_size = math.ceil(total / num)
    depths = np.asarray(depths)
    rng = np.random.default_rng(seed)
    rows_out: list[np.ndarray] = []
    nodes_out: list[np.ndarray] = []
    for level in sorted(set(depths.tolist()), reverse=True):
        if left <= 0:
            break
        for j in np.flatnonzero(minority() & (depths == level)):
            want = min(max_increase, mean_size - int(counts[j]), left)
            pool = carries[:, j].nonzero()[0]
            if want <= 0 or len(pool) == 0:
                continue
            picked = rng.choice(pool, size=want, replace=True)
            rows_out.append(picked.astype(np.int64))
            nodes_out.append(np.full(want, j, np.int64))
            # each copy is one annotation of j: j and every ancestor gain it
            counts += want * closure[j].toarray().ravel()
            left -= want
            if left <= 0:
                break
    if not rows_out:
        return empty, empty
    return np.concatenate(rows_out), np.concatenate(nodes_out)
