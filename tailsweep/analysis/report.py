"""``launch report SWEEP``: the comparison a user reads, built from what MLflow holds for the sweep.

Per scheme setting (a scheme with one set of hyperparameters, run over several seeds): mean ± std and
95 % confidence interval (Student t over seeds) of the headline test metrics; the many/medium/few-shot
breakdown; a paired Wilcoxon signed-rank test of each setting against the baseline (``unweighted``,
paired by seed); and plots -- per-label F1 against training frequency, recall by frequency bucket, PR
curves of the rarest labels, and each scheme's weight vector. Trials that failed, were stopped early or
never ran are listed under "What is missing" and left out of the statistics.

Written as Markdown + PNG + HTML into one folder and logged to the sweep's MLflow parent run.
"""

from __future__ import annotations

import html
import json
import math
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._common import BUCKETS
from . import input_wait, verdict
from .compare import Comparison, bootstrap_blocks, compare_to_baseline, per_label_blocks, threshold_blocks
from .pareto import pareto_blocks
from .posthoc import posthoc_settings
from .search import best_settings, search_blocks, search_settings, study_file
from .stats import fmt_spread, paired_wilcoxon, seed_spread
from .tags import NOTE_TAG, PARENT_TAG, RETRIES_TAG, RETRY_TAG, STARTED_TAG, SWEEP_TAG

HEADLINE = [
    ("test/macro_ap", "macro AP"),
    ("test/micro_auprc", "micro AU(PRC)"),
    ("test/macro_f1", "macro F1"),
    ("test/micro_f1", "micro F1"),
]
BASELINE = "unweighted"
PREDICTIONS = "test_predictions.npz"  # each trial's kept test scores (trainables/_artifacts.py: kept_predictions)


@dataclass
class Trial:
    run_id: str
    name: str
    setting: str
    scheme: str
    seed: int
    status: str
    metrics: dict
    note: str = ""
    wall_s: float = math.nan  # trial start (Tune) to run end
    per_label: list[dict] = field(default_factory=list)
    rare: list[dict] = field(default_factory=list)
    weights: dict = field(default_factory=dict)
    group: str = ""  # "<scheme entry>:<configuration>" (the trial plan's group): the setting's id
    variant: str = ""  # the scheme entry's display name (its label, or the scheme's name)
    predictions: dict | None = None  # test_predictions.npz: p (rows x labels, float16), y, rows, n_test[, thresholds]
    retries: int = 0  # restarts of its worker group (a worker or its node lost), each from its last checkpoint
    retry: str = ""  # why, and where each resumed (the run's tailsweep.retry tag)

    @property
    def complete(self) -> bool:
        return self.status == "FINISHED" and "test/macro_ap" in self.metrics


@dataclass
class Sweep:
    sweep_id: str
    parent_run_id: str
    name: str
    trials: list[Trial]
    params: dict
    label_stats: list[dict] = field(default_factory=list)
    study_path: Path | None = None  # a tpe search's Optuna storage (SQLite), when found
    verdict: str = ""  # the report's verdict (Markdown), once written


class ReportError(RuntimeError):
    pass


def _csv(path: Path) -> list[dict]:
    import csv

    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def find_sweep(client, experiment_ids: list[str], sweep: str) -> tuple[str, object]:
    """(sweep id, parent run) for a sweep id, a unique prefix of one, or ``latest``."""
    parents = [
        r
        for r in client.search_runs(
            experiment_ids,
            filter_string=f"tags.`{SWEEP_TAG}` != ''",
            order_by=["attributes.start_time DESC"],
            max_results=5000,
        )
        if PARENT_TAG not in r.data.tags
    ]
    if not parents:
        raise ReportError("no sweeps in this MLflow store; run `launch sweep` first (or pass --dir / --uri)")
    if sweep == "latest":
        return parents[0].data.tags[SWEEP_TAG], parents[0]
    hits = [r for r in parents if r.data.tags[SWEEP_TAG].startswith(sweep)]
    if len({r.data.tags[SWEEP_TAG] for r in hits}) != 1:
        known = ", ".join(sorted({r.data.tags[SWEEP_TAG] for r in parents})[-10:])
        what = "matches no sweep" if not hits else "matches several sweeps"
        raise ReportError(f"'{sweep}' {what}; sweeps in this store (latest 10): {known}, or 'latest'")
    return hits[0].data.tags[SWEEP_TAG], hits[0]


