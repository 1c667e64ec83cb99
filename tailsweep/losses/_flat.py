"""Flat multi-label weighting schemes as ``nn.Module`` losses (docs/methods.md section 1).

Every loss takes logits and {0,1} targets of shape (B, C) and returns the **mean** over B x C.
Weights live in registered buffers: they move with ``.to(device)`` and are checkpointed.

Focal modifier: every frequency scheme except ``focal`` and ``asymmetric`` (which focus on their own)
takes ``focal_gamma`` (None = off). When set, each loss element is multiplied by (1 - p_t)^gamma,
p_t = p for y = 1 and 1 - p for y = 0, with p the sigmoid of the logit the loss itself sees (the shifted
logit for logit_adjusted and distribution_balanced), not detached -- as the focal loss does:

    element = weight_element * (1 - p_t)^gamma * BCE element.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import LabelStats
from ._checks import (  # noqa: F401 (re-exported: the checks live where the registry can import them without torch)
    DB_BIAS,
    check_apl_params,
    check_distribution_balanced_params,
    check_focal_gamma,
    check_logit_adjusted_params,
)
from ._weights import (
    distribution_balanced_bias,
    effective_number_weights,
    inverse_counts,
    inverse_frequency_weights,
    logit_adjustments,
    pos_weight_weights,
)


def _buffer(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


def _raise(scheme: str, problems: list[str]) -> None:
    if problems:
        raise ValueError(f"{scheme}: " + "; ".join(problems))


def focal_factor(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """(1 - p_t)^gamma elementwise, p = sigmoid(logits), p_t = p for y = 1 and 1 - p for y = 0.

    Computed as exp(gamma * log(1 - p_t)) with log(1 - p_t) = logsigmoid(-z) for y = 1 and
    logsigmoid(z) for y = 0: exact for {0, 1} targets, finite with finite gradients at any logit
    (a plain pow has an infinite derivative at 1 - p_t = 0 for gamma < 1).
    """
    log_q = targets * F.logsigmoid(-logits) + (1 - targets) * F.logsigmoid(logits)
    return torch.exp(gamma * log_q)


class WeightedBCE(nn.Module):
    """BCE with separate per-label weights for positive and negative targets.

    loss_ij = -[w+_j y_ij log p_ij + w-_j (1 - y_ij) log(1 - p_ij)] * f_ij, mean over (B, C),
    f_ij = (1 - p_t)^focal_gamma when the focal modifier is on, else 1.
    The common base of every frequency-weighting scheme.

    Args:
        pos_weight: w+, shape (C,).
        neg_weight: w-, shape (C,); ones when omitted.
        focal_gamma: focal modifier exponent >= 0, or None (off).
    """

    scheme = "weighted_bce"

    def __init__(
        self, pos_weight: torch.Tensor, neg_weight: torch.Tensor | None = None, focal_gamma: float | None = None
    ):
        super().__init__()
        _raise(self.scheme, check_focal_gamma(focal_gamma))
        pos_weight = _buffer(pos_weight)
        self.register_buffer("pos_weight", pos_weight)
        self.register_buffer(
            "neg_weight", _buffer(neg_weight) if neg_weight is not None else torch.ones_like(pos_weight)
        )
        self.focal_gamma = None if focal_gamma is None else float(focal_gamma)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        targets = targets.to(logits.dtype)
        # log p = -softplus(-z), log(1 - p) = -softplus(z): stable for any z.
        loss = self.pos_weight * targets * F.softplus(-logits) + self.neg_weight * (1 - targets) * F.softplus(logits)
        if self.focal_gamma is not None:
            loss = loss * focal_factor(logits, targets, self.focal_gamma)
        return loss.mean()

    def weight_table(self) -> dict[str, list[float]]:
        return {"pos_weight": self.pos_weight.tolist(), "neg_weight": self.neg_weight.tolist()}


class UnweightedBCE(WeightedBCE):
    """Plain BCE, the baseline of both seed papers. Equals ``binary_cross_entropy_with_logits``."""

    scheme = "unweighted"

    @classmethod
    def from_label_stats(cls, stats: LabelStats, focal_gamma: float | None = None) -> UnweightedBCE:
        return cls(torch.ones(stats.num_labels), focal_gamma=focal_gamma)


class InverseFrequencyBCE(WeightedBCE):
    """Positives weighted by 1/n_j (mean 1 over labels); the first seed's (Shen et al.) baseline."""

    scheme = "inverse_frequency"

    @classmethod
    def from_label_stats(
        cls, stats: LabelStats, max_weight: float | None = None, focal_gamma: float | None = None
    ) -> InverseFrequencyBCE:
        return cls(inverse_frequency_weights(stats.counts, 1.0, max_weight), focal_gamma=focal_gamma)


