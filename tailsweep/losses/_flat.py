"""Flat multi-label weighting schemes as ``nn.Module`` losses (METHODS.md section 1).

Every loss takes logits and {0,1} targets of shape (B, C) and returns the **mean** over B x C.
Weights live in registered buffers: they move with ``.to(device)`` and are checkpointed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import LabelStats
from ._weights import effective_number_weights, inverse_frequency_weights, pos_weight_weights


def _buffer(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


class WeightedBCE(nn.Module):
    """BCE with separate per-label weights for positive and negative targets.

    loss_ij = -[w+_j y_ij log p_ij + w-_j (1 - y_ij) log(1 - p_ij)], mean over (B, C).
    The common base of every frequency-weighting scheme.

    Args:
        pos_weight: w+, shape (C,).
        neg_weight: w-, shape (C,); ones when omitted.
    """

    def __init__(self, pos_weight: torch.Tensor, neg_weight: torch.Tensor | None = None):
        super().__init__()
        pos_weight = _buffer(pos_weight)
        self.register_buffer("pos_weight", pos_weight)
        self.register_buffer("neg_weight", _buffer(neg_weight) if neg_weight is not None else torch.ones_like(pos_weight))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        targets = targets.to(logits.dtype)
        # log p = -softplus(-z), log(1 - p) = -softplus(z): stable for any z.
        loss = self.pos_weight * targets * F.softplus(-logits) + self.neg_weight * (1 - targets) * F.softplus(logits)
        return loss.mean()

    def weight_table(self) -> dict[str, list[float]]:
        return {"pos_weight": self.pos_weight.tolist(), "neg_weight": self.neg_weight.tolist()}


class UnweightedBCE(WeightedBCE):
    """Plain BCE, the baseline of both seed papers. Equals ``binary_cross_entropy_with_logits``."""

    @classmethod
    def from_label_stats(cls, stats: LabelStats) -> UnweightedBCE:
        return cls(torch.ones(stats.num_labels))


class InverseFrequencyBCE(WeightedBCE):
    """Positives weighted by 1/n_j (mean 1 over labels); the first seed's (Shen et al.) baseline."""

    @classmethod
    def from_label_stats(cls, stats: LabelStats, max_weight: float | None = None) -> InverseFrequencyBCE:
        return cls(inverse_frequency_weights(stats.counts, 1.0, max_weight))


class SqrtInverseFrequencyBCE(WeightedBCE):
    """Positives weighted by 1/sqrt(n_j) (mean 1 over labels): a softer inverse frequency."""

    @classmethod
    def from_label_stats(cls, stats: LabelStats, max_weight: float | None = None) -> SqrtInverseFrequencyBCE:
        return cls(inverse_frequency_weights(stats.counts, 0.5, max_weight))


class PosWeightBCE(WeightedBCE):
    """Positives weighted by (N - n_j) / n_j, as ``BCEWithLogitsLoss(pos_weight=...)``."""

    @classmethod
    def from_label_stats(cls, stats: LabelStats, max_weight: float | None = None) -> PosWeightBCE:
        return cls(pos_weight_weights(stats.counts, stats.n_train, max_weight))


class EffectiveNumberBCE(WeightedBCE):
    """Class-balanced loss by the effective number of samples (Cui et al., CVPR 2019).

    Positives (1-beta)/(1-beta^n_j), negatives (1-beta)/(1-beta^(N-n_j)), each mean 1. It
    interpolates between the first seed's two baselines: beta = 0 is unweighted, beta -> 1 is
    inverse frequency. The first seed (Shen et al., arXiv 2305.04379) publishes only its abstract,
    so tailsweep offers this standard family, with beta searchable, as its proposed method.
    """

    @classmethod
    def from_label_stats(cls, stats: LabelStats, beta: float = 0.999) -> EffectiveNumberBCE:
        w_pos, w_neg = effective_number_weights(stats.counts, stats.n_train, beta)
        return cls(w_pos, w_neg)


class FocalLoss(nn.Module):
    """Sigmoid focal loss (Lin et al., ICCV 2017), mean-reduced.

    loss = alpha_t (1 - p_t)^gamma BCE, alpha_t = alpha for y = 1 and 1 - alpha for y = 0.
    gamma = 0 with alpha = None is plain BCE.

    Args:
        gamma: focusing parameter >= 0.
        alpha: positive-class balance in [0, 1], or None to disable.
    """

    def __init__(self, num_labels: int, gamma: float = 2.0, alpha: float | None = 0.25):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal: gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"focal: alpha must lie in [0, 1] or be null, got {alpha}")
        self.gamma = float(gamma)
        self.alpha = alpha
        self.num_labels = num_labels

    @classmethod
    def from_label_stats(cls, stats: LabelStats, gamma: float = 2.0, alpha: float | None = 0.25) -> FocalLoss:
        return cls(stats.num_labels, gamma, alpha)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        targets = targets.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        p = torch.sigmoid(logits)
        p_t = p * targets + (1 - p) * (1 - targets)
        loss = bce * (1 - p_t).pow(self.gamma) if self.gamma else bce
        if self.alpha is not None:
            loss = loss * (self.alpha * targets + (1 - self.alpha) * (1 - targets))
        return loss.mean()

    def weight_table(self) -> dict[str, list[float]]:
        return {"gamma": [self.gamma], "alpha": [float("nan") if self.alpha is None else self.alpha]}


class AsymmetricLoss(nn.Module):
    """Asymmetric loss (Ridnik et al., ICCV 2021), mean-reduced (the paper sums).

    y = 1: -(1-p)^gamma_pos log p;  y = 0: -p_m^gamma_neg log(1 - p_m), p_m = max(p - m, 0).
    gamma_pos = gamma_neg = m = 0 is plain BCE.
    """

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05, eps: float = 1e-8):
        super().__init__()
        if gamma_pos < 0 or gamma_neg < 0:
            raise ValueError(f"asymmetric: gammas must be >= 0, got {gamma_pos}, {gamma_neg}")
        if not 0.0 <= clip < 1.0:
            raise ValueError(f"asymmetric: clip (margin m) must lie in [0, 1), got {clip}")
        self.gamma_pos, self.gamma_neg, self.clip, self.eps = float(gamma_pos), float(gamma_neg), float(clip), eps

    @classmethod
    def from_label_stats(cls, stats: LabelStats, gamma_pos: float = 0.0, gamma_neg: float = 4.0,
                         clip: float = 0.05) -> AsymmetricLoss:
        return cls(gamma_pos, gamma_neg, clip)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        targets = targets.to(logits.dtype)
        p = torch.sigmoid(logits)
        log_p = -F.softplus(-logits)
        if self.clip > 0:
            p_m = (p - self.clip).clamp(min=0)
            log_1m = torch.log((1 - p_m).clamp(min=self.eps))
        else:
            p_m = p
            log_1m = -F.softplus(logits)
        pos = targets * log_p * ((1 - p).pow(self.gamma_pos) if self.gamma_pos else 1.0)
        neg = (1 - targets) * log_1m * (p_m.pow(self.gamma_neg) if self.gamma_neg else 1.0)
        return -(pos + neg).mean()

    def weight_table(self) -> dict[str, list[float]]:
        return {"gamma_pos": [self.gamma_pos], "gamma_neg": [self.gamma_neg], "clip": [self.clip]}
