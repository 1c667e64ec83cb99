"""Setting against baseline, beyond the seed-level tests: the paired bootstrap over test rows (:mod:`.bootstrap`),
the per-label view (which labels a setting wins, and how rare they are) and both threshold rules.

Every function takes the report's settings (``{setting: [Trial]}``) and returns blocks as
``report.build_report`` renders them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._panels import finish, panels
from .stats import seed_spread

BUCKET_WORDS = {"many": "many-shot", "medium": "medium", "few": "few-shot"}
RESAMPLES = 1000
TOP_LABELS = 5  # the labels with the largest gains and losses, per setting


def _with_predictions(trials) -> dict[int, dict]:
    return {t.seed: t.predictions for t in trials if t.complete and t.predictions is not None}


def _label_info(trials) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(labels, training counts, buckets) in the prediction files' label order (the per-label table's)."""
    rows = next(t.per_label for t in trials if t.per_label)
    return (
        [r["label"] for r in rows],
        np.array([int(r["train_count"]) for r in rows]),
        np.array([r["bucket"] for r in rows]),
    )


def paired_rows(base: dict[int, dict], other: dict[int, dict]) -> tuple[np.ndarray | None, list[int], str]:
    """(test targets, paired seeds, why not) -- the two settings' kept test rows must be the same rows."""
    seeds = sorted(set(base) & set(other))
    if not seeds:
        return None, [], "no seed with kept test predictions in both"
    ref = base[seeds[0]]
    for s in seeds:
        for pred in (base[s], other[s]):
            if not np.array_equal(pred["rows"], ref["rows"]) or pred["p"].shape != ref["p"].shape:
                return None, [], "their kept test rows differ (different tables or prediction caps)"
    return ref["y"].astype(bool), seeds, ""


# --- the paired bootstrap -------------------------------------------------------------------------------------
HEADLINE = ("micro_auprc", "macro_ap", "macro_f1")
HEADLINE_WORDS = {"micro_auprc": "micro AU(PRC)", "macro_ap": "macro AP", "macro_f1": "macro F1"}


@dataclass
class Comparison:
    """Every setting against the baseline on the kept test rows: the paired bootstrap's figures, computed once
    (the verdict and the bootstrap section both read them)."""

    base: str
    buckets: list[str]
    resamples: int
    results: dict[str, dict[str, dict]] = field(default_factory=dict)  # setting -> metric -> diff, low, high, p
    adjusted: dict[tuple[str, str], float] = field(default_factory=dict)  # (setting, metric) -> Holm-adjusted p
    seeds: dict[str, list[int]] = field(default_factory=dict)  # setting -> the seeds paired with the baseline
    skipped: list[str] = field(default_factory=list)  # "`setting` (why)"
    n_rows: int = 0
    n_test: int = 0
    baseline_predictions: bool = True

    @property
    def metrics(self) -> list[str]:
        return list(HEADLINE) + self.bucket_metrics

    @property
    def bucket_metrics(self) -> list[str]:
        return [f"{m}_{b}" for b in self.buckets for m in ("recall", "f1")]

    @property
    def level(self) -> float:
        """The intervals' coverage: 95 % with Bonferroni's correction for the settings compared."""
        return 1 - 0.05 / max(1, len(self.results))

    def holds(self, name: str, metric: str) -> bool:
        """The interval excludes 0 (the difference "holds")."""
        r = self.results.get(name, {}).get(metric)
        return r is not None and not math.isnan(r["diff"]) and (r["low"] > 0 or r["high"] < 0)

    def outside(self, name: str, metric: str) -> bool:
        r = self.results.get(name, {}).get(metric)
        return r is not None and misses_interval(r)

    def any_outside(self) -> bool:
        return any(self.outside(n, k) for n in self.results for k in self.metrics)


def misses_interval(r: dict) -> bool:
    """The test set's difference lies outside its own interval (possible for macro averages: see OUTSIDE)."""
    return not math.isnan(r["low"]) and not r["low"] <= r["diff"] <= r["high"]


OUTSIDE = (
    "a difference marked † lies outside its own interval. A macro average counts the labels with a positive "
    "*in the resample*; a label with one test positive is missing from about a third of the resamples (two: "
    "one in seven), so the resampled differences speak for the better-populated labels more than the test set's "
    "difference does. Read such an interval for its direction, not its size."
)