class SqrtInverseFrequencyBCE(WeightedBCE):
    """Positives weighted by 1/sqrt(n_j) (mean 1 over labels): a softer inverse frequency."""

    scheme = "sqrt_inverse_frequency"

    @classmethod
    def from_label_stats(
        cls, stats: LabelStats, max_weight: float | None = None, focal_gamma: float | None = None
    ) -> SqrtInverseFrequencyBCE:
        return cls(inverse_frequency_weights(stats.counts, 0.5, max_weight), focal_gamma=focal_gamma)


class PosWeightBCE(WeightedBCE):
    """Positives weighted by (N - n_j) / n_j, as ``BCEWithLogitsLoss(pos_weight=...)``."""

    scheme = "pos_weight"

    @classmethod
    def from_label_stats(
        cls, stats: LabelStats, max_weight: float | None = None, focal_gamma: float | None = None
    ) -> PosWeightBCE:
        return cls(pos_weight_weights(stats.counts, stats.n_train, max_weight), focal_gamma=focal_gamma)


class EffectiveNumberBCE(WeightedBCE):
    """Class-balanced loss by the effective number of samples (Cui et al., CVPR 2019).

    Positives (1-beta)/(1-beta^n_j), negatives (1-beta)/(1-beta^(N-n_j)), each mean 1. It
    interpolates between the first seed's two baselines: beta = 0 is unweighted, beta -> 1 is
    inverse frequency. The first seed (Shen et al., arXiv 2305.04379) publishes only its abstract,
    so tailsweep offers this standard family, with beta searchable, as its proposed method.
    """

    scheme = "effective_number"

    @classmethod
    def from_label_stats(
        cls, stats: LabelStats, beta: float = 0.999, focal_gamma: float | None = None
    ) -> EffectiveNumberBCE:
        w_pos, w_neg = effective_number_weights(stats.counts, stats.n_train, beta)
        return cls(w_pos, w_neg, focal_gamma=focal_gamma)


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
        # (1 - p_t)^gamma through exp(gamma log(1 - p_t)): a plain pow has an infinite derivative where
        # 1 - p_t underflows to 0 (saturated logits) for gamma < 1, which gave NaN gradients.
        loss = bce * focal_factor(logits, targets, self.gamma) if self.gamma else bce
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
    def from_label_stats(
        cls, stats: LabelStats, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05
    ) -> AsymmetricLoss:
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