def load_sweep(uri: str, sweep: str, experiment: str | None = None) -> Sweep:
    """Everything the report needs from MLflow: child runs, their metrics, statuses and artifacts."""
    import os

    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file is noise here
    client = MlflowClient(uri)
    exps = [client.get_experiment_by_name(experiment)] if experiment else client.search_experiments()
    exps = [e for e in exps if e is not None]
    if not exps:
        raise ReportError(f"experiment '{experiment}' not found in {uri}")
    sweep_id, parent = find_sweep(client, [e.experiment_id for e in exps], sweep)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'", max_results=5000
    )
    with tempfile.TemporaryDirectory() as tmp:
        trials = [_load_trial(client, run, Path(tmp)) for run in children]
        label_stats = []
        if "label_stats.csv" in {a.path for a in client.list_artifacts(parent.info.run_id)}:
            label_stats = _csv(Path(client.download_artifacts(parent.info.run_id, "label_stats.csv", tmp)))
    name_settings(trials)
    trials.sort(key=lambda t: (t.setting, t.seed))
    study_path = None
    if search_settings(parent.data.params) is not None:
        keep = tempfile.mkdtemp(prefix="tailsweep-study-")  # outlives this function: the report reads it
        study_path = study_file(
            parent.data.params, sweep_id, lambda name: client.download_artifacts(parent.info.run_id, name, keep)
        )
    return Sweep(
        sweep_id,
        parent.info.run_id,
        parent.data.tags.get("mlflow.runName", sweep_id),
        trials,
        dict(parent.data.params),
        label_stats,
        study_path,
    )


def _load_trial(client, run, tmp: Path) -> Trial:
    """One child run as a trial: identity from its params (the plan's group and seed), never from its name."""
    tags, params = run.data.tags, run.data.params
    seed = int(params.get("seed", tags.get("seed", -1)))
    name = run.info.run_name or run.info.run_id
    t = Trial(
        run.info.run_id,
        name,
        # the setting's name as the plan wrote it; runs recorded before it was: the run name less its seed
        params.get("setting") or name.removesuffix(f" seed={seed}"),
        params.get("scheme", tags.get("scheme", "?")),
        seed,
        run.info.status,
        dict(run.data.metrics),
        tags.get("error") or tags.get("stopped_early") or "",
        group=params.get("group", ""),
        variant=params.get("variant", ""),
        retries=int(tags.get(RETRIES_TAG, 0) or 0),
        retry=tags.get(RETRY_TAG, ""),
    )
    if STARTED_TAG in tags and run.info.end_time:
        t.wall_s = run.info.end_time / 1000 - float(tags[STARTED_TAG])
    if t.complete:
        _load_artifacts(client, t, tmp / run.info.run_id)
    return t


def _load_artifacts(client, t: Trial, d: Path) -> None:
    d.mkdir()
    have = {a.path for a in client.list_artifacts(t.run_id)}
    for art in ("per_label_test.csv", "rare_labels_test_predictions.csv", "weights.json", PREDICTIONS):
        if art not in have:
            continue
        local = Path(client.download_artifacts(t.run_id, art, str(d)))
        if art == "weights.json":
            t.weights = json.loads(local.read_text())
        elif art == "per_label_test.csv":
            t.per_label = _csv(local)
        elif art == PREDICTIONS:
            with np.load(local) as z:
                t.predictions = {k: z[k] for k in z.files}
        else:
            t.rare = _csv(local)


def setting_key(t: Trial) -> str:
    """A setting's id: the plan's group (scheme entry : configuration draw), shared by its seeds."""
    return t.group or t.setting


def name_settings(trials: list[Trial]) -> None:
    """Give every setting one name, unique in the sweep: its plan name, with its group id added where two
    settings would share one (the same scheme listed twice with the same parameters)."""
    names: dict[str, set[str]] = defaultdict(set)
    for t in trials:
        names[t.setting].add(setting_key(t))
    for t in trials:
        if len(names[t.setting]) > 1:
            t.setting = f"{t.setting} [{setting_key(t)}]"


# --- statistics: tailsweep/analysis/stats.py ---------------------------------------------------------
def settings(sweep: Sweep) -> dict[str, list[Trial]]:
    """setting name -> its trials, grouped by the setting's id (:func:`setting_key`)."""
    out: dict[str, list[Trial]] = defaultdict(list)
    for t in sweep.trials:
        out[setting_key(t)].append(t)
    return {trials[0].setting: trials for trials in out.values()}