def compare_to_baseline(groups: dict, base: str, buckets: list[str], resamples: int = RESAMPLES) -> Comparison:
    """The paired bootstrap of every setting against ``base`` over the kept test rows (seeds paired and pooled)."""
    from .bootstrap import pooled_paired_bootstrap
    from .stats import holm

    out = Comparison(base, list(buckets), resamples)
    others = [n for n in groups if n != base]
    base_pred = _with_predictions(groups[base])
    if not others or not base_pred:
        out.baseline_predictions = bool(base_pred)
        return out
    _, _, bucket_of = _label_info(groups[base])
    masks = {b: bucket_of == b for b in buckets}
    base_cache: dict = {}  # the baseline's metrics on the resamples, once per seed
    for name in others:
        other = _with_predictions(groups[name])
        y, seeds, why = paired_rows(base_pred, other)
        if y is None:
            out.skipped.append(f"`{name}` ({why})")
            continue
        out.results[name] = pooled_paired_bootstrap(
            y,
            {s: base_pred[s]["p"] for s in seeds},
            {s: other[s]["p"] for s in seeds},
            out.metrics,
            n_resamples=resamples,
            seed=0,
            threshold=0.5,
            buckets=masks,
            alpha=0.05 / max(1, len(others)),
            base_cache=base_cache,
        )
        out.seeds[name] = seeds
        out.n_rows, out.n_test = len(y), int(base_pred[seeds[0]]["n_test"])
    for metric in out.metrics:
        names = [n for n in out.results if not math.isnan(out.results[n][metric]["p_value"])]
        for n, p in zip(names, holm([out.results[n][metric]["p_value"] for n in names]), strict=True):
            out.adjusted[(n, metric)] = p
    return out


def bootstrap_blocks(
    groups: dict, base: str, buckets: list[str], resamples: int = RESAMPLES, comparison: Comparison | None = None
) -> list[tuple]:
    """The report's bootstrap section (``comparison``: already computed by :func:`compare_to_baseline`)."""
    c = comparison or compare_to_baseline(groups, base, buckets, resamples)
    if not c.baseline_predictions or len(groups) < 2:
        return [
            ("h2", f"Against `{base}` on the test rows (paired bootstrap)"),
            (
                "p",
                "No kept test predictions (test_predictions.npz) for the baseline: trials recorded before "
                "predictions were kept, or eval.prediction_rows = 0. Re-run them to get this section.",
            ),
        ]
    blocks: list[tuple] = [("h2", f"Against `{base}` on the test rows (paired bootstrap, {c.resamples} resamples)")]
    if not c.results:
        return blocks + [("p", "Nothing to compare: " + "; ".join(c.skipped) + ".")]
    blocks.append(("p", _bootstrap_method(c)))
    blocks.append(
        (
            "table",
            ["setting"] + [f"Δ {HEADLINE_WORDS[k]}" for k in HEADLINE],
            [[n] + [_cell(c, n, k) for k in HEADLINE] for n in c.results],
        )
    )
    if c.bucket_metrics:
        blocks.append(
            (
                "table",
                ["setting"] + [f"Δ {k.split('_')[0]} {BUCKET_WORDS[k.split('_')[1]]}" for k in c.bucket_metrics],
                [[n] + [_cell(c, n, k) for k in c.bucket_metrics] for n in c.results],
            )
        )
    holds = [
        f"`{n}` {HEADLINE_WORDS[k]} {c.results[n][k]['diff']:+.4f}"
        for n in c.results
        for k in HEADLINE
        if c.holds(n, k)
    ]
    n_bucket = sum(c.holds(n, k) for n in c.results for k in c.bucket_metrics)
    blocks.append(
        (
            "p",
            (
                ("Headline differences whose interval excludes 0: " + "; ".join(holds) + ".")
                if holds
                else "No headline difference's interval excludes 0."
            )
            + (
                f" By frequency bucket: {n_bucket} of {len(c.results) * len(c.bucket_metrics)} (the table above)."
                if c.bucket_metrics
                else ""
            ),
        )
    )
    if c.any_outside():
        blocks.append(("p", "† " + OUTSIDE[0].upper() + OUTSIDE[1:]))
    if c.skipped:
        blocks.append(("p", "Not compared: " + "; ".join(c.skipped) + "."))
    return blocks


