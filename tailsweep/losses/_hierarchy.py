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

import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ..datasets import LabelStats
from ..datasets._graph import edges_from_lists, heights

_LOW = (1 << 32) - 1  # low half of a packed float32 key: _LOW - node index (the lowest index wins a tie)
_MASK31 = (1 << 31) - 1  # a float32's bits without its sign
_INT32_MIN = -(1 << 31)
_LITTLE = sys.byteorder == "little"  # the closed sweep reads the halves of its int64 keys as int32 pairs


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
    ``probability_bce``, in one function so that autograd keeps the index tensors and h, nothing else.
    Same values and gradients (torch's BCE backward: (h - y) / max(h (1 - h), 1e-12)).

    With 0/1 targets closed upward (see :meth:`Hierarchy.closed_targets`) one sweep finds both maxima
    (:meth:`Hierarchy.closed_argmax`); otherwise two sweeps, one over p and one over y p."""

    @staticmethod
    def forward(ctx, p: torch.Tensor, y: torch.Tensor, hierarchy: Hierarchy) -> torch.Tensor:
        p, y = p.detach(), y.detach()
        if hierarchy.closed_targets(y) and hierarchy.closed_sweep_fits(p):
            yt = y.t().contiguous()
            h, arg = hierarchy.closed_argmax(p, yt)
            ctx.closed = True
            ctx.save_for_backward(h, yt, arg)
            return F.binary_cross_entropy(h, yt, reduction="none").t()  # node-major inside, (B, C) outside
        ctx.closed = False
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
        if ctx.closed:
            h, yt, arg = ctx.saved_tensors
            gh = _bce_grad(h, yt).mul_(grad.t())
            return torch.zeros_like(gh).scatter_add_(0, arg, gh).t(), None, None
        h, y, arg_all, arg_pos = ctx.saved_tensors
        gh = grad * (h - y) / ((1 - h) * h).clamp_(min=1e-12)
        gp = torch.zeros_like(gh).scatter_add_(1, arg_all.long(), (1 - y) * gh)
        gp += y * torch.zeros_like(gh).scatter_add_(1, arg_pos.long(), y * gh)
        return gp, None, None


def _bce_grad(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d BCE(h, y) / dh as torch computes it: (h - y) / max(h (1 - h), 1e-12)."""
    return (h - y).div_(torch.mul(1 - h, h).clamp_(min=1e-12))


class _GivenGradient(torch.autograd.Function):
    """A scalar computed together with its gradient w.r.t. ``z`` (:func:`_closed_sum`): the backward hands that
    gradient over, scaled in place (no second B x C allocation); a second backward through a retained graph
    recomputes it with ``again()``, since the first one's tensor belongs to ``z.grad`` by then."""

    @staticmethod
    def forward(ctx, z, value, gz, again):
        ctx.gz, ctx.again = gz, again
        return value.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        gz, ctx.gz = ctx.gz, None
        if gz is None:
            gz = ctx.again()
        if grad.device.type != "cpu" or grad.item() != 1.0:  # no host sync on a GPU
            gz.mul_(grad)
        return gz, None, None, None


def _closed_sum(z, y, hierarchy, pos, neg, factor, divisor, want_grad, check):
    """MCLoss's weighted sum / ``divisor`` for 0/1 targets closed upward, from float32 logits ``z`` (B, C): a
    float64 scalar and its gradient w.r.t. z (None unless ``want_grad``), computed together chunk by chunk
    (:meth:`Hierarchy.closed_chunk`). With ``check`` each chunk first verifies that its targets are 0/1 and
    closed upward, and the whole call returns None at the first that is not."""
    gz = torch.empty_like(z) if want_grad else None
    rows = hierarchy.chunk_rows(z.shape[0], z.device)
    notidx = torch.arange(hierarchy.num_nodes, dtype=torch.int32, device=z.device).bitwise_not_().unsqueeze(1)
    total = torch.zeros((), dtype=torch.float64, device=z.device)
    for a in range(0, z.shape[0], rows):
        b = a + rows
        part = hierarchy.closed_chunk(
            z[a:b],
            y[a:b],
            pos,
            neg,
            None if factor is None else factor[a:b],
            divisor,
            gz[a:b] if want_grad else None,
            notidx,
            check,
        )
        if part is None:
            return None
        total += part
    return total / divisor, gz


_CHUNK_ELEMENTS = 1 << 21  # (node, row) keys per chunk on the CPU: 16 MB of int64, within a server's L3 cache


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
        self._sweep(keys)
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

    def closed_targets(self, y: torch.Tensor) -> bool:
        """True when every entry of ``y`` (B, C) is 0 or 1 and every positive's parents are positive, row by row
        (labels closed upward, as HMC data and tailsweep's imported hierarchies are). A negative node then has
        only negative descendants, so MCLoss's two maxima (over all descendants for negatives, over the
        positive ones for positives) come from one sweep. One host sync on a GPU."""
        if self.num_nodes >= 2**31 or y.dim() != 2 or y.shape[1] != self.num_nodes:
            return False
        yb = y != 0
        bad = (y != yb).any()
        if self.num_edges:
            bad |= (yb.index_select(1, self.edge_child) > yb.index_select(1, self.edge_parent)).any()
        return not bool(bad)

    def closed_sweep_fits(self, p: torch.Tensor) -> bool:
        """float32 probabilities (no negative value: a host sync on a GPU), below 2**31 nodes."""
        return _LITTLE and p.dtype == torch.float32 and self.num_nodes < 2**31 and bool((p >= 0).all())

    def closed_argmax(self, p: torch.Tensor, yt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MCLoss's h and its argmax positions, node-major (C, B): h float32 and arg int64 (node index). ``p`` (B, C)
        float32 >= 0; ``yt`` (C, B) 0/1 targets closed upward (:meth:`closed_targets`).

        One sweep of int64 keys: the high half holds p's bits, with the sign bit set on negatives so that every
        positive outranks every negative; the low half ~index (the lowest index wins a tie). A positive node (its
        own key a positive's) ends at its best positive descendant, a negative one at its best descendant, all of
        them negative -- the two maxima of h = (1 - y) MCM(p) + y MCM(y p)."""
        num = self.num_nodes
        high = p.contiguous().view(torch.int32) & _MASK31  # -0.0 as 0.0
        keys = torch.empty(num, p.shape[0], dtype=torch.int64, device=p.device)
        keys.copy_(high.t())
        del high
        keys.add_((yt == 0).to(torch.int64), alpha=_INT32_MIN).bitwise_left_shift_(32)
        keys.bitwise_or_(torch.arange(num, device=p.device).bitwise_not_().bitwise_and_(_LOW).unsqueeze(1))
        self._sweep(keys)
        halves = keys.view(torch.int32).view(num, -1, 2)  # little-endian: [..., 0] low, [..., 1] high
        h = (halves[..., 1] & _MASK31).view(torch.float32)
        arg = halves[..., 0].to(torch.int64).bitwise_not_()
        return h, arg

    def chunk_rows(self, batch: int, device: torch.device) -> int:
        """Rows per chunk of :class:`_MCLossSum`: the whole batch on a GPU (kernel launches are its cost), about
        ``_CHUNK_ELEMENTS`` keys on the CPU (memory traffic is). Measured in docs/benchmarks.md (hierarchy scale)."""
        if device.type != "cpu":
            return max(batch, 1)
        return max(1, min(batch, _CHUNK_ELEMENTS // max(self.num_nodes, 1)))

    def closed_chunk(self, z, y, pos, neg, factor, divisor, gz_out, notidx, check=False) -> torch.Tensor | None:
        """-sum(w log(where(y, h, 1 - h)) clamped at -100) over rows ``z`` (n, C) logits and ``y`` (n, C) 0/1 targets
        closed upward, h MCLoss's output (float64 scalar). Writes d/dz of that sum / ``divisor`` into ``gz_out``
        (n, C) unless None. With ``check``, None (and nothing written) when ``y`` is not 0/1 closed upward: the
        same test as :meth:`closed_targets`, on node-major rows in the cache instead of columns of the batch.
        Node-major inside: one transpose in, one out; the keys' int32 halves are written and read in place
        (high: p's bits, with the sign bit set on negative targets; low: ~index), see :meth:`closed_argmax`."""
        num, n = self.num_nodes, z.shape[0]
        yf = y.t().contiguous()
        yt = yf != 0
        if check:
            bad = torch.ne(yf, yt).any()
            if self.num_edges:
                bad |= (yt.index_select(0, self.edge_child) > yt.index_select(0, self.edge_parent)).any()
            if bool(bad):
                return None
        # (C, n), a new tensor (z.t().contiguous() would be z itself for one row); sigmoids are >= +0.0, so their
        # bits order as int32
        p = torch.empty(num, n, dtype=z.dtype, device=z.device).copy_(z.t()).sigmoid_()
        keys = torch.empty(num, n, 2, dtype=torch.int32, device=z.device)
        keys[..., 0] = notidx
        bits = p.view(torch.int32)
        torch.where(yt, bits, bits | _INT32_MIN, out=keys[..., 1])
        self._sweep(keys.view(torch.int64).view(num, n))
        h = (keys[..., 1] & _MASK31).view(torch.float32)
        w = None if pos is None else torch.where(yt, pos.unsqueeze(1), neg.unsqueeze(1))
        if factor is not None:
            w = factor.t() if w is None else w * factor.t()
        logs = torch.where(yt, h, 1 - h).log_().clamp_(min=-100)
        total = -(logs if w is None else logs.mul_(w)).sum(dtype=torch.float64)
        if gz_out is not None:
            gh = _bce_grad(h, yf).mul_(1.0 / divisor)
            if w is not None:
                gh.mul_(w)
            arg = keys[..., 0].bitwise_not().long()
            gp = torch.zeros_like(gh).scatter_add_(0, arg, gh)
            gz_out.copy_(gp.mul_(p).mul_(1 - p).t())
        return total

    def _sweep(self, keys: torch.Tensor) -> None:
        """Fold each level's children into their parents (amax, in place), node-major keys."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="index_reduce.. is in beta")
            for child, parent in self._levels():
                keys.index_reduce_(0, parent, keys.index_select(0, child), "amax", include_self=True)

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
        z = logits.float()
        y = targets.to(z.dtype)
        fused = self.fused_sum(z, y, divisor=z.numel())
        if fused is not None:
            return fused
        p = torch.sigmoid(z)
        return (self.elementwise_bce(p, y) * self.element_weight(y)).mean()

    def fused_sum(
        self, z: torch.Tensor, y: torch.Tensor, divisor: float, factor: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """sum(BCE(h, y) * target weights * ``factor``) / ``divisor`` by the one-sweep path (:func:`_closed_sum`),
        or None where it does not apply (targets not 0/1 closed upward, a big-endian host): the caller then takes
        the composition, which gives the same value. ``z`` float32 logits (B, C); ``factor`` (B, C), detached.
        On a GPU the targets are checked first (one host sync); on the CPU chunk by chunk, in the cache."""
        if not (_LITTLE and z.dtype == torch.float32 and z.dim() == 2 and y.shape == z.shape):
            return None
        cpu = z.device.type == "cpu"
        if not cpu and not self.hierarchy.closed_targets(y):
            return None
        pos, neg = (t.detach() for t in self.target_weights())
        want = z.requires_grad and torch.is_grad_enabled()
        args = (z.detach(), y.detach(), self.hierarchy, pos, neg, factor, divisor)
        with torch.no_grad():
            out = _closed_sum(*args, want_grad=want, check=cpu)
        if out is None:
            return None
        value, gz = out
        if not want:
            return value.to(z.dtype)
        return _GivenGradient.apply(
            z, value.to(z.dtype), gz, lambda: _closed_sum(*args, want_grad=True, check=False)[1]
        )

    def weight_table(self) -> dict[str, list[float]]:
        return {"pos_weight": self.pos_weight.tolist(), "neg_weight": self.neg_weight.tolist()}