# --- plots --------------------------------------------------------------------------------------
def _colours(names: list[str]) -> dict[str, tuple]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _per_label_means(trials: list[Trial], key: str) -> dict[str, tuple[int, float]]:
    acc: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = {}
    for t in trials:
        for r in t.per_label:
            v = float(r[key])
            if not math.isnan(v):
                acc[r["label"]].append(v)
            counts[r["label"]] = int(r["train_count"])
    return {lab: (counts[lab], float(np.mean(v))) for lab, v in acc.items() if counts.get(lab, 0) > 0}


def plot_per_label_f1(groups: dict[str, list[Trial]], colours, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 5))
    for name, trials in groups.items():
        pts = sorted(_per_label_means([t for t in trials if t.complete], "f1").values())
        if not pts:
            continue
        x, y = (np.array(v, dtype=np.float64) for v in zip(*pts, strict=True))
        if len(x) <= 40:  # few labels: every label a marker (no lines: neighbours in frequency are unrelated)
            ax.scatter(x, y, s=22, alpha=0.8, color=colours[name], label=name)
            continue
        # many labels: each label a faint dot, and the mean per log-spaced frequency bin as a line
        ax.scatter(x, y, s=6, alpha=0.25, color=colours[name])
        edges = np.logspace(np.log10(x.min()), np.log10(x.max()) + 1e-9, 9)
        idx = np.digitize(x, edges) - 1
        centres = [np.sqrt(edges[b] * edges[b + 1]) for b in range(8) if (idx == b).any()]
        means = [y[idx == b].mean() for b in range(8) if (idx == b).any()]
        ax.plot(centres, means, "o-", lw=2, ms=5, color=colours[name], label=f"{name} (bin means)")
    ax.set_xscale("log")
    ax.set_xlabel("training positives of the label (log scale)")
    ax.set_ylabel("test F1 at 0.5 (mean over seeds)")
    ax.set_title("Per-label F1 against training frequency")
    ax.axvspan(ax.get_xlim()[0], 20, color="0.92", zorder=0)
    ax.text(0.01, 0.97, "few-shot (< 20)", transform=ax.transAxes, va="top", fontsize=8, color="0.4")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bucket_recall(groups: dict[str, list[Trial]], colours, path: Path, buckets: list[str]) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / max(1, len(groups))
    for i, (name, trials) in enumerate(groups.items()):
        stats = [seed_spread([t.metrics.get(f"test/recall_{b}") for t in trials if t.complete]) for b in buckets]
        means = [s[0] for s in stats]
        errs = np.nan_to_num([[m - lo for m, lo, _, _ in stats], [hi - m for m, _, hi, _ in stats]])  # the range
        ax.bar(np.arange(len(buckets)) + i * width, means, width, yerr=errs, capsize=2, color=colours[name], label=name)
    ax.set_xticks(np.arange(len(buckets)) + width * (len(groups) - 1) / 2)
    ax.set_xticklabels(
        [{"many": "many-shot (> 100)", "medium": "medium (20-100)", "few": "few-shot (< 20)"}[b] for b in buckets]
    )
    ax.set_ylabel("test macro recall at 0.5 (bars: the seeds' min-max)")
    ax.set_title("Recall by training-frequency bucket")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_rare_pr(groups: dict[str, list[Trial]], colours, path: Path) -> list[str]:
    """PR curves (pooled over seeds) of the rarest labels; returns the labels drawn."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    labels: dict[str, int] = {}
    for trials in groups.values():
        for t in trials:
            for r in t.rare:
                labels[r["label"]] = int(r["train_count"])
    order = sorted(labels, key=lambda x: (labels[x], x))[:6]
    if not order:
        return []
    cols = min(3, len(order))
    rows = math.ceil(len(order) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.4 * rows), squeeze=False)
    for ax, label in zip(axes.ravel(), order, strict=False):
        for name, trials in groups.items():
            pts = [(int(r["y"]), float(r["p"])) for t in trials for r in t.rare if r["label"] == label]
            if pts and any(y for y, _ in pts):
                y, p = zip(*pts, strict=True)
                prec, rec, _ = precision_recall_curve(y, p)
                ax.plot(rec, prec, color=colours[name], lw=1.2, label=name)
        ax.set_title(f"{label} ({labels[label]} train)", fontsize=9)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(order) :]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6)
    fig.suptitle("PR curves of the rarest labels (test, pooled over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return order


def plot_weights(groups: dict[str, list[Trial]], colours, path: Path) -> list[str]:
    """Each setting's per-label positive-term weight against training count; returns the settings drawn."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.5))
    drawn = []
    for name, trials in groups.items():
        w = next((t.weights for t in trials if t.weights), {})
        counts = w.get("train_count")
        key = next(
            (
                k
                for k in ("node_weight", "pos_weight", "logit_shift")
                if isinstance(w.get(k), list) and counts and len(w[k]) == len(counts)
            ),
            None,
        )
        if key is None:
            continue
        pts = sorted((c, v) for c, v in zip(counts, w[key], strict=True) if c > 0)
        if pts:
            x, y = zip(*pts, strict=True)
            on = f" on {w['weight_targets']}" if key == "node_weight" and w.get("weight_targets") else ""
            ax.plot(x, y, "o", ms=3, alpha=0.8, color=colours[name], label=f"{name} [{key}{on}]")
            drawn.append(name)
    ax.set_xscale("log")
    ax.set_xlabel("training positives of the label (log scale)")
    ax.set_ylabel("per-label value [vector named in the legend]")
    ax.set_title(
        "Weight vector of each scheme: pos_weight multiplies the positive term, node_weight the targets "
        "named; logit_shift is added to z"
    )
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


