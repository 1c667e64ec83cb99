"""Hierarchy machinery and hierarchical losses (METHODS.md section 2).

MCM (the max constraint module of C-HMCNN, Giunchiglia & Lukasiewicz, NeurIPS 2020) makes outputs
coherent: out_A = max over the descendants B of A (A included) of p_B, so a parent is never below
a child. The dense formulation builds a batch x C x C tensor (C = 4,130 at batch 256: 4.4 G
elements); here the max is propagated along the hierarchy's edges level by level instead: nodes are
grouped by *height* (longest path down to a leaf) and each level's children are folded into their
parents with one ``scatter_reduce(amax)``, so memory is O(batch x C) per level and the work is
O(batch x edges). Trees and DAGs (several parents) alike.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import LabelStats


def heights(parents: list[list[int]], num: int) -> np.ndarray:
    """Longest path from each node down to a leaf (leaves = 0)."""
    children: list[list[int]] = [[] for _ in range(num)]
    for c, ps in enumerate(parents):
        for p in ps:
            children[p].append(c)
    h = np.full(num, -1, dtype=np.int64)
    for start in range(num):
        if h[start] >= 0:
            continue
        stack = [(start, False)]
        while stack:
            node, done = stack.pop()
            if done:
                h[node] = 1 + max((h[c] for c in children[node]), default=-1)
                continue
            if h[node] >= 0:
                continue
            stack.append((node, True))
            stack.extend((c, False) for c in children[node] if h[c] < 0)
    return h


class Hierarchy(nn.Module):
    """Edges of a label hierarchy as index buffers, grouped for level-wise max propagation.

    Args:
        parents: for each node index, the indices of its parents.
    """

    def __init__(self, parents: list[list[int]]):
        super().__init__()
        num = len(parents)
        self.num_nodes = num
        h = heights(parents, num)
        child_idx, parent_idx = [], []
        for c, ps in enumerate(parents):
            for p in ps:
                child_idx.append(c)
                parent_idx.append(p)
        child = np.array(child_idx, dtype=np.int64)
        parent = np.array(parent_idx, dtype=np.int64)
        self.levels: list[tuple[str, str]] = []
        # Level k folds the edges whose *child* has height k: by then every such child is final (all
        # of its own descendants are already folded into it).
        for k in range(int(h.max()) + 1 if num else 0):
            sel = h[child] == k if len(child) else np.zeros(0, bool)
            if not sel.any():
                continue
            cn, pn = f"child_{k}", f"parent_{k}"
            self.register_buffer(cn, torch.from_numpy(child[sel]), persistent=False)
            self.register_buffer(pn, torch.from_numpy(parent[sel]), persistent=False)
            self.levels.append((cn, pn))
        self.num_edges = len(child)

    @classmethod
    def from_label_stats(cls, stats: LabelStats) -> Hierarchy:
        return cls(stats.parent_indices())

    def mcm(self, p: torch.Tensor) -> torch.Tensor:
        """Coherent outputs: out[:, A] = max of p over A's descendants (A included). Shape (B, C)."""
        out = p
        for cn, pn in self.levels:
            child, parent = getattr(self, cn), getattr(self, pn)
            idx = parent.unsqueeze(0).expand(out.shape[0], -1)
            out = out.scatter_reduce(1, idx, out.index_select(1, child), reduce="amax", include_self=True)
        return out

    def descendant_matrix(self) -> np.ndarray:
        """Dense R (C x C): R[A, B] = 1 iff B is A or a descendant of A (for tests and small C)."""
        eye = torch.eye(self.num_nodes)
        return self.mcm(eye).T.numpy()


def subtree_counts(stats: LabelStats) -> np.ndarray:
    """n-bar_j = sum over the descendants d of j (j included) of n_d."""
    from ..datasets import ancestor_closure_matrix

    anc = ancestor_closure_matrix(stats.labels, dict(zip(stats.labels, stats.parents, strict=True)))
    return np.asarray(anc.T @ stats.counts.astype(np.float64)).ravel()


def node_imbalance_weights(stats: LabelStats, omega: float = 0.25) -> np.ndarray:
    """The second seed's (Xu et al., arXiv 2602.08986) node-wise weights w' (METHODS.md section 2).

    w_j = N / (C n-bar_j) (1 where n-bar_j is 0 or N), rescaled to omega + w_max (w - w_min) / (w_max - w_min).
    Which targets they multiply is the loss's ``weight_targets`` (negatives in the authors' code).
    """
    n, c = stats.n_train, stats.num_labels
    nbar = subtree_counts(stats)
    w = np.where((nbar == 0) | (nbar == n), 1.0, n / (c * np.maximum(nbar, 1.0)))
    w_min, w_max = w.min(), w.max()
    if w_max == w_min:
        return np.full(c, omega + w_max)
    return omega + w_max * (w - w_min) / (w_max - w_min)


def probability_bce(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """BCE(h, y) per element on probabilities, as C-HMCNN computes it (``torch.nn.BCELoss``).

    torch's kernel clamps each log at -100 and the gradient's denominator h (1 - h) at 1e-12, so a positive
    whose output fell to 1e-9 still gets a gradient of about -1/h. Clamping h to [1e-7, 1 - 1e-7] first (what
    tailsweep did before) zeroes that gradient: a rare node's positive could then never be pulled back.
    Not autocast-safe: called on float32 outside autocast (the worker computes the loss there).
    """
    return F.binary_cross_entropy(h, y, reduction="none")


class MCLoss(nn.Module):
    """C-HMCNN's max constraint loss, mean over batch and (non-root) nodes.

    h = (1 - y) MCM(p) + y MCM(y * p); loss = BCE(h, y), positive targets weighted by ``pos_weight`` and
    negative ones by ``neg_weight`` (ones for plain mcloss). Logits in, shape (B, C).
    """

    def __init__(self, hierarchy: Hierarchy, pos_weight: torch.Tensor | None = None,
                 neg_weight: torch.Tensor | None = None):
        super().__init__()
        self.hierarchy = hierarchy
        ones = torch.ones(hierarchy.num_nodes)
        self.register_buffer("pos_weight", ones if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32))
        self.register_buffer("neg_weight", ones.clone() if neg_weight is None
                             else torch.as_tensor(neg_weight, dtype=torch.float32))

    @classmethod
    def from_label_stats(cls, stats: LabelStats) -> MCLoss:
        return cls(Hierarchy.from_label_stats(stats))

    def coherent(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities after MCM (what evaluation uses)."""
        return self.hierarchy.mcm(torch.sigmoid(logits.float()))

    def elementwise_bce(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Unweighted BCE(h, y) per element, h the mcloss output; ``p`` probabilities, shape (B, C)."""
        h = (1 - y) * self.hierarchy.mcm(p) + y * self.hierarchy.mcm(y * p)
        return probability_bce(h, y)

    def target_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight on positive targets, weight on negative targets) now; node schedules override it."""
        return self.pos_weight, self.neg_weight

    def element_weight(self, y: torch.Tensor) -> torch.Tensor:
        pos, neg = self.target_weights()
        return y * pos + (1 - y) * neg

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(logits.float())
        y = targets.to(p.dtype)
        return (self.elementwise_bce(p, y) * self.element_weight(y)).mean()

    def weight_table(self) -> dict[str, list[float]]:
        return {"pos_weight": self.pos_weight.tolist(), "neg_weight": self.neg_weight.tolist()}
