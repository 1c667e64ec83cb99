"""What a tpe search learned, for ``launch report``: per scheme entry the best configuration (mean and 95 % CI
over seeds), the search history (each configuration's mean validation score in the order it was suggested, with
the best so far) and Optuna's parameter importances from the sweep's study storage (``_search.py``).

Reads MLflow (the child runs) and the study file; imports no Ray.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from .._common import tpe_startup  # the sweep's own rule
from ._panels import finish, panels
from .stats import fmt_spread

STUDY_FILE = "optuna.db"  # a tpe sweep's Optuna storage, in its sweep folder (orchestrator/_search.py)
SCORE = "val/best"  # what each study learns from: the best epoch's selection metric


def search_settings(params: dict) -> dict | None:
    """The parent run's search settings when the sweep was a tpe search, else None."""
    if params.get("spec.search.algorithm") != "tpe":
        return None
    schemes = json.loads(params.get("spec.schemes", "[]"))
    extra = any(params.get(f"spec.search.{k}", "null") not in ("null", "None", "") for k in ("lr", "weight_decay"))
    return {
        "schemes": [s.get("label") or s["name"] for s in schemes],
        "searched": [i for i, s in enumerate(schemes) if s.get("search") or extra],
        "num_samples": int(params.get("spec.search.num_samples", 1)),
        "startup": params.get("spec.search.startup_trials"),
        "metric": params.get("spec.search.metric", "val/macro_ap"),
        "mode": params.get("spec.search.mode", "max"),
        "metrics": _listed(params.get("spec.search.metrics")),  # a multi-objective search's, else None
        "modes": _listed(params.get("spec.search.modes")),
    }


def _listed(value: str | None) -> list[str] | None:
    """A list param as logged (JSON), or None."""
    try:
        out = json.loads(value) if value else None
    except ValueError:
        return None
    return out if isinstance(out, list) and out else None


def configurations(trials) -> dict[int, list[dict]]:
    """entry index -> its configurations in suggestion order: {draw, setting, trials, score (mean val/best)}."""
    by_group: dict[str, list] = defaultdict(list)
    for t in trials:
        if t.group:
            by_group[t.group].append(t)
    out: dict[int, list[dict]] = defaultdict(list)
    for group, members in by_group.items():
        entry, draw = group.split(":")
        done = [t.metrics[SCORE] for t in members if t.complete and SCORE in t.metrics]
        out[int(entry)].append(
            {
                "draw": int(draw),
                "setting": members[0].setting,
                "trials": members,
                "score": float(np.mean(done)) if done else math.nan,
            }
        )
    return {k: sorted(v, key=lambda c: c["draw"]) for k, v in out.items()}


def best_per_entry(configs: dict[int, list[dict]], mode: str) -> dict[int, dict]:
    sign = 1 if mode == "max" else -1
    out = {}
    for entry, cs in configs.items():
        scored = [c for c in cs if not math.isnan(c["score"])]
        if scored:
            out[entry] = max(scored, key=lambda c: sign * c["score"])
    return out


def study_file(params: dict, sweep_id: str, download) -> Path | None:
    """The sweep's study storage: in its folder under tracking.dir, else the copy logged to the parent run
    (``download(name) -> local path``)."""
    if tracking_dir := params.get("spec.tracking.dir"):
        local = Path(tracking_dir) / "sweeps" / sweep_id / STUDY_FILE
        if local.is_file():
            return local
    try:
        return Path(download(STUDY_FILE))
    except Exception:  # noqa: BLE001 (not logged, or the store cannot serve it)
        return None