def _bootstrap_method(c: Comparison) -> str:
    subsample = (
        ""
        if c.n_rows == c.n_test
        else f" (a seeded subsample of {c.n_rows} of the {c.n_test} test rows: eval.prediction_rows)"
    )
    seeds_said = sorted({len(s) for s in c.seeds.values()})
    m = len(c.results)
    return (
        f"Each setting minus `{c.base}` on the test set{subsample}: the difference of the metric, then "
        f"{c.resamples} resamples of the test rows (with replacement), the same rows for both settings "
        f"and for every seed; with several seeds the metric difference is averaged over the paired "
        f"seeds ({'/'.join(map(str, seeds_said))} here) on each resample. Brackets: the "
        f"{100 * c.level:.1f} % percentile interval (95 % with Bonferroni's correction for the "
        f"{m} setting(s) compared); p: two-sided bootstrap p, Holm-adjusted over the settings. "
        "**What it covers:** how much the difference would move on another test set of this size "
        "drawn like this one. **What it does not:** training randomness beyond the seeds pooled -- "
        "a different seed can move a scheme more than its test-set interval says; the seed-level "
        "Wilcoxon below speaks to that. F1 and recall at the fixed 0.5 threshold."
    )


def _cell(c: Comparison, name: str, metric: str) -> str:
    r = c.results[name][metric]
    if math.isnan(r["diff"]):
        return "-"
    p = c.adjusted.get((name, metric), math.nan)
    star = " **holds**" if c.holds(name, metric) else ""
    dagger = " †" if c.outside(name, metric) else ""
    return f"{r['diff']:+.4f}{dagger} [{r['low']:+.4f}, {r['high']:+.4f}] p {p:.3g}{star}"


# --- per label ----------------------------------------------------------------------------------------------
def per_label_delta(base_trials, other_trials) -> tuple[np.ndarray, np.ndarray]:
    """(training count, ΔAP) per label with a test positive: other's mean AP over seeds minus the baseline's,
    from the per-label tables (every trial has one, with or without kept predictions)."""

    def mean_ap(trials):
        acc = {}
        for t in trials:
            if t.complete:
                for r in t.per_label:
                    acc.setdefault(r["label"], []).append(float(r["ap"]))
        return {k: float(np.nanmean(v)) if not all(math.isnan(x) for x in v) else math.nan for k, v in acc.items()}

    a, b = mean_ap(base_trials), mean_ap(other_trials)
    counts = {r["label"]: int(r["train_count"]) for t in base_trials for r in t.per_label}
    keys = [k for k in a if k in b and not math.isnan(a[k]) and not math.isnan(b[k]) and counts.get(k, 0) > 0]
    return np.array([counts[k] for k in keys]), np.array([b[k] - a[k] for k in keys])


def plot_delta_ap(groups: dict, base: str, colours, path: Path) -> list[str]:
    """One panel per setting: ΔAP of each label against its training positives (log x), no lines."""
    names = [n for n in groups if n != base]
    data = {n: per_label_delta(groups[base], groups[n]) for n in names}
    names = [n for n in names if len(data[n][0])]
    if not names:
        return []
    fig, axes, used = panels(len(names), 4.6, 3.3, sharey=True, sharex=True)
    for ax, name in zip(used, names, strict=True):
        x, d = data[name]
        ax.scatter(x, d, s=9 if len(x) > 60 else 18, alpha=0.45 if len(x) > 60 else 0.8, color=colours[name])
        ax.axhline(0, color="0.3", lw=0.8)
        ax.axvspan(max(0.8, x.min() * 0.8), 20, color="0.93", zorder=0)
        ax.set_xscale("log")
        won = int((d > 0).sum())
        ax.set_title(f"{name}\nwins {won} of {len(d)} labels", fontsize=9)
        ax.set_xlabel("training positives (log)")
        ax.grid(alpha=0.3)
    finish(
        fig,
        path,
        f"test AP minus {base}'s",
        axes,
        f"Per-label AP against {base} (mean over seeds; shaded: few-shot, < 20)",
    )
    return names