class AsymmetricPolynomialLoss(nn.Module):
    """Asymmetric polynomial loss, APL (Huang, Qi, Wang, Lin, ICASSP 2023, arXiv 2304.05361), mean-reduced (their
    code sums), as their code (LUMIA-Group/APL, ``APLloss.py``) computes it.

    ASL's margin and one-sided focusing (``asymmetric``) on a BCE whose Taylor expansion around p_t = 1 gets new
    leading coefficients, as PolyLoss does (Leng et al., ICLR 2022):

        y = 1:  -(1 - p)^gamma_pos   * [log p + eps1 (1 - p) + (eps2 / 2) (1 - p)^2]
        y = 0:  -p_m^gamma_neg       * [log q + eps0 q],   q = min(1 - p + m, 1) = 1 - p_m,  p_m = max(p - m, 0)

    eps1 = ``epsilon_pos`` (1), eps2 = ``epsilon_pos2`` (-2.5), eps0 = ``epsilon_neg`` (0), m = ``clip`` (0.05),
    gamma_pos = 0, gamma_neg = 4: the code's defaults. The focusing weights (1 - p)^gamma_pos and
    p_m^gamma_neg are computed without gradient, as the code does by default (``disable_torch_grad_focal_loss``).
    The negatives' polynomial term is eps0 * q, a power of q = p_t itself, where PolyLoss's first term would be
    eps0 * (1 - q); with the default eps0 = 0 the two agree. All coefficients zero with gamma_pos = gamma_neg = 0
    is ASL's loss with margin m; with m = 0 too it is plain BCE.

    Departures from the code, all numerical: log p is log-sigmoid (the code clamps p at 1e-8 first, which
    stops the gradient of a positive whose p fell below 1e-8), and with m = 0 log(1 - p) is log-sigmoid(-x);
    the polynomial terms use p unclamped (a difference below 1e-8).
    """

    scheme = "apl"

    def __init__(
        self,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        epsilon_pos: float = 1.0,
        epsilon_pos2: float = -2.5,
        epsilon_neg: float = 0.0,
    ):
        super().__init__()
        _raise(self.scheme, check_apl_params(gamma_pos, gamma_neg, clip, epsilon_pos, epsilon_pos2, epsilon_neg))
        self.gamma_pos, self.gamma_neg, self.clip = float(gamma_pos), float(gamma_neg), float(clip)
        self.epsilon_pos, self.epsilon_pos2, self.epsilon_neg = (
            float(epsilon_pos),
            float(epsilon_pos2),
            float(epsilon_neg),
        )

    @classmethod
    def from_label_stats(
        cls,
        stats: LabelStats,
        gamma_pos: float = 0.0,
        gamma_neg: float = 4.0,
        clip: float = 0.05,
        epsilon_pos: float = 1.0,
        epsilon_pos2: float = -2.5,
        epsilon_neg: float = 0.0,
    ) -> AsymmetricPolynomialLoss:
        return cls(gamma_pos, gamma_neg, clip, epsilon_pos, epsilon_pos2, epsilon_neg)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = logits.float()
        y = targets.to(x.dtype)
        p, one_minus_p = torch.sigmoid(x), torch.sigmoid(-x)
        pos = F.logsigmoid(x) + self.epsilon_pos * one_minus_p + 0.5 * self.epsilon_pos2 * one_minus_p.square()
        if self.clip > 0:
            q = (one_minus_p + self.clip).clamp(max=1.0)
            log_q = torch.log(q)  # q >= m > 0
        else:
            q, log_q = one_minus_p, F.logsigmoid(-x)
        loss = y * pos + (1 - y) * (log_q + self.epsilon_neg * q)
        if self.gamma_pos > 0 or self.gamma_neg > 0:
            with torch.no_grad():  # one-sided focusing, no gradient through the weight
                p_m = (p - self.clip).clamp(min=0.0) if self.clip > 0 else p
                focus = torch.where(y > 0, one_minus_p.pow(self.gamma_pos), p_m.pow(self.gamma_neg))
            loss = loss * focus
        return -loss.mean()

    def weight_table(self) -> dict[str, float]:
        return {
            "gamma_pos": self.gamma_pos,
            "gamma_neg": self.gamma_neg,
            "clip": self.clip,
            "epsilon_pos": self.epsilon_pos,
            "epsilon_pos2": self.epsilon_pos2,
            "epsilon_neg": self.epsilon_neg,
        }


class LogitAdjustedBCE(nn.Module):
    """Logit-adjusted BCE, sigmoid form (Menon et al., ICLR 2021), mean-reduced.

    Training: BCE(z_j + s_j, y) with s_j = tau * log(n_j / (N - n_j)), the label's prior log-odds
    scaled by tau (a rare label's logit is pushed down during training, so the model must raise it).
    Inference uses the plain z: only the loss shifts, the model output is untouched.
    Labels with n_j = 0 or n_j = N have no finite prior log-odds and get s_j = 0.
    tau = 0 is plain BCE.

    Args:
        logit_shift: s, shape (C,).
        focal_gamma: focal modifier exponent >= 0 on p = sigmoid(z + s), or None (off).
    """

    scheme = "logit_adjusted"

    def __init__(self, logit_shift: torch.Tensor, focal_gamma: float | None = None):
        super().__init__()
        _raise(self.scheme, check_focal_gamma(focal_gamma))
        self.register_buffer("logit_shift", _buffer(logit_shift))
        self.focal_gamma = None if focal_gamma is None else float(focal_gamma)

    @classmethod
    def from_label_stats(
        cls, stats: LabelStats, tau: float = 1.0, focal_gamma: float | None = None
    ) -> LogitAdjustedBCE:
        _raise(cls.scheme, check_logit_adjusted_params(tau, focal_gamma))
        return cls(logit_adjustments(stats.counts, stats.n_train, float(tau)), focal_gamma)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z = logits.float() + self.logit_shift
        targets = targets.to(z.dtype)
        loss = targets * F.softplus(-z) + (1 - targets) * F.softplus(z)
        if self.focal_gamma is not None:
            loss = loss * focal_factor(z, targets, self.focal_gamma)
        return loss.mean()

    def weight_table(self) -> dict[str, list[float]]:
        return {"logit_shift": self.logit_shift.tolist()}


