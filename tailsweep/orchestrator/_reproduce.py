"""The HMC reproduction (docs/methods.md section 4): resumable, one result file per finished run.

``launch reproduce hmc`` runs C-HMCNN's protocol per dataset (its hidden width and epochs, batch 4,
dropout 0.7, Adam lr 1e-4, weight decay 1e-5, train on train + valid, the last model tested on test)
for each scheme and seed. Each finished (dataset, scheme, seed) is written at once to
``docs/results/hmc/<dataset>/<scheme>/seed<k>.json`` and skipped on the next invocation, so the whole
comparison can span several sittings. ``launch reproduce hmc --report`` turns the files into
``docs/results-hmc.md``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
from ray import tune

from ..analysis.hmc import (  # noqa: F401 (re-exported: the CLI and tests name them here)
    DEFAULT_DATASETS,
    DEFAULT_SCHEMES,
    HMC_DATASETS,
    KEYS,
    PROTOCOL,
    VARIANTS,
    entry_settings,
    friedman,
    published,
    report_hmc,
    result_path,
)
from ..config import TrialConfig


def record_frequency_baseline(results: Path, name: str, table) -> None:
    """``<dataset>/frequency_baseline.json``: the micro AU(PRC) on test of predicting every node's train + valid
    frequency for every row (no model) -- the floor a trained model's figure is read against."""
    from ..trainables._data import load_split
    from ..trainables._metrics import average_precision

    path = results / name / "frequency_baseline.json"
    if path.is_file():
        return
    seen = np.concatenate([load_split(table, s).targets.numpy() for s in ("train", "val")])
    test = load_split(table, "test").targets.numpy()
    freq = np.broadcast_to(seen.mean(axis=0), test.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "dataset": name,
                "micro_auprc": average_precision(test.ravel(), freq.ravel()),
                "rows_seen": len(seen),
                "rows_test": len(test),
            },
            indent=1,
            sort_keys=True,
        )
    )


class RecordResult(tune.Callback):
    """Writes each completed trial's test figures as soon as it finishes."""

    def __init__(self, results: Path, dataset: str, epochs: int, settings: dict | None = None):
        self.results, self.dataset, self.epochs = results, dataset, epochs
        self.settings = settings or {}
        self.started: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.time()

    def on_trial_complete(self, iteration, trials, trial, **info):
        m = trial.last_result or {}
        if int(m.get("epoch", 0)) < self.epochs:
            return
        plan = TrialConfig.of(trial.config)
        out = {
            "dataset": self.dataset,
            "scheme": plan.variant,
            "seed": plan.seed,
            "entry": {"scheme": plan.scheme, "params": plan.scheme_params, "oversample": plan.oversample},
            "settings": {**self.settings, "loss": entry_settings(plan.variant)},
            "wall_s": time.time() - self.started.get(trial.trial_id, time.time()),
            "test": {k[5:]: v for k, v in m.items() if k.startswith("test/")},
        }
        path = result_path(self.results, self.dataset, plan.variant, plan.seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1, sort_keys=True))


def hmc_overrides(name: str, todo: list[tuple[str, int]], table_dir: Path, runs_dir: Path) -> list[str]:
    """The sweep settings of one dataset's unrecorded (scheme, seed) runs: C-HMCNN's protocol (docs/methods.md
    section 4), one sweep, each scheme with only its own missing seeds (a recorded run is never trained again)."""
    hidden, epochs, lr, _ = HMC_DATASETS[name]
    seeds: dict[str, list[int]] = {}
    for scheme, seed in todo:
        seeds.setdefault(scheme, []).append(seed)
    p = PROTOCOL
    return [
        f"name=hmc-{name}",
        f"data.path={table_dir}",
        "model.backbone=mlp",
        f"model.hidden={hidden}",
        "model.layers=2",
        f"model.dropout={p['dropout']}",
        f"train.epochs={epochs}",
        f"train.batch_size={p['batch_size']}",
        f"train.optimizer={p['optimizer']}",
        f"train.lr={lr}",
        f"train.weight_decay={p['weight_decay']}",
        f"train.lr_schedule={p['lr_schedule']}",
        "train.augment=false",
        "train.train_splits=" + json.dumps(p["train_splits"]),
        f"train.final_model={p['final_model']}",
        "search.metric=val/micro_auprc",
        "eval.thresholds=per_label",  # both threshold rules, for launch report
        "schemes=" + json.dumps([{"label": v, **VARIANTS[v], "seeds": ks} for v, ks in seeds.items()]),
        f"seeds={sorted({k for _, k in todo})}",
        f"tracking.dir={runs_dir}",
    ]