# --- the document ---------------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[str]]) -> tuple:
    return ("table", header, rows)


@dataclass
class Context:
    """What every step of the report reads: the sweep, the settings shown, the baseline, the bootstrap."""

    sweep: Sweep
    out_dir: Path
    title: str | None
    baseline: str  # as asked (or the default)
    groups: dict[str, list[Trial]]  # setting name -> trials, the settings the report shows
    base: str | None  # the baseline's setting name, when the sweep has one
    buckets: list[str]  # frequency buckets with figures
    colours: dict
    search: dict | None  # a tpe search's settings
    comparison: Comparison | None = None  # every setting against the baseline on the test rows
    posthoc: list = field(default_factory=list)  # the post-hoc adjustment's section (analysis/posthoc.py)

    @property
    def done(self) -> list[Trial]:
        return [t for t in self.sweep.trials if t.complete]


def find_baseline(groups: dict[str, list[Trial]], baseline: str | None) -> tuple[str, str | None]:
    """(the baseline asked for, its setting): matched on the setting's name, its scheme entry's name or its
    scheme; the default is ``unweighted``, or ``mcloss`` (C-HMCNN) on a hierarchy sweep that has it."""

    def ids(trials: list[Trial]) -> set[str]:
        return {t.scheme for t in trials} | {t.variant for t in trials if t.variant}

    if baseline is None:
        baseline = "mcloss" if any("mcloss" in ids(ts) for ts in groups.values()) else BASELINE
    base = next((n for n in groups if n == baseline), None)
    base = base or next((n for n, ts in groups.items() if baseline in ids(ts)), None)
    return baseline, base


def prepare(sweep: Sweep, out_dir: Path, baseline: str | None = None, title: str | None = None) -> Context:
    """The settings to show (a tpe search: each searched entry by its best configuration), the baseline, the
    buckets, the colours and the paired bootstrap against the baseline (computed once)."""
    groups = settings(sweep)
    search = search_settings(sweep.params)
    if search is not None:
        keep = best_settings(sweep, search)
        groups = {k: v for k, v in groups.items() if k in keep}
    adjusted, posthoc = posthoc_settings(groups)  # "<setting> + post-hoc τ=…": analysis/posthoc.py
    groups |= adjusted
    baseline, base = find_baseline(groups, baseline)
    done = [t for t in sweep.trials if t.complete]
    buckets = [b for b in BUCKETS if any(f"test/recall_{b}" in t.metrics for t in done)]
    ctx = Context(sweep, out_dir, title, baseline, groups, base, buckets, _colours(list(groups)), search)
    ctx.posthoc = posthoc
    if base is not None:
        ctx.comparison = compare_to_baseline(groups, base, buckets)
    return ctx


def evidence(ctx: Context) -> verdict.Evidence:
    sizes = {}
    if ctx.done and ctx.done[0].per_label:
        sizes = {b: sum(1 for r in ctx.done[0].per_label if r["bucket"] == b) for b in ctx.buckets}
    return verdict.Evidence(
        ctx.groups,
        ctx.base,
        ctx.comparison,
        ctx.buckets,
        missing=sum(not t.complete for t in ctx.sweep.trials),
        searched=ctx.search is not None,
        bucket_sizes=sizes,
    )


