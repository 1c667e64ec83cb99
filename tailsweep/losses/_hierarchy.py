"""Hierarchy machinery and hierarchical losses (docs/methods.md section 2).

MCM (the max constraint module of C-HMCNN, Giunchiglia & Lukasiewicz, NeurIPS 2020) makes outputs
coherent: out_A = max over the descendants B of A (A included) of p_B, so a parent is never below
a child. C-HMCNN builds a batch x C x C tensor and takes ``torch.max`` over its last axis (C = 4,130 at
batch 256: 4.4 G elements). Here one custom autograd function does it in O(batch x C) memory whatever the
depth: nodes are grouped by *height* (longest path down to a leaf), and one sweep up the levels folds each
level's children into their parents with one in-place ``index_reduce_(amax)``, carrying along each node's
argmax descendant; the backward scatters the incoming gradient into those positions. Values and gradients
are C-HMCNN's: the gradient of a max reaches one argmax descendant, the lowest-indexed one on a tie (the
first maximum, as ``torch.max`` picks it). Trees and DAGs (several parents) alike; work O(batch x edges).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ..datasets import LabelStats
from ..datasets._graph import edges_from_lists, heights

_LOW = (1 << 32) - 1  # low half of a packed float32 key: _LOW - node index (the lowest index wins a tie)


def _ordered_bits(p: torch.Tensor, nonnegative: bool = False) -> torch.Tensor:
    """int32 whose order is the float32 order of ``p`` (negative floats have their magnitude bits flipped; the bits
    of non-negative floats are already in order: ``nonnegative`` skips the flip, e.g. for probabilities)."""
    bits = p.contiguous().view(torch.int32)
    return bits if nonnegative else torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)


class _MaxConstraint(torch.autograd.Function):
    """out[:, A] = max of p over A's descendants (A included); backward: gradient to the argmax descendant."""

    @staticmethod
    def forward(ctx, p: torch.Tensor, hierarchy: Hierarchy) -> torch.Tensor:
        arg = hierarchy.argmax_descendants(p.detach())  # (B, C) int32 or int64
        out = p.detach().gather(1, arg.long())
        ctx.save_for_backward(arg)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (arg,) = ctx.saved_tensors
        return torch.zeros_like(grad).scatter_add_(1, arg.long(), grad.contiguous()), None


class _MCLossBCE(torch.autograd.Function):
    """BCE(h, y) per element with h = (1 - y) MCM(p) + y MCM(y p): the composition of two ``_MaxConstraint`` and
    ``probability_bce``, in one function so that autograd keeps two int32 index tensors and h, nothing else.
    Same values and gradients (torch's BCE backward: (h - y) / max(h (1 - h), 1e-12))."""

    @staticmethod
    def forward(ctx, p: torch.Tensor, y: torch.Tensor, hierarchy: Hierarchy) -> torch.Tensor:
        p, y = p.detach(), y.detach()
        yp = y * p
        # skipping the sign flip of negative floats needs a look at y: a host sync, taken on the CPU only
        nonnegative = not p.is_cuda and bool((y >= 0).all())  # then y p is too (p: probabilities)
        arg_all = hierarchy.argmax_descendants(p, nonnegative=True)
        arg_pos = hierarchy.argmax_descendants(yp, nonnegative=nonnegative)
        h = (1 - y) * p.gather(1, arg_all.long())
        h += y * yp.gather(1, arg_pos.long())
        ctx.save_for_backward(h, y, arg_all, arg_pos)
        # torch's own kernel (C-HMCNN's BCELoss): a one-log shortcut would differ from it by an ulp
        return F.binary_cross_entropy(h, y, reduction="none")

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        h, y, arg_all, arg_pos = ctx.saved_tensors
        gh = grad * (h - y) / ((1 - h) * h).clamp_(min=1e-12)
        gp = torch.zeros_like(gh).scatter_add_(1, arg_all.long(), (1 - y) * gh)
        gp += y * torch.zeros_like(gh).scatter_add_(1, arg_pos.long(), y * gh)
        return gp, None, None


