"""The second seed's full method (Xu et al., arXiv 2602.08986): node weights, an ensemble of heads and an
uncertainty-driven focal term (docs/methods.md section 2), plus its weight schedules and mixed loss.

Shapes: an ensemble's logits are (M, B, C) -- M heads on the same batch. Uncertainty is computed from the
heads' *unconstrained* sigmoids (before MCM), detached: it scales the loss, it is not trained through.

    loss = sum over (m, i, j) of  w_j^(y) * (f_min + u_ij^k) * BCE(h^m_ij, y_ij)

with h^m the mcloss output of head m, w^(0) = w' the node-imbalance weight on negatives and w^(1) = 1
(the authors' code; ``weight_targets`` and ``reduction`` name the other readings).
"""

from __future__ import annotations

import torch

from ..datasets import LabelStats
from ._checks import (  # noqa: F401 (re-exported)
    NEEDS_DISAGREEMENT,
    REDUCTIONS,
    SCHEDULES,
    UNCERTAINTIES,
    WEIGHT_TARGETS,
    check_node_params,
)
from ._hierarchy import Hierarchy, MCLoss, node_imbalance_weights

_EPS = 1e-7


def binary_entropy(p: torch.Tensor) -> torch.Tensor:
    """H2(p) in bits, elementwise (0 at p in {0, 1})."""
    p = p.clamp(_EPS, 1 - _EPS)
    return -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))


def uncertainty(p: torch.Tensor, mode: str) -> torch.Tensor:
    """u in [0, 1] per (sample, node) from the heads' probabilities ``p`` of shape (M, B, C).

    margin (the paper's bBMA): 1 - |2 p-bar - 1|. entropy: H2(p-bar). aleatoric: mean over heads of
    H2(p^m). epistemic: mean pairwise Jensen-Shannon divergence (base 2) between the heads' Bernoullis.
    gated_margin (the paper's GMU): m = |2 p-bar - 1|, s = unbiased std over heads,
    g = 1 - exp(-m / (2 s + 1e-10)), u = 1 - g m.
    """
    if mode not in UNCERTAINTIES:
        raise ValueError(f"unknown uncertainty mode '{mode}'; choose one of {', '.join(UNCERTAINTIES)}")
    heads = p.shape[0]
    if mode in NEEDS_DISAGREEMENT and heads < 2:
        raise ValueError(f"uncertainty '{mode}' measures disagreement between heads and needs heads >= 2, got {heads}")
    mean = p.mean(0)
    if mode == "margin":
        return 1 - (2 * mean - 1).abs()
    if mode == "entropy":
        return binary_entropy(mean)
    if mode == "aleatoric":
        return binary_entropy(p).mean(0)
    if mode == "epistemic":
        a, b = torch.triu_indices(heads, heads, offset=1, device=p.device)
        pa, pb = p[a], p[b]  # (pairs, B, C)
        js = binary_entropy((pa + pb) / 2) - (binary_entropy(pa) + binary_entropy(pb)) / 2
        return js.mean(0).clamp(0, 1)
    margin = (2 * mean - 1).abs()
    gate = 1 - torch.exp(-margin / (2 * p.std(0, unbiased=True) + 1e-10))
    return 1 - gate * margin


def schedule_fraction(schedule: str, step: int, steps: int, power: float = 3.0) -> float:
    """How far (0 -> 1) the target weights have moved toward the uniform omega at minibatch ``step`` of ``steps``.

    linear: i/(S-1); exponential: i^power/(S-1)^power (power 3 by default); alternate: 0 on even
    batches, 1 (omega everywhere) on odd ones; none: 0.
    """
    if schedule == "none" or steps <= 1:
        return 0.0
    if schedule == "linear":
        return step / (steps - 1)
    if schedule == "exponential":
        return (step / (steps - 1)) ** power
    if schedule == "alternate":
        return float(step % 2)
    raise ValueError(f"unknown schedule '{schedule}'; choose one of {', '.join(SCHEDULES)}")


