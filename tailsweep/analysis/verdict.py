"""The few sentences at the top of every report (and in the MLflow parent run's description): which settings beat
the baseline on which metric, by how much and with which interval; the head-against-tail trade-off each makes;
which setting to pick for which goal; what the evidence does not cover.

Generated from the paired bootstrap (:class:`.compare.Comparison`: a difference "holds" when its interval
excludes 0) and the seed means; a claim is made only where the interval says so. Pure Python over the report's
settings (``{setting: [Trial]}``); no plotting, no MLflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .compare import HEADLINE, HEADLINE_WORDS, OUTSIDE, Comparison, misses_interval

BUCKET_WORDS = {"many": "many-shot", "medium": "medium", "few": "few-shot"}
TITLE = "Verdict"
# (metric, the goal it serves): the choices the report names a setting for
GOALS = (
    ("macro_ap", "every label counted alike (macro AP)"),
    ("micro_auprc", "overall ranking, which the frequent labels dominate (micro AU(PRC))"),
    ("recall_few", "finding the rare labels (few-shot recall at 0.5)"),
    ("macro_f1", "decisions at the 0.5 threshold (macro F1)"),
)


@dataclass
class Evidence:
    """What the verdict is written from."""

    groups: dict[str, list]  # setting -> its trials (``report.Trial``)
    base: str | None  # the baseline setting, when the sweep has one
    comparison: Comparison | None  # the paired bootstrap against it, when predictions were kept
    buckets: list[str] = field(default_factory=list)  # frequency buckets present, head first
    missing: int = 0  # trials left out (failed, stopped, never ran)
    searched: bool = False  # a TPE search: each searched scheme shown by its best configuration on validation
    bucket_sizes: dict[str, int] = field(default_factory=dict)  # labels per bucket


def seed_mean(trials, metric: str) -> float:
    vals = [t.metrics[metric] for t in trials if t.complete and metric in t.metrics]
    vals = [v for v in vals if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def _d(r: dict) -> str:
    dagger = " †" if misses_interval(r) else ""
    return f"{r['diff']:+.3f}{dagger} [{r['low']:+.3f}, {r['high']:+.3f}]"


def _word(metric: str) -> str:
    if metric in HEADLINE_WORDS:
        return HEADLINE_WORDS[metric]
    kind, bucket = metric.split("_", 1)
    return f"{BUCKET_WORDS.get(bucket, bucket)} {kind}"


def _compared(ev: Evidence) -> bool:
    return ev.comparison is not None and bool(ev.comparison.results)


# --- 1. who beats the baseline -----------------------------------------------------------------------------------
def beats(ev: Evidence) -> str:
    """Which settings beat (or fall behind) the baseline on a headline metric, with the bootstrap interval."""
    if ev.base is None:
        return "No baseline setting in this sweep, so nothing is compared against one: read the tables below."
    if len(ev.groups) < 2:
        return f"`{ev.base}` is the only setting in this sweep: there is nothing to compare it with."
    if not any(t.complete for t in ev.groups[ev.base]):
        return f"`{ev.base}` has no finished trial, so nothing is compared against it (see 'What is missing')."
    if not _compared(ev):
        return (
            f"No setting could be compared with `{ev.base}` on the test rows (no kept test predictions), so no "
            "difference below comes with an interval: read the seed means and their min-max spread as leads, "
            "not findings."
        )
    c = ev.comparison
    level = f"{100 * c.level:.1f} %"
    ahead, behind, neither = [], [], []
    for name in c.results:
        up = [f"{_word(k)} by {_d(c.results[name][k])}" for k in HEADLINE if c.holds(name, k) and _gain(c, name, k)]
        down = [
            f"{_word(k)} by {_d(c.results[name][k])}" for k in HEADLINE if c.holds(name, k) and not _gain(c, name, k)
        ]
        if up:
            ahead.append(f"`{name}` beats `{c.base}` on " + " and on ".join(up))
        if down:
            behind.append(f"`{name}` falls behind it on " + " and on ".join(down))
        if not up and not down:
            neither.append(f"`{name}`")
    said = [
        f"Against `{c.base}`, on the test rows (paired bootstrap, {c.resamples} resamples, {level} intervals "
        "in brackets; a difference *holds* when its interval excludes 0):"
    ]
    said += [("; ".join(ahead) + ".") if ahead else f"no setting beats `{c.base}` on a headline metric."]
    if behind:
        said.append("; ".join(behind) + ".")
    if neither:
        said.append(f"No headline difference holds for {', '.join(neither)}: within what another test set could move.")
    return " ".join(said)


def _gain(c: Comparison, name: str, metric: str) -> bool:
    return c.results[name][metric]["diff"] > 0


# --- 2. the head/tail trade-off ----------------------------------------------------------------------------------
def trade_offs(ev: Evidence) -> str | None:
    """Per compared setting: recall by frequency bucket against the baseline, head against tail."""
    if not _compared(ev) or len(ev.buckets) < 2:
        return None
    c = ev.comparison
    head, tail = ev.buckets[0], ev.buckets[-1]
    lines, quiet = [], []
    for name in c.results:
        if (line := _trade_off(c, name, head, tail)) is None:
            quiet.append(f"`{name}`")
        else:
            lines.append(line)
    text = "Head against tail (recall at 0.5 by training frequency, against the baseline): "
    text += "; ".join(lines) + "." if lines else "no setting's recall difference holds in any bucket."
    if lines and quiet:
        text += f" No bucket's recall difference holds for {', '.join(quiet)}."
    return text


def _trade_off(c: Comparison, name: str, head: str, tail: str) -> str | None:
    h, t = f"recall_{head}", f"recall_{tail}"
    if h not in c.results[name] or t not in c.results[name]:
        return None
    hr, tr = c.results[name][h], c.results[name][t]
    h_up, h_down = c.holds(name, h) and hr["diff"] > 0, c.holds(name, h) and hr["diff"] < 0
    t_up, t_down = c.holds(name, t) and tr["diff"] > 0, c.holds(name, t) and tr["diff"] < 0
    hw, tw = BUCKET_WORDS.get(head, head), BUCKET_WORDS.get(tail, tail)
    figures = f"{tw} {_d(tr)}, {hw} {_d(hr)}"
    if t_up and h_down:
        return f"`{name}` trades head for tail ({figures})"
    if t_up and h_up:
        return f"`{name}` gains on head and tail alike ({figures})"
    if t_up:
        return f"`{name}` gains on the tail without a head loss that holds ({figures})"
    if h_down:
        return f"`{name}` loses on the head with no tail gain that holds ({figures})"
    if h_up and t_down:
        return f"`{name}` trades tail for head ({figures})"
    if h_up or t_down:
        return f"`{name}`: {figures}"
    return None


# --- 3. what to pick ---------------------------------------------------------------------------------------------
def picks(ev: Evidence) -> str | None:
    """For each goal, the setting with the best seed mean, and whether its lead over the baseline holds."""
    said = []
    for metric, goal in GOALS:
        key = f"test/{metric}"
        means = {n: seed_mean(ts, key) for n, ts in ev.groups.items()}
        means = {n: v for n, v in means.items() if not math.isnan(v)}
        if not means:
            continue
        if len(means) > 1 and max(means.values()) == min(means.values()):  # e.g. no setting finds a rare label
            said.append(f"for {goal}, no setting stands out: every one scores {next(iter(means.values())):.3f}")
            continue
        best = max(means, key=lambda n: (means[n], n == ev.base))  # a tie with the baseline: the baseline
        said.append(f"for {goal}, {_pick(ev, metric, best, means[best])}")
    if not said:
        return None
    return "What to pick: " + "; ".join(said) + "."


def _pick(ev: Evidence, metric: str, best: str, mean: float) -> str:
    if best == ev.base:
        return f"`{best}` ({mean:.3f}): no setting has a higher mean"
    c = ev.comparison
    r = c.results.get(best, {}).get(metric) if c is not None else None
    if r is None or math.isnan(r["diff"]):
        return f"`{best}` has the highest mean ({mean:.3f}; no interval against the baseline)"
    if c.holds(best, metric):
        return f"`{best}` ({mean:.3f}; {_d(r)} against `{ev.base}`, holds)"
    return (
        f"`{best}` has the highest mean ({mean:.3f}) but its difference to `{ev.base}` ({_d(r)}) does not hold: "
        f"`{ev.base}` does as well on this evidence"
    )


# --- 4. what the evidence does not cover -------------------------------------------------------------------------
def limits(ev: Evidence) -> str:
    seeds = sorted({n for ts in ev.groups.values() if (n := sum(t.complete for t in ts))})
    said = [
        f"{'/'.join(map(str, seeds or [0]))} finished seed(s) per setting: the tables show the seeds' min-max "
        "spread, not an interval over training runs",
        "the bootstrap intervals cover which test rows were drawn, not training randomness beyond those seeds, "
        "nor other datasets, encoders or training budgets",
        "F1 and recall are at the fixed 0.5 threshold",
    ]
    small = [f"{BUCKET_WORDS.get(b, b)} {n}" for b, n in ev.bucket_sizes.items() if 0 < n < 10]
    if small:
        said.append("some buckets hold few labels (" + ", ".join(small) + "), so their recall moves in large steps")
    if ev.searched:
        said.append("each searched scheme is shown at its best configuration on validation only")
    if ev.missing:
        said.append(f"{ev.missing} trial(s) are missing and left out (see 'What is missing')")
    if ev.comparison is not None and ev.comparison.skipped:
        said.append("not compared on the test rows: " + "; ".join(ev.comparison.skipped))
    if ev.comparison is not None and ev.comparison.any_outside():
        said.append(OUTSIDE)
    return "Not covered: " + "; ".join(said) + "."


def sentences(ev: Evidence) -> list[str]:
    """The verdict, paragraph by paragraph (Markdown)."""
    out = [beats(ev), trade_offs(ev), picks(ev), limits(ev)]
    return [s for s in out if s]


def blocks(ev: Evidence) -> list[tuple]:
    return [("h2", TITLE)] + [("p", s) for s in sentences(ev)]
