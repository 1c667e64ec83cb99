"""The HMC reproduction (METHODS.md section 4): resumable, one result file per finished run.

``launch reproduce hmc`` runs C-HMCNN's protocol per dataset (its hidden width and epochs, batch 4,
dropout 0.7, Adam lr 1e-4, weight decay 1e-5, train on train + valid, the last model tested on test)
for each scheme and seed. Each finished (dataset, scheme, seed) is written at once to
``docs/results/hmc/<dataset>/<scheme>/seed<k>.json`` and skipped on the next invocation, so the whole
comparison can span several sittings. ``launch reproduce hmc --report`` turns the files into
``docs/results-hmc.md``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
from ray import tune

# C-HMCNN(h): hidden width, epochs and published micro AU(PRC) (mean of 10 seeds), FUN datasets.
HMC_FUN = {
    "cellcycle_FUN": (500, 106, 0.255),
    "derisi_FUN": (500, 67, 0.195),
    "eisen_FUN": (500, 110, 0.306),
    "gasch1_FUN": (1000, 42, 0.286),
    "gasch2_FUN": (500, 123, 0.258),
    "seq_FUN": (2000, 13, 0.292),
    "spo_FUN": (250, 115, 0.215),
}
# What ``--schemes`` can name: a recorded variant -> its scheme entry in the sweep spec.
VARIANTS = {
    "mcloss": {"name": "mcloss"},
    "node_imbalance": {"name": "node_imbalance"},
    "nif_margin_m4": {"name": "node_imbalance_focal", "params": {"heads": 4, "uncertainty": "margin"}},
    "nif_gated_margin_m4": {"name": "node_imbalance_focal", "params": {"heads": 4, "uncertainty": "gated_margin"}},
    "nif_margin_m2": {"name": "node_imbalance_focal", "params": {"heads": 2, "uncertainty": "margin"}},
    "mcloss_lpros": {"name": "mcloss", "oversample": "lpros"},
}
DEFAULT_SCHEMES = ("mcloss", "node_imbalance", "nif_margin_m4", "nif_gated_margin_m4")
KEYS = ["micro_auprc", "macro_precision_allnodes", "macro_recall_allnodes", "macro_f1_allnodes",
        "macro_precision", "macro_recall", "macro_f1"]


def result_path(results: Path, dataset: str, scheme: str, seed: int) -> Path:
    return results / dataset / scheme / f"seed{seed}.json"


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
    path.write_text(json.dumps({"dataset": name, "micro_auprc": average_precision(test.ravel(), freq.ravel()),
                                "rows_seen": len(seen), "rows_test": len(test)}, indent=1, sort_keys=True))


class RecordResult(tune.Callback):
    """Writes each completed trial's test figures as soon as it finishes."""

    def __init__(self, results: Path, dataset: str, epochs: int):
        self.results, self.dataset, self.epochs = results, dataset, epochs
        self.started: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.time()

    def on_trial_complete(self, iteration, trials, trial, **info):
        m = trial.last_result or {}
        if int(m.get("epoch", 0)) < self.epochs:
            return
        plan = trial.config["trial"]
        out = {"dataset": self.dataset, "scheme": plan["variant"], "seed": plan["seed"],
               "entry": {"scheme": plan["scheme"], "params": plan["scheme_params"], "oversample": plan["oversample"]},
               "wall_s": time.time() - self.started.get(trial.trial_id, time.time()),
               "test": {k[5:]: v for k, v in m.items() if k.startswith("test/")}}
        path = result_path(self.results, self.dataset, plan["variant"], plan["seed"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1, sort_keys=True))


def hmc_overrides(name: str, todo: list[tuple[str, int]], table_dir: Path, runs_dir: Path) -> list[str]:
    """The sweep settings of one dataset's unrecorded (scheme, seed) runs: C-HMCNN's protocol (METHODS.md
    section 4), one sweep, each scheme with only its own missing seeds (a recorded run is never trained again)."""
    hidden, epochs, _ = HMC_FUN[name]
    seeds: dict[str, list[int]] = {}
    for scheme, seed in todo:
        seeds.setdefault(scheme, []).append(seed)
    return [
        f"name=hmc-{name}", f"data.path={table_dir}", "model.backbone=mlp", f"model.hidden={hidden}",
        "model.layers=2", "model.dropout=0.7", f"train.epochs={epochs}", "train.batch_size=4",
        "train.optimizer=adam", "train.lr=0.0001", "train.weight_decay=0.00001", "train.augment=false",
        "train.train_splits=[train, val]", "train.final_model=last", "search.metric=val/micro_auprc",
        "schemes=" + json.dumps([{"label": v, **VARIANTS[v], "seeds": ks} for v, ks in seeds.items()]),
        f"seeds={sorted({k for _, k in todo})}", f"tracking.dir={runs_dir}"]