class NodeImbalanceLoss(MCLoss):
    """mcloss with the second seed's node-wise imbalance weights w' (docs/methods.md section 2).

    ``weight_targets="negatives"`` (the default, the authors' code): w'_j multiplies the BCE of node j's
    negative targets and positives get 1 -- the code keeps [w', 1] per node and indexes it with the label.
    Most nodes have w' < 1, so their negatives cost less and recall rises. ``"positives"`` is the other
    reading (w' on positives, 1 on negatives; what tailsweep did before), which lowers recall.

    ``schedule`` moves *both* target weights (w' and 1) toward the uniform omega over each epoch's
    minibatches (the worker calls :meth:`set_progress`), so the epoch's last batch weighs omega everywhere;
    ``schedule_power`` is the exponential schedule's exponent. ``mix`` = lambda blends lambda * weighted +
    (1 - lambda) * unweighted mcloss. Both default to off; the seed reports they did not recover precision.
    Mean over batch and nodes (the authors' weight-only script takes the mean).
    """

    reduction = "mean"

    def __init__(
        self,
        hierarchy: Hierarchy,
        node_weight: torch.Tensor,
        omega: float = 0.25,
        schedule: str = "none",
        mix: float = 1.0,
        weight_targets: str = "negatives",
        schedule_power: float = 3.0,
    ):
        w = torch.as_tensor(node_weight, dtype=torch.float32)
        ones = torch.ones_like(w)
        if weight_targets not in WEIGHT_TARGETS:
            raise ValueError(f"weight_targets must be one of {', '.join(WEIGHT_TARGETS)}, got {weight_targets!r}")
        pos, neg = (w, ones) if weight_targets == "positives" else (ones, w)
        super().__init__(hierarchy, pos, neg)
        self.register_buffer("node_weight", w)
        self.omega, self.schedule, self.mix = float(omega), schedule, float(mix)
        self.weight_targets, self.schedule_power = weight_targets, float(schedule_power)
        self.fraction = 0.0

    @classmethod
    def from_label_stats(
        cls,
        stats: LabelStats,
        omega: float = 0.25,
        schedule: str = "none",
        mix: float = 1.0,
        weight_targets: str = "negatives",
        schedule_power: float = 3.0,
    ) -> NodeImbalanceLoss:
        if problems := check_node_params(omega, schedule, mix, weight_targets, schedule_power):
            raise ValueError("node_imbalance: " + "; ".join(problems))
        w = torch.as_tensor(node_imbalance_weights(stats, omega), dtype=torch.float32)
        return cls(Hierarchy.from_label_stats(stats), w, omega, schedule, mix, weight_targets, schedule_power)

    def set_progress(self, step: int, steps: int) -> None:
        """Minibatch ``step`` (0-based) of ``steps`` in the current epoch (drives the schedule)."""
        self.fraction = schedule_fraction(self.schedule, step, steps, self.schedule_power)

    def target_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fraction == 0.0:
            return self.pos_weight, self.neg_weight
        f = self.fraction
        return self.pos_weight + (self.omega - self.pos_weight) * f, self.neg_weight + (
            self.omega - self.neg_weight
        ) * f

    def _reduce(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum() if self.reduction == "sum" else x.mean()

    def _mixed(self, bce: torch.Tensor, y: torch.Tensor, factor: torch.Tensor | float = 1.0) -> torch.Tensor:
        weighted = self._reduce(bce * self.element_weight(y) * factor)
        if self.mix >= 1.0:
            return weighted
        return self.mix * weighted + (1 - self.mix) * self._reduce(bce)

    def _divisor(self, z: torch.Tensor) -> float:
        return 1.0 if self.reduction == "sum" else float(z.numel())

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z = logits.float()
        y = targets.to(z.dtype)
        if self.mix >= 1.0 and (fused := self.fused_sum(z, y, self._divisor(z))) is not None:
            return fused  # the one-sweep path; the composition below gives the same value
        p = torch.sigmoid(z)
        return self._mixed(self.elementwise_bce(p, y), y)

    def weight_table(self) -> dict:
        return {
            "weight_targets": self.weight_targets,
            "node_weight": self.node_weight.tolist(),
            **super().weight_table(),
        }


class NodeImbalanceFocalLoss(NodeImbalanceLoss):
    """node_imbalance on an ensemble of M heads with an uncertainty-driven focal factor (f_min + u^k).

    Logits (M, B, C) in. ``k=None`` is resolved by the worker (2 for feature tables, 1 for images).

    ``reduction="sum"`` (the default) sums over heads, batch and nodes, as the authors' focal script does.
    Under Adam a constant scale of the loss does not change the step, but the coupled weight decay
    (``Adam(weight_decay=...)`` adds wd * theta to the gradient) is then M B C' times weaker relative to the
    loss than under a mean: summing reproduces the authors' effective regularisation with their
    weight_decay = 1e-5 (docs/methods.md section 2; ``tests/losses/test_ensemble.py`` shows one Adam step of the sum
    with wd equal to one of the mean with wd / (M B C')). ``"mean"`` is the other reading (tailsweep's before):
    with the same weight decay it is heavily over-regularised.
    """

    def __init__(
        self,
        hierarchy: Hierarchy,
        node_weight: torch.Tensor,
        heads: int = 2,
        uncertainty: str = "margin",
        f_min: float = 0.25,
        k: float = 2.0,
        omega: float = 0.25,
        schedule: str = "none",
        mix: float = 1.0,
        weight_targets: str = "negatives",
        schedule_power: float = 3.0,
        reduction: str = "sum",
    ):
        super().__init__(hierarchy, node_weight, omega, schedule, mix, weight_targets, schedule_power)
        self.heads, self.mode, self.f_min, self.k = int(heads), uncertainty, float(f_min), float(k)
        self.reduction = reduction

    @classmethod
    def from_label_stats(
        cls,
        stats: LabelStats,
        heads: int = 2,
        uncertainty: str = "margin",
        f_min: float = 0.25,
        k: float | None = 2.0,
        omega: float = 0.25,
        schedule: str = "none",
        mix: float = 1.0,
        weight_targets: str = "negatives",
        schedule_power: float = 3.0,
        reduction: str = "sum",
    ) -> NodeImbalanceFocalLoss:
        if problems := check_node_params(
            omega, schedule, mix, weight_targets, schedule_power, heads, uncertainty, f_min, k, reduction
        ):
            raise ValueError("node_imbalance_focal: " + "; ".join(problems))
        w = torch.as_tensor(node_imbalance_weights(stats, omega), dtype=torch.float32)
        return cls(
            Hierarchy.from_label_stats(stats),
            w,
            int(heads),
            uncertainty,
            f_min,
            2.0 if k is None else k,
            omega,
            schedule,
            mix,
            weight_targets,
            schedule_power,
            reduction,
        )

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 3 or logits.shape[0] != self.heads:
            raise ValueError(
                f"node_imbalance_focal expects logits of shape (heads={self.heads}, batch, labels), "
                f"got {tuple(logits.shape)}"
            )
        m, b, c = logits.shape
        p = torch.sigmoid(logits.float())
        y = targets.to(p.dtype).expand(m, b, c)
        with torch.no_grad():
            u = uncertainty(p, self.mode)  # from the unconstrained sigmoids, detached
            factor = self.f_min + (u.pow(self.k) if self.k != 1 else u)
        if self.mix >= 1.0:
            z, yy = logits.float().reshape(m * b, c), y.reshape(m * b, c)
            if (fused := self.fused_sum(z, yy, self._divisor(z), factor.expand(m, b, c).reshape(m * b, c))) is not None:
                return fused
        bce = self.elementwise_bce(p.reshape(m * b, c), y.reshape(m * b, c)).view(m, b, c)
        return self._mixed(bce, y, factor)

    def coherent(self, logits: torch.Tensor) -> torch.Tensor:
        """Prediction: the mean over heads of MCM-coherent probabilities, (B, C)."""
        return ensemble_coherent(logits, self.hierarchy)

    def weight_table(self) -> dict:
        return {"reduction": self.reduction, **super().weight_table()}


def ensemble_coherent(logits: torch.Tensor, hierarchy: Hierarchy | None) -> torch.Tensor:
    """Probabilities from (B, C) or (M, B, C) logits: MCM per head (when a hierarchy is given), mean over heads."""
    p = torch.sigmoid(logits.float())
    if p.dim() == 2:
        return hierarchy.mcm(p) if hierarchy is not None else p
    m, b, c = p.shape
    if hierarchy is not None:
        p = hierarchy.mcm(p.reshape(m * b, c)).view(m, b, c)
    return p.mean(0)


def default_k(is_image: bool) -> float:
    """The seed's focal exponent: 2 on feature tables, 1 on images."""
    return 1.0 if is_image else 2.0