def run_settings(name: str, table) -> dict:
    """What every result file of ``name`` records about the run besides its loss: the protocol, the dataset's
    width / epochs / learning rate and the table's preprocessing (from its manifest)."""
    hidden, epochs, lr, _ = HMC_DATASETS[name]
    extra = table.manifest.extra
    return {
        **PROTOCOL,
        "hidden": hidden,
        "epochs": epochs,
        "lr": lr,
        "preprocess": extra.get("preprocess"),
        "val_from_train": extra.get("val_from_train"),
    }


def missing_reason(name: str, data_dir: Path) -> str | None:
    """Why ``name`` cannot be imported from ``data_dir`` (None: it can)."""
    from ..datasets import TableError
    from ..datasets._hmc import find_files

    try:
        find_files(name, data_dir)
    except TableError as exc:
        return str(exc)
    return None


def check_present(datasets, schemes, seeds, results: Path, data_dir: Path, runs_dir: Path) -> None:
    """Refuse (SpecError, before anything is written) when no dataset asked for can run: each one with runs left
    to do is neither imported under ``runs_dir`` nor importable from ``data_dir``."""
    from .spec import SpecError

    absent = {}
    for name in datasets:
        todo = any(not result_path(results, name, s, k).is_file() for s in schemes for k in seeds)
        if todo and not (runs_dir / "data" / "hmc" / name).exists():
            if (why := missing_reason(name, data_dir)) is None:
                return
            absent[name] = why
        elif todo:
            return
    if absent and len(absent) == len(datasets):
        raise SpecError(
            [f"{name}: {why}" for name, why in absent.items()],
            f"reproduce hmc: none of the {len(datasets)} dataset(s) asked for is there",
        )


def reproduce_hmc(datasets, schemes, seeds, results: Path, data_dir: Path, runs_dir: Path, console) -> None:
    from ..datasets import LabelTable
    from ..datasets._hmc import import_hmc
    from ._sweep import run_sweep
    from .spec import load_spec

    check_present(datasets, schemes, seeds, results, data_dir, runs_dir)

    skipped = []
    for name in datasets:
        hidden, epochs, lr, _ = HMC_DATASETS[name]
        todo = [(s, k) for s in schemes for k in seeds if not result_path(results, name, s, k).is_file()]
        table_dir = runs_dir / "data" / "hmc" / name
        if not todo:
            if table_dir.exists():  # imported by an earlier sitting: no data is read otherwise
                record_frequency_baseline(results, name, LabelTable(table_dir))
            console.print(f"{name}: all {len(schemes) * len(seeds)} runs recorded, skipped")
            continue
        stale = table_dir.exists() and LabelTable(table_dir).manifest.extra.get("preprocess") != PROTOCOL["preprocess"]
        if not table_dir.exists() or stale:
            if (why := missing_reason(name, data_dir)) is not None:
                skipped.append((name, why))
                console.print(f"{name}: skipped -- {why}")
                continue
            if stale:
                console.print(f"{name}: re-importing (the table there was preprocessed otherwise)")
                shutil.rmtree(table_dir)
            import_hmc(name, table_dir, data_dir, PROTOCOL["preprocess"])
        table = LabelTable(table_dir)
        record_frequency_baseline(results, name, table)
        console.print(f"{name}: {len(todo)} run(s) to do (hidden {hidden}, {epochs} epochs, lr {lr:g})")
        spec = load_spec(None, hmc_overrides(name, todo, table_dir, runs_dir))
        run_sweep(spec, console=console, callbacks=[RecordResult(results, name, epochs, run_settings(name, table))])
        missing = [(s, k) for s, k in todo if not result_path(results, name, s, k).is_file()]
        if missing:  # interrupted (Tune turns Ctrl-C into an early, orderly end) or failed runs
            console.print(
                f"{name}: {len(missing)} run(s) not recorded (interrupted or failed); stopping here. "
                "Run the same command again to resume."
            )
            return
    if skipped:
        console.print(f"skipped {len(skipped)} dataset(s) not under {data_dir}: " + ", ".join(n for n, _ in skipped))
