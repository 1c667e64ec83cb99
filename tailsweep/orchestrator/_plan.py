"""Turn a spec into the list of trials: schemes x hyperparameter draws x seeds.

Hyperparameters are drawn once per (scheme, draw) with a seeded generator and shared by every
seed, so seeds measure noise, not different settings. The plan is deterministic: a restored
sweep sees the same trials.
"""

from __future__ import annotations

import math

import numpy as np

from ..losses import SCHEMES, Param
from .spec import SweepSpec

SYMBOLS = {"beta": "β", "gamma": "γ", "alpha": "α", "gamma_pos": "γ+", "gamma_neg": "γ-", "clip": "m",
           "max_weight": "wmax", "tau": "τ", "lam": "λ", "kappa": "κ", "mu": "μ", "focal_gamma": "focal γ", "omega": "ω"}


def _fmt(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4):
            return f"{v:.0e}"
        return f"{v:.4g}"
    return str(v)


def trial_label(scheme: str, params: dict, lr: float, seed: int, show_lr: bool = True, info=None) -> str:
    """``scheme`` then its parameters (options that are off by default only when set)."""
    shown = {k: v for k, v in params.items() if v is not None and not (
        info is not None and k in info.params and info.params[k].quiet and v == info.params[k].default)}
    bits = [scheme]
    bits += [f"{SYMBOLS.get(k, k)}={_fmt(v)}" for k, v in shown.items()]
    if show_lr:
        bits.append(f"lr={_fmt(lr)}")
    bits.append(f"seed={seed}")
    return " ".join(bits)


def plan_trials(spec: SweepSpec) -> list[dict]:
    rng = np.random.default_rng(spec.search.seed)
    trials = []
    for s_index, scheme in enumerate(spec.schemes):
        info = SCHEMES[scheme.name]
        defaults = {k: p.default for k, p in info.params.items()}
        ranges = scheme.search_ranges()
        searching = bool(ranges) or spec.search.lr is not None
        draws = spec.search.num_samples if searching else 1
        for draw in range(draws):
            params = defaults | dict(scheme.params)
            for k, (lo, hi, scale) in ranges.items():
                params[k] = Param(None, lo, hi, scale).sample(rng)
            lr = spec.train.lr
            if spec.search.lr is not None:
                lo, hi = spec.search.lr
                lr = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            for seed in scheme.seeds or spec.seeds:
                trials.append({
                    "scheme": scheme.name,
                    "variant": scheme.display,
                    "scheme_params": params,
                    "oversample": scheme.oversample,
                    "oversample_budget": scheme.oversample_budget,
                    "lr": lr,
                    "seed": seed,
                    "group": f"{s_index}:{draw}",
                    "label": trial_label(scheme.display, params, lr, seed, show_lr=spec.search.lr is not None, info=info),
                })
    return trials
