"""Pure weight functions: label statistics in, per-label weight vectors out (docs/methods.md section 1).

Weights are computed once from the *training* split. Unless a scheme defines its own scale, they
are normalised to mean 1 over labels that have training positives; labels with n_j = 0 get 1.
"""

from __future__ import annotations

import numpy as np


def _normalise(w: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = np.ones_like(w, dtype=np.float64)
    if valid.any():
        out[valid] = w[valid] / w[valid].mean()
    return out


def _clip(w: np.ndarray, max_weight: float | None) -> np.ndarray:
    return np.minimum(w, max_weight) if max_weight is not None else w


def inverse_frequency_weights(counts: np.ndarray, power: float = 1.0, max_weight: float | None = None) -> np.ndarray:
    """Positive-term weights w_j proportional to 1 / n_j**power, mean 1 over labels with n_j > 0."""
    counts = np.asarray(counts, dtype=np.float64)
    valid = counts > 0
    raw = np.where(valid, 1.0 / np.maximum(counts, 1.0) ** power, 1.0)
    return _clip(_normalise(raw, valid), max_weight)


def pos_weight_weights(counts: np.ndarray, n_train: int, max_weight: float | None = None) -> np.ndarray:
    """PyTorch's ``pos_weight`` = (N - n_j) / n_j; own scale, no normalisation; n_j = 0 gets 1."""
    counts = np.asarray(counts, dtype=np.float64)
    valid = counts > 0
    raw = np.where(valid, (n_train - counts) / np.maximum(counts, 1.0), 1.0)
    return _clip(raw, max_weight)


def effective_number_weights(counts: np.ndarray, n_train: int, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced weights (Cui et al., CVPR 2019), one vector per target value.

    Positives: (1 - beta) / (1 - beta**n_j); negatives: (1 - beta) / (1 - beta**(N - n_j)); each
    normalised to mean 1. beta = 0 gives all ones (unweighted); beta -> 1 approaches 1/n
    (inverse frequency).

    Returns:
        (w_pos, w_neg), each shape (C,).
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"effective_number: beta must lie in [0, 1), got {beta}")
    counts = np.asarray(counts, dtype=np.float64)
    negs = n_train - counts

    def one(n: np.ndarray) -> np.ndarray:
        valid = n > 0
        # 1 - beta**n computed stably as -expm1(n * log(beta)); beta = 0 gives 1 for n > 0.
        denom = -np.expm1(n * np.log(beta)) if beta > 0 else np.ones_like(n)
        raw = np.where(valid, (1.0 - beta) / np.where(valid, denom, 1.0), 1.0)
        return _normalise(raw, valid)

    return one(counts), one(negs)


def inverse_counts(counts: np.ndarray) -> np.ndarray:
    """Raw 1 / n_j, unnormalised (distribution_balanced's class-level sampling frequency P^C_j, up to
    the common factor 1/C, which cancels in its ratio). Labels with n_j = 0 get 0: they never occur as
    a training positive, so they add nothing to an instance's frequency P^I."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)


def log_prior_odds(counts: np.ndarray, n_train: int) -> np.ndarray:
    """log(n_j / (N - n_j)) = -log(N / n_j - 1), the logit of the label prior n_j / N.

    Undefined (infinite) for n_j = 0 and n_j = N; those labels get 0 (no shift), so a label that is
    never, or always, positive in training is left as plain BCE.
    """
    counts = np.asarray(counts, dtype=np.float64)
    valid = (counts > 0) & (counts < n_train)
    safe_n = np.where(valid, counts, 1.0)
    safe_rest = np.where(valid, n_train - counts, 1.0)
    return np.where(valid, np.log(safe_n) - np.log(safe_rest), 0.0)


def distribution_balanced_bias(counts: np.ndarray, n_train: int, kappa: float) -> np.ndarray:
    """-kappa * log(N / n_j - 1), the prior log-odds scaled by kappa (Wu et al., ECCV 2020).

    distribution_balanced adds it, divided by lambda, to the logits (its authors' code); its ``paper``
    reading subtracts it. 0 where n_j = 0 or n_j = N (see :func:`log_prior_odds`).
    """
    return kappa * log_prior_odds(counts, n_train)


def logit_adjustments(counts: np.ndarray, n_train: int, tau: float) -> np.ndarray:
    """Sigmoid logit adjustment s_j = tau * log(n_j / (N - n_j)) (Menon et al., ICLR 2021).

    The loss sees z + s during training; inference uses plain z. s_j = 0 where n_j = 0 or n_j = N.
    """
    if tau is None or tau < 0:
        raise ValueError(f"logit_adjusted: tau must be >= 0, got {tau}")
    return tau * log_prior_odds(counts, n_train)


def batch_presence(counts: np.ndarray, n_train: int, batch_size: int) -> np.ndarray:
    """Probability that a batch of ``batch_size`` rows drawn at random without replacement from the ``n_train``
    training rows holds at least one positive of each label: 1 - C(N - n_j, B) / C(N, B).

    What decides how often ``two_way``'s class term (a term per label over the batch's rows, present only when
    the batch holds one of the label's positives) reaches a rare label. 0 for n_j = 0, 1 when B > N - n_j.
    """
    from scipy.special import gammaln

    counts = np.asarray(counts, dtype=np.float64)
    n, b = float(n_train), float(batch_size)
    if not 0 < b <= n:
        raise ValueError(f"batch_size must be in [1, n_train = {n_train}], got {batch_size}")
    rest = n - counts
    fits = rest >= b  # else every batch must hold a positive
    safe_rest = np.where(fits, rest, b)
    # log C(N - n, B) - log C(N, B), in log-gamma form (exact for large N)
    log_none = gammaln(safe_rest + 1) - gammaln(safe_rest - b + 1) - gammaln(n + 1) + gammaln(n - b + 1)
    return np.where(fits, -np.expm1(log_none), 1.0)