def reproduce_hmc(datasets, schemes, seeds, results: Path, data_dir: Path, runs_dir: Path, console) -> None:
    from ..datasets import LabelTable
    from ..datasets._hmc import import_hmc
    from ._sweep import run_sweep
    from .spec import load_spec

    for name in datasets:
        hidden, epochs, _ = HMC_FUN[name]
        todo = [(s, k) for s in schemes for k in seeds if not result_path(results, name, s, k).is_file()]
        table_dir = runs_dir / "data" / "hmc" / name
        if not todo:
            if table_dir.exists():  # imported by an earlier sitting: no data is read otherwise
                record_frequency_baseline(results, name, LabelTable(table_dir))
            console.print(f"{name}: all {len(schemes) * len(seeds)} runs recorded, skipped")
            continue
        if not table_dir.exists():
            import_hmc(name, table_dir, data_dir)
        record_frequency_baseline(results, name, LabelTable(table_dir))
        console.print(f"{name}: {len(todo)} run(s) to do (hidden {hidden}, {epochs} epochs)")
        spec = load_spec(None, hmc_overrides(name, todo, table_dir, runs_dir))
        run_sweep(spec, console=console, callbacks=[RecordResult(results, name, epochs)])
        missing = [(s, k) for s, k in todo if not result_path(results, name, s, k).is_file()]
        if missing:  # interrupted (Tune turns Ctrl-C into an early, orderly end) or failed runs
            console.print(f"{name}: {len(missing)} run(s) not recorded (interrupted or failed); stopping here. "
                          "Run the same command again to resume.")
            return


