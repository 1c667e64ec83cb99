"""Turn a spec into the list of trials: schemes x hyperparameter draws x seeds.

Hyperparameters are drawn once per (scheme, draw) with a seeded generator and shared by every
seed, so seeds measure noise, not different settings. The plan is deterministic: a restored
sweep sees the same trials.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..config import TrialConfig
from ..losses import SCHEMES, Param
from .spec import SweepSpec

SYMBOLS = {
    "beta": "β",
    "gamma": "γ",
    "alpha": "α",
    "gamma_pos": "γ+",
    "gamma_neg": "γ-",
    "clip": "m",
    "max_weight": "wmax",
    "tau": "τ",
    "lam": "λ",
    "kappa": "κ",
    "mu": "μ",
    "focal_gamma": "focal γ",
    "omega": "ω",
}


def _fmt(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4):
            return f"{v:.0e}"
        return f"{v:.4g}"
    return str(v)


def setting_label(
    scheme: str, params: dict, lr: float, show_lr: bool = True, info=None, weight_decay: float | None = None
) -> str:
    """``scheme`` then its parameters (options that are off by default only when set): a setting's name for
    humans, shared by its seeds."""
    shown = {
        k: v
        for k, v in params.items()
        if v is not None
        and not (info is not None and k in info.params and info.params[k].quiet and v == info.params[k].default)
    }
    bits = [scheme]
    bits += [f"{SYMBOLS.get(k, k)}={_fmt(v)}" for k, v in shown.items()]
    if show_lr:
        bits.append(f"lr={_fmt(lr)}")
    if weight_decay is not None:
        bits.append(f"wd={_fmt(weight_decay)}")
    return " ".join(bits)


def trial_base(spec: SweepSpec, resources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What every trial of the sweep shares: the table, the spec's model / train / eval sections as they are,
    with the per-worker values the resource plan resolves (``threads``, ``loader_workers``) filled in."""
    train = spec.train
    if resources is not None:
        train = train.model_copy(
            update={
                "threads": train.threads or resources["threads"],
                "loader_workers": resources["loader_workers"],
            }
        )
    return {
        "data": str(spec.data_path),
        "model": spec.model,
        "train": train,
        "eval": spec.eval,
        "select_metric": spec.search.metric,
        "objectives": list(spec.search.metrics or []),
    }


def make_trial(
    spec: SweepSpec,
    s_index: int,
    draw: int | str,
    params: dict,
    lr: float,
    seed: int,
    weight_decay: float | None = None,
    base: Mapping[str, Any] | None = None,
) -> TrialConfig:
    """One trial: scheme entry ``s_index`` with ``params`` (every parameter, defaults filled in), the learning rate
    and weight decay of its configuration (``weight_decay`` None: the spec's), on ``base`` (``trial_base``)."""
    scheme = spec.schemes[s_index]
    info = SCHEMES[scheme.name]
    base = dict(base or trial_base(spec))
    train = base.pop("train")
    wd = train.weight_decay if weight_decay is None else weight_decay
    show_lr = spec.search.lr is not None
    setting = setting_label(scheme.display, params, lr, show_lr, info, weight_decay)
    return TrialConfig(
        **base,
        train=train.model_copy(update={"lr": lr, "weight_decay": wd}),
        scheme=scheme.name,
        variant=scheme.display,
        scheme_params=params,
        oversample=scheme.oversample,
        oversample_budget=scheme.oversample_budget,
        seed=seed,
        group=f"{s_index}:{draw}",
        setting=setting,
        label=f"{setting} seed={seed}",
    )


def base_params(scheme) -> dict:
    """The entry's parameters before any search: registry defaults, then its fixed ``params``."""
    return {k: p.default for k, p in SCHEMES[scheme.name].params.items()} | dict(scheme.params)


def seeds_of(spec: SweepSpec, scheme) -> list[int]:
    return list(scheme.seeds or spec.seeds)


def _grid(spec: SweepSpec, scheme) -> list[tuple[dict, float, float | None]]:
    """Every combination of the entry's listed values (and lr / weight_decay values): (params, lr, wd)."""
    axes = dict(scheme.search_values())
    for k in ("lr", "weight_decay"):
        if (v := getattr(spec.search, k)) is not None:
            axes[f"train.{k}"] = v
    out = []
    for combo in itertools.product(*axes.values()):
        chosen = dict(zip(axes, combo, strict=True))
        lr = chosen.pop("train.lr", spec.train.lr)
        wd = chosen.pop("train.weight_decay", None)
        out.append((base_params(scheme) | chosen, float(lr), None if wd is None else float(wd)))
    return out


def plan_trials(spec: SweepSpec, resources: Mapping[str, Any] | None = None) -> list[TrialConfig]:
    """Every trial of a random or grid search. For ``tpe`` only the entries with nothing to search (run once per
    seed as they are); the searched ones are suggested while the sweep runs (``_search.py``). ``resources``: the
    resource plan, whose per-worker values the trials carry (without it, they stay as the spec has them)."""
    base = trial_base(spec, resources)
    rng = np.random.default_rng(spec.search.seed)
    trials = []
    for s_index, scheme in enumerate(spec.schemes):
        searching = bool(spec.searched(scheme))
        if spec.search.algorithm == "tpe" and searching:
            continue
        if spec.search.algorithm == "grid":
            configs = _grid(spec, scheme)
        else:
            configs = []
            for _ in range(spec.search.num_samples if searching else 1):
                params = base_params(scheme)
                for k, (lo, hi, scale) in scheme.search_ranges().items():
                    params[k] = Param(None, lo, hi, scale).sample(rng)
                lr = spec.train.lr if spec.search.lr is None else _log_uniform(rng, spec.search.lr)
                wd = None if spec.search.weight_decay is None else _log_uniform(rng, spec.search.weight_decay)
                configs.append((params, lr, wd))
        for draw, (params, lr, wd) in enumerate(configs):
            trials += [make_trial(spec, s_index, draw, params, lr, seed, wd, base) for seed in seeds_of(spec, scheme)]
    return trials


def _log_uniform(rng, bounds) -> float:
    lo, hi = bounds
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def planned_count(spec: SweepSpec) -> int:
    """How many trials the sweep runs (a tpe search: its budget, num_samples x seeds per searched entry)."""
    n = len(plan_trials(spec))
    if spec.search.algorithm == "tpe":
        n += sum(spec.search.num_samples * len(seeds_of(spec, s)) for s in spec.schemes if spec.searched(s))
    return n