# --- the steps, in the order the report reads --------------------------------------------------------------------
def intro_blocks(ctx: Context) -> list[tuple]:
    sweep, search = ctx.sweep, ctx.search
    return [
        ("h1", ctx.title or f"Sweep report: {sweep.name}"),
        (
            "p",
            f"Sweep `{sweep.sweep_id}` (MLflow parent run `{sweep.parent_run_id}`): "
            f"{len(sweep.trials)} trials in {len(settings(sweep))} settings, {len(ctx.done)} complete"
            + (
                f" (a TPE search: the tables and plots show each searched scheme by its best "
                f"configuration on validation, {len(ctx.groups)} settings in all). "
                if search
                else ". "
            )
            + "Every figure below is computed from the child runs' MLflow metrics and artifacts "
            "(test split, best checkpoint by the sweep's selection metric).",
        ),
    ]


def verdict_blocks(ctx: Context) -> list[tuple]:
    return verdict.blocks(evidence(ctx))


def headline_blocks(ctx: Context) -> list[tuple]:
    """Mean and the seeds' min-max per headline metric, best macro AP first; wall time with the cache apart."""
    rows = []
    for name, trials in ctx.groups.items():
        ok = [t for t in trials if t.complete]
        values = [[t.metrics.get(k) for t in ok] for k, _ in HEADLINE]
        cells = [name, f"{len(ok)}/{len(trials)}"] + [fmt_spread(v) for v in values] + _walls(ok)
        rows.append((seed_spread(values[0])[0], cells))
    rows.sort(key=lambda r: -r[0] if not math.isnan(r[0]) else math.inf)  # by the mean, not its formatted cell
    cache = _cache_note(ctx.sweep.trials)
    header = ["setting", "seeds"] + [h for _, h in HEADLINE] + ["trial wall (median)", "of which embedding cache"]
    table = [r for _, r in rows]
    if cache is None:  # no trial built or waited for an embedding cache: no column for it
        header, table = header[:-1], [r[:-1] for r in table]
    text = (
        "Each cell: the mean over seeds, then the seeds' range (min–max) in parentheses -- the spread of the "
        "training runs, not a confidence interval (with 2-3 seeds a Student-t interval leaves the metric's "
        "domain). For how much a difference to the baseline would move on another test set, read the paired "
        "bootstrap below. Trial wall: from the trial's start to its run's end."
    )
    return [
        ("h2", "Headline metrics (test)"),
        ("p", text + (f" {cache}" if cache else "")),
        _table(header, table),
        *input_wait.report_blocks(ctx.groups),
    ]


EMBED = "time/embed_s"  # the seconds a trial spent getting the embedding cache (trainables/worker.py)


def _walls(ok: list[Trial]) -> list[str]:
    walls = [t.wall_s for t in ok if not math.isnan(t.wall_s)]
    embeds = [t.metrics[EMBED] for t in ok if EMBED in t.metrics]
    return [f"{np.median(walls):.0f} s" if walls else "-", f"{np.median(embeds):.0f} s" if embeds else "-"]


def _cache_note(trials: list[Trial]) -> str | None:
    """What the embedding cache cost (``time/embed_s``): the first trial that needs it builds it, those started
    meanwhile wait for it, the rest read it in under a second."""
    embeds = sorted(((t.metrics[EMBED], t.name) for t in trials if t.metrics.get(EMBED, 0) >= 1), reverse=True)
    if not embeds:
        return None
    (longest, first), n = embeds[0], len(embeds)
    return (
        "Embedding cache: the frozen encoder's embeddings are computed once per table and shared by every trial; "
        "the first trial to need them builds them and trials started meanwhile wait (`time/embed_s`). "
        f"{n} trial(s) spent a second or more on it, `{first}` the longest: {longest:.0f} s of its wall time. "
        "The column beside the wall time is that share (median over seeds), not the scheme's cost."
    )


def bootstrap_step(ctx: Context) -> list[tuple]:
    if ctx.base is None:
        return []
    return bootstrap_blocks(ctx.groups, ctx.base, ctx.buckets, comparison=ctx.comparison)