def _ms(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return "-"
    return f"{np.mean(xs):.4f} ± {np.std(xs, ddof=1):.4f}" if len(xs) > 1 else f"{xs[0]:.4f}"


def friedman_nemenyi(by: dict, alpha: float = 0.05) -> list[str]:
    """Markdown: average ranks of the schemes across datasets (rank 1 = best mean over seeds), Friedman's
    chi-square test and Nemenyi's critical difference (Demsar, JMLR 2006), per headline metric; only
    datasets on which every compared scheme has results count. While some schemes are still being
    recorded, a second table compares the schemes that the most datasets have, on those datasets."""
    schemes = sorted({s for _, s in by})
    datasets = sorted({d for d, _ in by})
    lines = ["", "## Across datasets: Friedman test and Nemenyi critical difference", ""]
    comparisons = [(schemes, [d for d in datasets if all((d, s) in by for s in schemes)], [])]
    coverage = {s: sum((d, s) in by for d in datasets) for s in schemes}
    left_out = [s for s in schemes if coverage[s] < max(coverage.values())]
    if left_out:
        common = [s for s in schemes if s not in left_out]
        comparisons.append((common, [d for d in datasets if all((d, s) in by for s in common)], left_out))
    shown = 0
    for compared, complete, missing in comparisons:
        if len(compared) < 2 or len(complete) < 2:
            continue
        if missing:
            so_far = "; ".join(f"`{s}` so far on " + ", ".join(d for d in datasets if (d, s) in by) for s in missing)
            lines += [f"Without the schemes still being recorded ({so_far}):", ""]
        lines += _friedman_table(by, compared, complete, alpha)
        shown += 1
    if not shown:
        lines.append(f"Needs >= 2 schemes on >= 2 datasets with results for all of them; have {len(schemes)} "
                     f"scheme(s) on {len(comparisons[0][1])} complete dataset(s).")
    return lines


def _friedman_table(by: dict, schemes: list[str], complete: list[str], alpha: float) -> list[str]:
    from scipy.stats import chi2, rankdata, studentized_range

    k, n = len(schemes), len(complete)
    q = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    cd = q * math.sqrt(k * (k + 1) / (6 * n))
    lines = [f"{n} datasets with every scheme ({', '.join(complete)}); {k} schemes. Ranks per dataset on the mean "
             f"over seeds (1 = best, ties share). Friedman chi-square with k - 1 = {k - 1} degrees of freedom; "
             f"Nemenyi critical difference at alpha = {alpha}: CD = q_alpha sqrt(k(k+1)/(6N)) = **{cd:.2f}** ranks -- "
             "two schemes whose average ranks differ by more than CD differ significantly.", "",
             "| metric | " + " | ".join(f"avg rank `{s}`" for s in schemes) + " | Friedman chi2 | p |",
             "|---|" + "---|" * (k + 2)]
    for metric in ("micro_auprc", "macro_recall_allnodes", "macro_f1_allnodes"):
        table = np.array([[np.mean([r["test"][metric] for r in by[(d, s)]]) for s in schemes] for d in complete])
        ranks = np.array([rankdata(-row) for row in table])
        avg = ranks.mean(0)
        stat = 12 * n / (k * (k + 1)) * (np.sum(avg**2) - k * (k + 1) ** 2 / 4)
        p = chi2.sf(stat, k - 1)
        lines.append(f"| {metric} | " + " | ".join(f"{a:.2f}" for a in avg) + f" | {stat:.2f} | {p:.3g} |")
    return lines + [""]


def report_hmc(results: Path, out: Path) -> str:
    from scipy.stats import wilcoxon

    rows = [json.loads(p.read_text()) for p in sorted(results.glob("*/*/seed*.json"))]
    by = {}
    for r in rows:
        by.setdefault((r["dataset"], r["scheme"]), []).append(r)
    lines = [
        "# HMC reproduction: C-HMCNN's protocol on the FUN benchmarks",
        "",
        "Produced by `launch reproduce hmc --report` from the per-run files under `docs/results/hmc/` "
        "(each written by `launch reproduce hmc` as its run finished). Protocol (METHODS.md section 4): MLP of "
        "3 linear layers with the per-dataset hidden width, ReLU, dropout 0.7, Adam lr 1e-4, weight decay 1e-5, "
        "batch 4, the per-dataset number of epochs, trained on train + valid, last model tested on test. "
        "Coherent (MCM) probabilities everywhere. `macro_*_allnodes`: over all nodes (a node with no positives and "
        "no predictions scores 0, the second seed's convention); `macro_*`: over nodes with >= 1 test positive. "
        "Mean ± std over seeds; p: paired Wilcoxon signed-rank test of micro AU(PRC) against `mcloss` over seeds "
        "(with 3 seeds the smallest possible two-sided p is 0.25: read it as a spread check, not significance). "
        "Wall per run: trial start to end with two runs sharing the machine's 2 cores (and, for some runs, other "
        "work); a run alone is in docs/benchmarks.md.",
        "",
        "Frequency baseline: the micro AU(PRC) of predicting each node's train + valid frequency for every test row "
        "(no model; written beside the runs by `launch reproduce hmc`).",
        "",
        "| dataset | scheme | seeds | micro AU(PRC) | published C-HMCNN | frequency baseline | macro P / R / F1 (all nodes) | macro P / R / F1 (nodes with positives) | p vs mcloss | wall per run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    floors = {}
    for f in results.glob("*/frequency_baseline.json"):
        d = json.loads(f.read_text())
        floors[d["dataset"]] = f"{d['micro_auprc']:.4f}"
    for (dataset, scheme), rs in sorted(by.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        t = [r["test"] for r in rs]
        pub = HMC_FUN.get(dataset, (None, None, None))[2]
        p = "-"
        base = {r["seed"]: r["test"]["micro_auprc"] for r in by.get((dataset, "mcloss"), [])}
        paired = [(base[r["seed"]], r["test"]["micro_auprc"]) for r in rs if r["seed"] in base]
        if scheme != "mcloss" and len(paired) >= 2:
            a, b = zip(*paired, strict=True)
            if any(x != y for x, y in paired):
                p = f"{wilcoxon(a, b).pvalue:.3f}"
        allnodes = " / ".join(_ms([x.get(f"macro_{k}_allnodes") for x in t]) for k in ("precision", "recall", "f1"))
        pos = " / ".join(_ms([x.get(f"macro_{k}") for x in t]) for k in ("precision", "recall", "f1"))
        wall = np.mean([r["wall_s"] for r in rs])
        lines.append(f"| {dataset} | {scheme} | {len(rs)} | {_ms([x['micro_auprc'] for x in t])} | "
                     f"{pub if pub is not None else '-'} | {floors.get(dataset, '-')} | {allnodes} | {pos} | {p} | "
                     f"{wall / 60:.1f} min |")
    lines += ["", "## Per-depth recall (nodes with a test positive; depth 1 = top level)", "",
              "| dataset | scheme | " + " | ".join(f"depth {d}" for d in range(1, 7)) + " |",
              "|---|---|" + "---|" * 6]
    for (dataset, scheme), rs in sorted(by.items()):
        cells = [_ms([r["test"].get(f"recall_depth{d}") for r in rs]) for d in range(1, 7)]
        lines.append(f"| {dataset} | {scheme} | " + " | ".join(cells) + " |")
    lines += friedman_nemenyi(by)
    lines += ["", "## Against the claims", ""]
    for dataset in sorted({d for d, _ in by}):
        base = by.get((dataset, "mcloss"))
        pub = HMC_FUN.get(dataset, (None, None, None))[2]
        if base:
            ours = float(np.mean([r["test"]["micro_auprc"] for r in base]))
            verdict = "within" if pub is not None and abs(ours - pub) <= 0.015 else "outside"
            lines.append(f"- {dataset}: `mcloss` micro AU(PRC) {ours:.4f} vs published C-HMCNN {pub} "
                         f"({ours - pub:+.4f}, {verdict} the 0.015 tolerance).")
        for scheme in sorted({s for d, s in by if d == dataset and s != "mcloss"}):
            if not base:
                continue
            ratio = (np.mean([r["test"]["macro_recall_allnodes"] for r in by[(dataset, scheme)]])
                     / max(np.mean([r["test"]["macro_recall_allnodes"] for r in base]), 1e-12))
            lines.append(f"- {dataset}: `{scheme}` node macro recall (all nodes) is {ratio:.2f}x `mcloss`'s "
                         "(the second seed claims up to 5x; its public code gave 2.5x on cellcycle_FUN seed 0, "
                         "METHODS.md section 4).")
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text