class Hierarchy(nn.Module):
    """Edges of a label hierarchy as index buffers, sorted by level for the max-constraint sweep.

    Args:
        parents: for each node index, the indices of its parents (self-edges are ignored; a cycle is refused).
    """

    def __init__(self, parents: list[list[int]]):
        super().__init__()
        num = len(parents)
        self.num_nodes = num
        child, parent = edges_from_lists(parents)
        keep = child != parent
        child, parent = child[keep], parent[keep]
        h = heights(child, parent, num)
        if (h < 0).any():
            raise ValueError(f"the hierarchy has a cycle through {int((h < 0).sum())} node(s); it must be a DAG")
        # Level k folds the edges whose *child* has height k: by then every such child is final (all of its own
        # descendants are already folded into it).
        order = np.argsort(h[child], kind="stable")
        level_of_edge = h[child][order]
        self.bounds = np.searchsorted(level_of_edge, np.arange(int(h.max()) + 2 if num else 1)).tolist()
        self.register_buffer("edge_child", torch.from_numpy(child[order]), persistent=False)
        self.register_buffer("edge_parent", torch.from_numpy(parent[order]), persistent=False)
        self.num_edges = len(child)

    @classmethod
    def from_label_stats(cls, stats: LabelStats) -> Hierarchy:
        return cls(stats.parent_indices())

    def _levels(self):
        for a, b in zip(self.bounds[:-1], self.bounds[1:], strict=True):
            if b > a:
                yield self.edge_child[a:b], self.edge_parent[a:b]

    def argmax_descendants(self, p: torch.Tensor, nonnegative: bool = False) -> torch.Tensor:
        """(B, C), contiguous: for each row and node A, the lowest-indexed descendant of A (A included) where p is
        largest (int32 below 2**31 nodes). No autograd; O(B x C) memory.

        The sweep runs node-major (C, B), so that each level moves whole rows of B values."""
        num = self.num_nodes
        if p.dtype not in (torch.float32, torch.float16, torch.bfloat16) or num >= 2**31:
            return self._argmax_two_sweeps(p)
        # one int64 key per (node, row): the float32 order in the high half, ~index in the low half, so one amax
        # sweep finds both the max and its lowest-indexed argmax
        keys = torch.empty(num, p.shape[0], dtype=torch.int64, device=p.device)
        keys.copy_(_ordered_bits(p.float(), nonnegative).t()).bitwise_left_shift_(32)
        keys.bitwise_or_(torch.arange(num, device=p.device).bitwise_not_().bitwise_and_(_LOW).unsqueeze(1))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="index_reduce.. is in beta")
            for child, parent in self._levels():
                keys.index_reduce_(0, parent, keys.index_select(0, child), "amax", include_self=True)
        low = keys.to(torch.int32)  # the low half, wrapped: ~index
        del keys
        return low.bitwise_not_().t().contiguous()

    def _argmax_two_sweeps(self, p: torch.Tensor) -> torch.Tensor:
        """Any dtype (float64 for gradcheck): the max first, then the lowest-indexed descendant that reaches it."""
        v = p.t().contiguous()
        levels = list(self._levels())
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="index_reduce.. is in beta")
            for child, parent in levels:
                v.index_reduce_(0, parent, v.index_select(0, child), "amax", include_self=True)
            big = self.num_nodes
            arg = torch.where(p.t() == v, torch.arange(big, device=p.device).unsqueeze(1), big)
            for child, parent in levels:
                reached = v.index_select(0, child) == v.index_select(0, parent)
                cand = torch.where(reached, arg.index_select(0, child), big)
                arg.index_reduce_(0, parent, cand, "amin", include_self=True)
        return arg.t().contiguous()

    def mcm(self, p: torch.Tensor) -> torch.Tensor:
        """Coherent outputs: out[:, A] = max of p over A's descendants (A included). Shape (B, C)."""
        return _MaxConstraint.apply(p, self)

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
    """The second seed's (Xu et al., arXiv 2602.08986) node-wise weights w' (docs/methods.md section 2).

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

    def __init__(
        self, hierarchy: Hierarchy, pos_weight: torch.Tensor | None = None, neg_weight: torch.Tensor | None = None
    ):
        super().__init__()
        self.hierarchy = hierarchy
        ones = torch.ones(hierarchy.num_nodes)
        self.register_buffer(
            "pos_weight", ones if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32)
        )
        self.register_buffer(
            "neg_weight", ones.clone() if neg_weight is None else torch.as_tensor(neg_weight, dtype=torch.float32)
        )

    @classmethod
    def from_label_stats(cls, stats: LabelStats) -> MCLoss:
        return cls(Hierarchy.from_label_stats(stats))

    def coherent(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities after MCM (what evaluation uses)."""
        return self.hierarchy.mcm(torch.sigmoid(logits.float()))

    def elementwise_bce(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Unweighted BCE(h, y) per element, h the mcloss output; ``p`` probabilities, shape (B, C)."""
        return _MCLossBCE.apply(p, y, self.hierarchy)

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