def bucket_blocks(ctx: Context) -> list[tuple]:
    rows = []
    for name, trials in ctx.groups.items():
        ok = [t for t in trials if t.complete]
        cells = []
        for b in ctx.buckets:
            r, f, a = (seed_spread([t.metrics.get(f"test/{m}_{b}") for t in ok])[0] for m in ("recall", "f1", "ap"))
            cells.append(" / ".join("-" if math.isnan(v) else f"{v:.3f}" for v in (r, f, a)))
        rows.append([name] + cells)
    counts = evidence(ctx).bucket_sizes
    return [
        ("h2", "By training frequency (recall / F1 / AP, mean over seeds)"),
        (
            "p",
            "Buckets by training positives (Liu et al., CVPR 2019): many-shot > 100, medium 20-100, few-shot < 20"
            + (
                " -- " + ", ".join(f"{b}: {n} label{'s' if n != 1 else ''}" for b, n in counts.items())
                if counts
                else ""
            )
            + ".",
        ),
        _table(["setting"] + ctx.buckets, rows),
    ]


def _depth_recall(t: Trial) -> dict[int, float]:
    """Test recall at 0.5 per hierarchy depth (mean over the depth's labels with a test positive), from the
    trial's per-label rows (post-hoc settings included), else from its ``test/recall_depth<d>`` metrics."""
    by: dict[int, list[float]] = {}
    for r in t.per_label:
        if float(r.get("positives") or 0) > 0:
            by.setdefault(int(float(r.get("depth") or 1)), []).append(float(r["recall"]))
    if by:
        return {d: float(np.mean(v)) for d, v in by.items()}
    pre = "test/recall_depth"
    return {int(k[len(pre) :]): v for k, v in t.metrics.items() if k.startswith(pre) and k[len(pre) :].isdigit()}


def depth_blocks(ctx: Context) -> list[tuple]:
    """Recall per depth of the label hierarchy (only for a sweep whose table has one deeper than 1)."""
    per = {n: [_depth_recall(t) for t in ts if t.complete] for n, ts in ctx.groups.items()}
    depths = sorted({d for rs in per.values() for r in rs for d in r})
    if len(depths) < 2:
        return []
    sizes: dict[int, int] = {}
    for r in next((t.per_label for t in ctx.done if t.per_label), []):
        if float(r.get("positives") or 0) > 0:
            d = int(float(r.get("depth") or 1))
            sizes[d] = sizes.get(d, 0) + 1
    head = [f"depth {d}" + (f" ({sizes[d]})" if d in sizes else "") for d in depths]
    rows = [[n] + [fmt_spread([r.get(d, math.nan) for r in rs]) for d in depths] for n, rs in per.items()]
    return [
        ("h2", "Recall by depth in the label hierarchy (test, threshold 0.5)"),
        (
            "p",
            "Macro recall over the labels of each depth that have a test positive (depth 1: top level; in "
            "brackets, how many labels), mean over seeds and the seeds' range.",
        ),
        _table(["setting"] + head, rows),
    ]


def wilcoxon_blocks(ctx: Context) -> list[tuple]:
    """Each setting against the baseline, paired by seed (Wilcoxon signed-rank)."""
    base, groups = ctx.base, ctx.groups
    if base is None:
        return [("p", f"No `{ctx.baseline}` setting in this sweep: no paired tests.")]
    rows = []
    for name, trials in groups.items():
        if name == base:
            continue
        cells = [name]
        for key in ("test/macro_ap", "test/macro_f1", "test/recall_few"):
            a = {t.seed: t.metrics[key] for t in groups[base] if t.complete and key in t.metrics}
            b = {t.seed: t.metrics[key] for t in trials if t.complete and key in t.metrics}
            diff, p, n = paired_wilcoxon(a, b)
            cells.append("-" if n == 0 else f"{diff:+.3f} (p {'n/a' if math.isnan(p) else f'{p:.3f}'}, {n} pairs)")
        rows.append(cells)
    smallest = min(1.0, 2 * 0.5 ** len(groups[base]))
    return [
        ("h2", f"Against `{base}` (paired by seed, Wilcoxon signed-rank)"),
        (
            "p",
            f"Mean difference to `{base}` and the two-sided p-value. With {len(groups[base])} seeds the "
            f"smallest possible p is {smallest:.3f}: more seeds are needed before any difference can be "
            "called significant at 0.05.",
        ),
        _table(["setting", "Δ macro AP", "Δ macro F1", "Δ few-shot recall"], rows),
    ]


def threshold_step(ctx: Context) -> list[tuple]:
    return threshold_blocks(ctx.groups, ctx.buckets)


def posthoc_step(ctx: Context) -> list[tuple]:
    return ctx.posthoc


def per_label_step(ctx: Context) -> list[tuple]:
    if ctx.base is None:
        return []
    return per_label_blocks(ctx.groups, ctx.base, ctx.colours, ctx.out_dir)