def importances(path: Path, sweep_id: str, names: list[str]) -> dict[str, dict[str, float] | str]:
    """entry name -> {parameter: importance} (Optuna's fANOVA, seeded), or why there is none."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{path.resolve()}"
    out: dict[str, dict[str, float] | str] = {}
    for name in names:
        try:
            study = optuna.load_study(study_name=f"{sweep_id}/{name}", storage=storage)
        except KeyError:
            out[name] = "no study"
            continue
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(complete) < 2:
            out[name] = f"{len(complete)} complete configuration(s): importances need at least 2"
            continue
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        # a multi-objective study (search.metrics): importances for the first metric, the one that selects
        first = {} if len(study.directions) == 1 else {"target": lambda t: t.values[0]}
        out[name] = optuna.importance.get_param_importances(study, evaluator=evaluator, **first)
    return out


def plot_history(
    configs: dict[int, list[dict]], names: dict[int, str], startup: int, metric: str, mode: str, path: Path
) -> None:
    from matplotlib.ticker import MaxNLocator

    entries = list(configs)
    fig, axes, used = panels(len(entries), 4.6, 3.4, sharey=True)
    best = np.fmax.accumulate if mode == "max" else np.fmin.accumulate
    for ax, entry in zip(used, entries, strict=True):
        cs = configs[entry]
        x = np.arange(1, len(cs) + 1)
        y = np.array([c["score"] for c in cs], dtype=np.float64)
        for xi, c in zip(x, cs, strict=True):  # each seed, faint, so the spread is visible
            seeds = [t.metrics[SCORE] for t in c["trials"] if t.complete and SCORE in t.metrics]
            ax.scatter([xi] * len(seeds), seeds, s=10, color="0.65", zorder=2)
        ax.scatter(x, y, s=28, color="tab:blue", zorder=3, label="configuration (mean over seeds)")
        filled = np.where(np.isnan(y), -np.inf if mode == "max" else np.inf, y)
        ax.step(x, best(filled), where="post", color="tab:orange", lw=2, zorder=4, label="best so far")
        if 0 < startup < len(cs):
            ax.axvline(startup + 0.5, color="0.5", ls="--", lw=1)
            ax.text(
                startup + 0.6,
                0.97,
                "TPE from here",
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                color="0.4",
                va="top",
            )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(names[entry], fontsize=10)
        ax.set_xlabel("configuration, in the order suggested")
        ax.grid(alpha=0.3)
    handles, labels = used[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    finish(
        fig, path, f"{metric} (best epoch)", axes, "Search history (validation; grey: each seed)", rect=(0, 0.07, 1, 1)
    )


def plot_importances(imps: dict[str, dict[str, float]], path: Path) -> None:
    fig, axes, used = panels(len(imps), 4.6, 0.9 + 0.55 * max(len(v) for v in imps.values()))
    for ax, (name, imp) in zip(used, imps.items(), strict=True):
        keys = list(imp)[::-1]
        ax.barh(keys, [imp[k] for k in keys], color="tab:green")
        for i, k in enumerate(keys):
            ax.text(imp[k] + 0.01, i, f"{imp[k]:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, 1.15)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("importance (share of variance)")
    finish(fig, path, title="Parameter importances (optuna.importance.get_param_importances, fANOVA)")


def best_settings(sweep, settings: dict) -> set[str]:
    """The settings the comparison shows for a tpe sweep: each searched entry's best on validation, and every
    setting of the entries that were not searched."""
    configs = configurations(sweep.trials)
    best = best_per_entry({e: cs for e, cs in configs.items() if e in settings["searched"]}, settings["mode"])
    keep = {c["setting"] for c in best.values()}
    keep |= {c["setting"] for e, cs in configs.items() if e not in settings["searched"] for c in cs}
    return keep


def search_blocks(sweep, settings: dict, out_dir: Path, study_path: Path | None) -> list[tuple]:
    """The report's search section (blocks as ``report.build_report`` renders them)."""
    configs = dict(sorted(configurations(sweep.trials).items()))
    names = dict(enumerate(settings["schemes"]))
    n = settings["num_samples"]

    logged = settings["startup"]
    startup = tpe_startup(n, None if logged in (None, "null", "None") else int(logged))
    searched = {e: cs for e, cs in configs.items() if e in settings["searched"]}
    best = best_per_entry(searched, settings["mode"])
    blocks: list[tuple] = [("h2", "What the search learned (TPE)")]
    blocks.append(
        (
            "p",
            f"Each scheme entry was tuned by its own Optuna TPE study: {n} configurations, the first "
            f"{startup} drawn at random, each run with every seed; the study learned from the mean over "
            f"seeds of `{SCORE}` (the best epoch's {settings['metric']}, the checkpoint that is tested). "
            "The comparison above uses each entry's best configuration on validation; its test figures "
            "were not seen by the search."
            + (
                f" A multi-objective search ({', '.join(settings['metrics'])}): the studies learned each metric's "
                f"mean; the best configuration here, and each trial's checkpoint, follow the first "
                f"({settings['metric']}); the Pareto front section shows the rest."
                if settings.get("metrics")
                else ""
            ),
        )
    )
    rows = []
    for entry, c in sorted(best.items()):  # in the spec's order
        done = [t for t in c["trials"] if t.complete]
        rows.append(
            [
                names.get(entry, str(entry)),
                c["setting"],
                f"{len(searched[entry])}",
                fmt_spread([t.metrics.get(SCORE) for t in done]),
                fmt_spread([t.metrics.get("test/macro_ap") for t in done]),
                fmt_spread([t.metrics.get("test/micro_auprc") for t in done]),
            ]
        )
    blocks += [
        (
            "table",
            [
                "scheme",
                "best configuration",
                "tried",
                f"val {settings['metric']}",
                "test macro AP",
                "test micro AU(PRC)",
            ],
            rows,
        )
    ]
    if searched:
        plot_history(searched, names, startup, settings["metric"], settings["mode"], out_dir / "search_history.png")
        blocks += [
            ("h2", "Search history"),
            ("img", "search_history.png", "search history"),
            (
                "p",
                "Blue: each configuration's mean over seeds; grey: each seed; orange: the best so far. "
                "Left of the dashed line the study drew at random; right of it TPE chose.",
            ),
        ]
    path = study_path
    if path is None:
        blocks.append(
            (
                "p",
                f"Parameter importances: the study file ({STUDY_FILE}) was found neither in the sweep's "
                "folder nor on its MLflow parent run.",
            )
        )
        return blocks
    imps = importances(path, sweep.sweep_id, [names[e] for e in searched])
    drawn = {k: v for k, v in imps.items() if isinstance(v, dict) and v}
    if drawn:
        plot_importances(drawn, out_dir / "param_importances.png")
        blocks += [("h2", "Parameter importances"), ("img", "param_importances.png", "parameter importances")]
    notes = [f"{k}: {v}" for k, v in imps.items() if not isinstance(v, dict)]
    single = [k for k, v in drawn.items() if len(v) == 1]
    text = (
        f"fANOVA on each study's complete configurations (seed 0). With 10-30 configurations these are rough. "
        f"The studies: `optuna-dashboard sqlite:///{path}`."
    )
    if settings.get("metrics"):
        text += f" A multi-objective search: the importances are for the first metric, {settings['metric']}."
    if single:
        text += f" One parameter only (importance 1 by construction): {', '.join(single)}."
    if notes:
        text += " Not drawn: " + "; ".join(notes) + "."
    blocks.append(("p", text))
    return blocks
