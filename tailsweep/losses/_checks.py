"""Parameter checks and choice lists of the schemes, without torch: the registry, the spec check and ``launch
schemes`` import them without importing the loss modules (which the loss constructors call them from too).
"""

from __future__ import annotations

import math

UNCERTAINTIES = ("margin", "entropy", "aleatoric", "epistemic", "gated_margin")
NEEDS_DISAGREEMENT = ("epistemic", "gated_margin")
SCHEDULES = ("none", "linear", "exponential", "alternate")
WEIGHT_TARGETS = ("negatives", "positives")
REDUCTIONS = ("sum", "mean")
DB_BIAS = ("code", "paper")


def check_focal_gamma(focal_gamma=None, **_) -> list[str]:
    """Problems with the focal modifier (empty: fine). Shared by the spec check and the constructors."""
    if focal_gamma is None:
        return []
    if isinstance(focal_gamma, bool) or not isinstance(focal_gamma, int | float) or not focal_gamma >= 0:
        return [f"focal_gamma must be >= 0 (or null: off), got {focal_gamma!r}"]
    return []


def check_distribution_balanced_params(
    alpha=0.1, beta=10.0, mu=0.2, lam=2.0, kappa=0.05, focal_gamma=None, bias="code"
) -> list[str]:
    """Problems with a distribution_balanced parameter set (empty: fine)."""
    problems = [] if bias in DB_BIAS else [f"bias must be one of {', '.join(DB_BIAS)}, got {bias!r}"]
    if alpha is None or not alpha >= 0:
        problems.append(f"alpha (floor of the re-balancing weight) must be >= 0, got {alpha}")
    if beta is None or not beta >= 0:
        problems.append(f"beta (slope of the re-balancing map) must be >= 0, got {beta}")
    if mu is None or not math.isfinite(mu):
        problems.append(f"mu (centre of the re-balancing map) must be a finite number, got {mu}")
    if lam is None or not lam > 0:
        problems.append(f"lam (lambda, the negative-tolerant scale) must be > 0, got {lam}")
    if kappa is None or not math.isfinite(kappa):
        problems.append(f"kappa (logit bias scale) must be a finite number, got {kappa}")
    return problems + check_focal_gamma(focal_gamma)


def check_logit_adjusted_params(tau=1.0, focal_gamma=None) -> list[str]:
    """Problems with a logit_adjusted parameter set (empty: fine)."""
    problems = [] if tau is not None and tau >= 0 else [f"tau must be >= 0, got {tau}"]
    return problems + check_focal_gamma(focal_gamma)


def _positive_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value > 0


def check_two_way_params(t_pos=4.0, t_neg=1.0) -> list[str]:
    """Problems with a two_way parameter set (empty: fine): both temperatures must be finite and > 0 (they divide
    the logits)."""
    return [
        f"{key} (temperature of the {what}) must be > 0, got {value!r}"
        for key, what, value in (("t_pos", "positives", t_pos), ("t_neg", "negatives", t_neg))
        if not _positive_number(value)
    ]


def check_apl_params(
    gamma_pos=0.0, gamma_neg=4.0, clip=0.05, epsilon_pos=1.0, epsilon_pos2=-2.5, epsilon_neg=0.0
) -> list[str]:
    """Problems with an apl parameter set (empty: fine)."""
    problems = [
        f"{key} (focusing exponent) must be >= 0, got {value!r}"
        for key, value in (("gamma_pos", gamma_pos), ("gamma_neg", gamma_neg))
        if value is None or isinstance(value, bool) or not (math.isfinite(value) and value >= 0)
    ]
    if clip is None or isinstance(clip, bool) or not 0 <= clip < 1:
        problems.append(f"clip (probability margin m) must be in [0, 1), got {clip!r}")
    problems += [
        f"{key} (polynomial coefficient) must be a finite number, got {value!r}"
        for key, value in (("epsilon_pos", epsilon_pos), ("epsilon_pos2", epsilon_pos2), ("epsilon_neg", epsilon_neg))
        if value is None or isinstance(value, bool) or not math.isfinite(value)
    ]
    return problems


def check_node_params(
    omega=0.25,
    schedule="none",
    mix=1.0,
    weight_targets="negatives",
    schedule_power=3.0,
    heads=None,
    uncertainty=None,
    f_min=None,
    k=None,
    reduction="sum",
) -> list[str]:
    """Every problem with a node_imbalance[_focal] parameter set (empty: fine). Used by the spec check
    (before a sweep starts) and by the loss constructors, so both say the same thing."""
    problems = []
    if omega is None or omega < 0:
        problems.append(f"omega must be >= 0, got {omega}")
    if schedule not in SCHEDULES:
        problems.append(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if mix is None or not 0 <= mix <= 1:
        problems.append(f"mix (lambda of the mixed loss) must be in [0, 1], got {mix}")
    if weight_targets not in WEIGHT_TARGETS:
        problems.append(f"weight_targets must be one of {', '.join(WEIGHT_TARGETS)}, got {weight_targets!r}")
    if schedule_power is None or not schedule_power > 0:
        problems.append(f"schedule_power (exponent of the exponential schedule) must be > 0, got {schedule_power}")
    if heads is not None:
        if float(heads) != int(heads) or heads < 1:
            problems.append(f"heads must be a whole number >= 1, got {heads}")
        if uncertainty not in UNCERTAINTIES:
            problems.append(f"uncertainty must be one of {', '.join(UNCERTAINTIES)}, got {uncertainty!r}")
        elif uncertainty in NEEDS_DISAGREEMENT and heads == 1:
            problems.append(
                f"uncertainty '{uncertainty}' measures disagreement between heads: heads = 1 has none; "
                "set heads >= 2 (the paper uses 2-20) or pick margin, entropy or aleatoric"
            )
        if f_min is None or f_min < 0:
            problems.append(f"f_min must be >= 0, got {f_min}")
        if k is not None and k < 0:
            problems.append(f"k must be >= 0, got {k}")
        if reduction not in REDUCTIONS:
            problems.append(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    return problems