def plot_blocks(ctx: Context) -> list[tuple]:
    if not ctx.done:
        return []
    groups, colours, out_dir = ctx.groups, ctx.colours, ctx.out_dir
    plot_per_label_f1(groups, colours, out_dir / "per_label_f1.png")
    blocks = [("h2", "Per-label F1 against training frequency"), ("img", "per_label_f1.png", "per-label F1")]
    if ctx.buckets:
        plot_bucket_recall(groups, colours, out_dir / "recall_by_bucket.png", ctx.buckets)
        blocks += [("h2", "Recall by frequency bucket"), ("img", "recall_by_bucket.png", "recall by bucket")]
    if plot_rare_pr(groups, colours, out_dir / "pr_rarest.png"):
        blocks += [("h2", "PR curves of the rarest labels"), ("img", "pr_rarest.png", "PR curves")]
    drawn = plot_weights(groups, colours, out_dir / "weights.png")
    missing_w = [n for n in groups if n not in drawn]
    return blocks + [
        ("h2", "Weight vectors"),
        ("img", "weights.png", "weights"),
        (
            "p",
            "Schemes that weight by a formula of p rather than a per-label vector (focal, asymmetric) "
            "are not drawn: " + (", ".join(missing_w) or "none") + ".",
        ),
    ]


def search_step(ctx: Context) -> list[tuple]:
    if ctx.search is None:
        return []
    return search_blocks(ctx.sweep, ctx.search, ctx.out_dir, ctx.sweep.study_path)


def pareto_step(ctx: Context) -> list[tuple]:
    if ctx.search is None:
        return []
    return pareto_blocks(ctx.sweep, ctx.search, ctx.out_dir)  # search.metrics: the fronts (analysis/pareto.py)


def label_stats_blocks(ctx: Context) -> list[tuple]:
    stats = ctx.sweep.label_stats
    if not stats:
        return []
    by_bucket: dict[str, int] = defaultdict(int)
    for r in stats:
        by_bucket[r["bucket"]] += 1
    shown = stats if len(stats) <= 60 else sorted(stats, key=lambda r: int(r["train_count"]))[:60]
    return [
        ("h2", "Label statistics (training split)"),
        (
            "p",
            f"{len(stats)} labels: "
            + ", ".join(f"{b} {by_bucket[b]}" for b in BUCKETS if b in by_bucket)
            + (" (the 60 rarest shown)" if len(shown) < len(stats) else "")
            + ".",
        ),
        _table(
            ["label", "depth", "train positives", "bucket"],
            [
                [r["label"], r["depth"], r["train_count"], r["bucket"]]
                for r in sorted(shown, key=lambda r: -int(r["train_count"]))
            ],
        ),
    ]


def retry_step(ctx: Context) -> list[tuple]:
    return retry_blocks(ctx.sweep.trials)


def retry_blocks(trials: list[Trial]) -> list[tuple]:
    """The trials whose worker group was restarted (a worker process or its node lost): none, no section."""
    retried = [t for t in trials if t.retries]
    if not retried:
        return []
    return [
        ("h2", "Retried trials"),
        (
            "p",
            "Their worker group was restarted mid-trial and resumed from its last checkpoint in the same run "
            "(every epoch is logged once); they count like any other trial.",
        ),
        _table(
            ["trial", "status", "restarts", "why, and where it resumed"],
            [[t.name, t.status, str(t.retries), t.retry.replace("|", ";")[:400]] for t in retried],
        ),
    ]


def missing_blocks(ctx: Context) -> list[tuple]:
    missing = [t for t in ctx.sweep.trials if not t.complete]
    blocks: list[tuple] = [("h2", "What is missing")]
    if not missing:
        return blocks + [("p", "Nothing: every trial finished and recorded its test metrics.")]
    return blocks + [
        _table(
            ["trial", "status", "epochs logged", "why"],
            [[t.name, t.status, str(int(t.metrics.get("epoch", 0))), _reason(t.note)] for t in missing],
        ),
        ("p", f"{len(missing)} trial(s) are left out of every statistic above."),
    ]


STEPS = [
    intro_blocks,
    verdict_blocks,
    headline_blocks,
    bootstrap_step,
    bucket_blocks,
    depth_blocks,
    wilcoxon_blocks,
    threshold_step,
    posthoc_step,
    per_label_step,
    plot_blocks,
    search_step,
    pareto_step,
    label_stats_blocks,
    retry_step,
    missing_blocks,
]
"""The report's sections, in order: each step takes the :class:`Context` and returns its blocks."""