def per_label_blocks(groups: dict, base: str, colours, out_dir: Path, resamples: int = RESAMPLES) -> list[tuple]:
    from .bootstrap import per_label_ap_diff, resample_indices

    drawn = plot_delta_ap(groups, base, colours, out_dir / "delta_ap_per_label.png")
    if not drawn:
        return []
    blocks: list[tuple] = [
        ("h2", f"Per label against `{base}`"),
        ("img", "delta_ap_per_label.png", "per-label ΔAP"),
        (
            "p",
            "Each dot a label with a test positive: its test AP minus the baseline's (mean over "
            "seeds), against its training positives. Below: the labels with the largest gains "
            "and losses, with the paired bootstrap's 95 % interval (test rows resampled, seeds "
            "pooled; not corrected for the number of labels: read the extremes as leads).",
        ),
    ]
    base_pred = _with_predictions(groups[base])
    labels, counts, _ = _label_info(groups[base])
    for name in drawn:
        other = _with_predictions(groups[name])
        y, seeds, why = paired_rows(base_pred, other) if base_pred else (None, [], "no kept predictions")
        x, d = per_label_delta(groups[base], groups[name])
        if y is None:
            blocks.append(("p", f"`{name}`: no interval ({why})."))
            continue
        # the point estimate from the kept rows, then the extremes' intervals on those labels only
        diff, _, _ = per_label_ap_diff(
            y, {s: base_pred[s]["p"] for s in seeds}, {s: other[s]["p"] for s in seeds}, np.arange(len(y))[None]
        )
        finite = np.flatnonzero(~np.isnan(diff))
        order = finite[np.argsort(diff[finite])]
        pick = list(order[::-1][:TOP_LABELS]) + [j for j in order[:TOP_LABELS] if j not in order[::-1][:TOP_LABELS]]
        pick = [j for j in pick if diff[j] != 0]
        if not pick:
            continue
        idx = resample_indices(len(y), resamples, 0)
        sel = np.array(pick)
        d_sel, lo, hi = per_label_ap_diff(
            y[:, sel], {s: base_pred[s]["p"][:, sel] for s in seeds}, {s: other[s]["p"][:, sel] for s in seeds}, idx
        )
        rows = [
            [labels[j], str(counts[j]), f"{diff[j]:+.3f}", f"[{lo[i]:+.3f}, {hi[i]:+.3f}]"] for i, j in enumerate(pick)
        ]
        blocks += [
            ("p", f"`{name}`: wins {int((d > 0).sum())} of {len(d)} labels on AP; the largest gains, then losses:"),
            ("table", ["label", "train positives", "ΔAP", "95 % interval"], rows),
        ]
    return blocks


# --- thresholds ------------------------------------------------------------------------------------------------
TUNED = [
    ("macro_f1", "macro F1"),
    ("macro_precision", "macro P"),
    ("macro_recall", "macro R"),
    ("micro_f1", "micro F1"),
]


def threshold_blocks(groups: dict, buckets: list[str]) -> list[tuple]:
    """F1 / P / R at the fixed 0.5 and with per-label thresholds tuned on validation (eval.thresholds)."""
    tuned = any(f"test/tuned_{k}" in t.metrics for ts in groups.values() for t in ts for k, _ in TUNED)
    if not tuned:
        return []
    extra = [(f"recall_{b}", f"{BUCKET_WORDS[b]} recall") for b in buckets]
    rows = []
    for name, trials in groups.items():
        ok = [t for t in trials if t.complete]
        cells = [name]
        for k, _ in TUNED + extra:
            fixed = seed_spread([t.metrics.get(f"test/{k}") for t in ok])[0]
            per = seed_spread([t.metrics.get(f"test/tuned_{k}") for t in ok])[0]
            cells.append(" / ".join("-" if math.isnan(v) else f"{v:.3f}" for v in (fixed, per)))
        rows.append(cells)
    return [
        ("h2", "Two threshold rules: 0.5 / per-label (tuned on validation)"),
        (
            "p",
            "Each cell: the test figure at the fixed threshold 0.5, then with each label's threshold chosen on "
            "the validation split to maximise its F1 (eval.thresholds: per_label; a label without validation "
            "positives keeps 0.5; on a hierarchy the predictions are closed upward, so they stay coherent). "
            "Mean over seeds. Where the two rules rank schemes differently, the fixed-threshold ranking "
            "measured the threshold more than the scheme.",
        ),
        ("table", ["setting"] + [h for _, h in TUNED + extra], rows),
    ]