class DistributionBalancedLoss(nn.Module):
    """Distribution-balanced loss (Wu et al., ECCV 2020), mean-reduced.

    Re-balancing: P^C_j = 1/n_j (class-level sampling frequency; the paper's common 1/C cancels),
    P^I_i = sum over the row's positive labels k of 1/n_k (instance-level), r_ij = P^C_j / P^I_i and
    r-hat_ij = alpha + sigmoid(beta (r_ij - mu)). As in the paper (and its code, "pos and neg are equally
    treated"), r-hat multiplies the whole loss element, positive and negative targets alike.

    Negative-tolerant regularisation, as the authors' code does it (wutong16/DistributionBalancedLoss,
    ``resample_loss.py``; docs/methods.md section 1): a class bias b_j = -kappa log(N/n_j - 1) / lam is *added*
    to the logits, z' = z + b (a rare label's logit is lowered inside the loss, so its negatives cost less),

        element_ij = r-hat_ij * [ y softplus(-z') + (1 - y) (1/lam) softplus(lam z') ]  (* focal factor)

    mean over (B, C). The shift only applies inside the loss; inference uses the raw z.
    ``bias="paper"`` keeps the other reading, z' = z - nu with nu_j = -kappa log(N/n_j - 1) (no 1/lam),
    the opposite direction: what earlier versions of tailsweep did.

    Edge cases (documented choices):
      * a row with no positive label (or only positives of labels with n_k = 0) has P^I = 0 and r
        undefined: that row gets r-hat = 1 on every label;
      * a label with n_j = 0 has no P^C: its column gets r-hat = 1 (docs/methods.md: unseen labels get weight 1)
        and it adds nothing to any row's P^I;
      * b_j = 0 where n_j = 0 or n_j = N (log(N/n_j - 1) is infinite there).

    Args:
        inv_freq: 1/n_j with 0 for n_j = 0, shape (C,).
        shift: what is added to z inside the loss, shape (C,) (b for ``bias="code"``, -nu for ``"paper"``).
        alpha, beta, mu: the smoothing map of r.
        lam: the negative-tolerant scale lambda > 0.
        focal_gamma: focal modifier exponent >= 0 on p = sigmoid(z'), or None (off).
    """

    scheme = "distribution_balanced"

    def __init__(
        self,
        inv_freq: torch.Tensor,
        shift: torch.Tensor,
        alpha: float = 0.1,
        beta: float = 10.0,
        mu: float = 0.2,
        lam: float = 2.0,
        focal_gamma: float | None = None,
    ):
        super().__init__()
        _raise(self.scheme, check_distribution_balanced_params(alpha, beta, mu, lam, 0.0, focal_gamma))
        self.register_buffer("inv_freq", _buffer(inv_freq))
        self.register_buffer("shift", _buffer(shift))
        self.alpha, self.beta, self.mu, self.lam = float(alpha), float(beta), float(mu), float(lam)
        self.focal_gamma = None if focal_gamma is None else float(focal_gamma)

    @classmethod
    def from_label_stats(
        cls,
        stats: LabelStats,
        alpha: float = 0.1,
        beta: float = 10.0,
        mu: float = 0.2,
        lam: float = 2.0,
        kappa: float = 0.05,
        bias: str = "code",
        focal_gamma: float | None = None,
    ) -> DistributionBalancedLoss:
        _raise(cls.scheme, check_distribution_balanced_params(alpha, beta, mu, lam, kappa, focal_gamma, bias))
        prior = distribution_balanced_bias(stats.counts, stats.n_train, float(kappa))  # -kappa log(N/n - 1)
        shift = prior / float(lam) if bias == "code" else -prior
        return cls(inverse_counts(stats.counts), shift, alpha, beta, mu, lam, focal_gamma)

    def rebalance_weight(self, targets: torch.Tensor) -> torch.Tensor:
        """r-hat per (sample, label), shape (B, C); no gradient (a function of the targets only)."""
        y = targets.to(self.inv_freq.dtype)
        p_inst = (y * self.inv_freq).sum(dim=1, keepdim=True)  # P^I_i, (B, 1)
        defined = (p_inst > 0) & (self.inv_freq > 0)  # (B, C)
        r = self.inv_freq / torch.where(p_inst > 0, p_inst, torch.ones_like(p_inst))
        r_hat = self.alpha + torch.sigmoid(self.beta * (r - self.mu))
        return torch.where(defined, r_hat, torch.ones_like(r_hat))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        z = logits.float() + self.shift
        targets = targets.to(z.dtype)
        loss = targets * F.softplus(-z) + (1 - targets) * F.softplus(self.lam * z) / self.lam
        if self.focal_gamma is not None:
            loss = loss * focal_factor(z, targets, self.focal_gamma)
        return (self.rebalance_weight(targets) * loss).mean()

    def weight_table(self) -> dict[str, list[float]]:
        # logit_shift: what is added to z during training (same meaning as logit_adjusted's).
        return {"inv_freq": self.inv_freq.tolist(), "logit_shift": self.shift.tolist()}