def build_report(sweep: Sweep, out_dir: Path, baseline: str | None = None, title: str | None = None) -> list[tuple]:
    """Compute, plot into ``out_dir``, and return the report as blocks (rendered to Markdown and HTML)."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = prepare(sweep, out_dir, baseline, title)
    return [b for step in STEPS for b in step(ctx)]


def verdict_section(blocks: list[tuple]) -> list[tuple]:
    """The verdict's blocks within a built report (its heading to the next one)."""
    start = next((i for i, b in enumerate(blocks) if b[:2] == ("h2", verdict.TITLE)), None)
    if start is None:
        return []
    end = next((i for i in range(start + 1, len(blocks)) if blocks[i][0] in ("h1", "h2")), len(blocks))
    return blocks[start:end]


def _reason(note: str) -> str:
    """The line that says why (a traceback's last line: the exception and its message), one table cell long."""
    lines = [x.strip() for x in (note or "").splitlines() if x.strip()]
    return (lines[-1] if lines else "no test metrics recorded")[:200].replace("|", "/")


def to_markdown(blocks: list[tuple], image_prefix: str = "") -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out += [f"# {b[1]}", ""]
        elif kind == "h2":
            out += [f"## {b[1]}", ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "img":
            out += [f"![{b[2]}]({image_prefix}{b[1]})", ""]
        elif kind == "table":
            out += ["| " + " | ".join(b[1]) + " |", "|" + "---|" * len(b[1])]
            out += ["| " + " | ".join(r) + " |" for r in b[2]] + [""]
    return "\n".join(out)


def to_html(blocks: list[tuple], image_prefix: str = "") -> str:
    e = html.escape
    body = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{e(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{e(b[1]).replace('`', '')}</p>")
        elif kind == "img":
            body.append(f'<img src="{e(image_prefix + b[1])}" alt="{e(b[2])}">')
        elif kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "th{background:#f3f3f3}img{max-width:100%}"
    )
    return f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head><body>{''.join(body)}</body></html>\n"


def write_report(
    uri: str,
    sweep: str,
    out: Path,
    experiment: str | None = None,
    baseline: str | None = None,
    title: str | None = None,
    log_to_mlflow: bool = True,
) -> tuple[Path, Sweep]:
    """Write the report. ``out``: a folder (report.md, report.html, PNGs inside) or a ``.md`` file (its
    PNGs and HTML in a sibling folder named after it). Logged to the parent run under ``report/``."""
    data = load_sweep(uri, sweep, experiment)
    groups = settings(data)
    if baseline is not None and find_baseline(groups, baseline)[1] is None:  # before anything is written
        raise ReportError(
            f"--baseline {baseline!r}: sweep {data.sweep_id} has no such setting; its settings: "
            f"{', '.join(groups) or 'none'} (a scheme's name picks its setting)"
        )
    if out.suffix == ".md":
        md_path, asset_dir = out, out.with_suffix("")
        prefix = asset_dir.name + "/"
    else:
        md_path, asset_dir, prefix = out / "report.md", out, ""
    blocks = build_report(data, asset_dir, baseline, title)
    data.verdict = to_markdown(verdict_section(blocks)).strip()
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(to_markdown(blocks, prefix))
    (asset_dir / "report.html").write_text(to_html(blocks))
    if log_to_mlflow:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        client.log_artifact(data.parent_run_id, str(md_path), "report")
        for f in sorted(asset_dir.glob("*.png")) + [asset_dir / "report.html"]:
            client.log_artifact(data.parent_run_id, str(f), "report")
        describe_run(client, data.parent_run_id, data.verdict, f"report/{md_path.name}")
    return md_path, data


def describe_run(client, run_id: str, verdict_md: str, report_artifact: str) -> None:
    """The verdict as the parent run's description, so the MLflow UI shows it on the run's page."""
    if not verdict_md:
        return
    tail = f"\n\nThe full report: `{report_artifact}` in this run's artifacts.\n"
    text = verdict_md
    if len(text) + len(tail) > MAX_NOTE:  # many settings: cut at a sentence, and say where the rest is
        cut = text[: MAX_NOTE - len(tail) - 40]
        text = cut[: cut.rfind(". ") + 1] + " … (cut to MLflow's limit)"
    client.set_tag(run_id, NOTE_TAG, text + tail)


MAX_NOTE = 8000  # MLflow's tag-value limit
