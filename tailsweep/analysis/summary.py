"""The end-of-sweep comparison: one row per scheme setting, mean ± std over seeds."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

COLUMNS = [
    ("val/best", "best val {metric}"),
    ("test/macro_f1", "test macro-F1"),
    ("test/recall_few", "test few-shot recall"),
    ("test/micro_auprc", "test micro AU(PRC)"),
    ("test/macro_ap", "test macro AP"),
]


def trial_rows(results) -> list[dict]:
    """Flatten Tune results into one dict per trial (plan + final metrics + status)."""
    rows = []
    for r in results:
        plan = (r.config or {}).get("trial", {})
        m = r.metrics or {}
        status = "ERROR" if r.error else "DONE"
        row = {
            "trial": plan.get("label", "?"),
            "setting": plan.get("setting") or plan.get("label", "?"),  # the setting's name, shared by its seeds
            "scheme": plan.get("scheme"),
            "group": plan.get("group"),
            "seed": plan.get("seed"),
            "status": status,
            "epochs": m.get("epoch", 0),
            # metric points MLflow refused at first and got later / never got (trainables/_tracking.py)
            "tracking_late": int(m.get("tracking/late_points") or 0),
            "tracking_unwritten": int(m.get("tracking/unwritten_points") or 0),
            # restarts of the trial's worker group (a worker or its node lost; trainables/_tracking.py)
            "retries": int(m.get("trial/retries") or 0),
        }
        for key, _ in COLUMNS:
            row[key] = m.get(key)
        rows.append(row)
    return rows


def tracking_summary(rows: list[dict]) -> str | None:
    """One line on metric points the tracking store took late or never (None when every write went through)."""
    late = sum(r.get("tracking_late", 0) for r in rows)
    lost = [(r["trial"], r["tracking_unwritten"]) for r in rows if r.get("tracking_unwritten")]
    if not late and not lost:
        return None
    text = f"MLflow: {late} metric point(s) were written late (the store refused writes for a while)"
    if not lost:
        return text + "; none lost"
    return (
        text
        + f"; {sum(n for _, n in lost)} never written: "
        + ", ".join(f"{t} ({n})" for t, n in lost)
        + " -- they are in each trial's Ray Tune results (result.json under tracking.dir/ray)"
    )


def retry_summary(rows: list[dict]) -> str | None:
    """One line naming the trials whose worker group was restarted (None when none was)."""
    retried = [(r["trial"], r["retries"]) for r in rows if r.get("retries")]
    if not retried:
        return None
    return (
        "retried: "
        + ", ".join(f"{t} ({n} restart{'s' if n != 1 else ''})" for t, n in retried)
        + " -- each resumed from its last checkpoint in the same MLflow run; why: the run's tailsweep.retry tag"
    )


def _ms(values: list[float]) -> tuple[float, float, int]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return float("nan"), float("nan"), 0
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, len(vals)


def summarise(rows: list[dict], metric: str, mode: str = "max") -> list[dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["group"]].append(row)
    out = []
    for members in groups.values():  # by the plan's group: a setting's id
        entry = {
            "setting": members[0]["setting"],
            "scheme": members[0]["scheme"],
            "seeds": len(members),
            "complete": sum(m["status"] == "DONE" and m.get("test/macro_f1") is not None for m in members),
        }
        for key, _ in COLUMNS:
            entry[key] = _ms([m.get(key) for m in members])
        out.append(entry)
    sign = -1 if mode == "max" else 1
    out.sort(
        key=lambda e: (
            math.isnan(e["val/best"][0]),
            sign * (e["val/best"][0] if not math.isnan(e["val/best"][0]) else 0),
        )
    )
    return out


def _pm(t: tuple[float, float, int]) -> str:
    mean, std, n = t
    if n == 0:
        return "-"
    return f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


def headers(metric: str) -> list[str]:
    return ["setting", "seeds"] + [h.format(metric=metric) for _, h in COLUMNS]


def as_markdown(summary: list[dict], metric: str) -> str:
    hs = headers(metric)
    lines = ["| " + " | ".join(hs) + " |", "|" + "---|" * len(hs)]
    for e in summary:
        cells = [e["setting"], f"{e['complete']}/{e['seeds']}"] + [_pm(e[k]) for k, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def print_table(summary: list[dict], metric: str, console) -> None:
    from rich.table import Table

    table = Table(title="Scheme comparison (mean ± std over seeds; best first)")
    for h in headers(metric):
        table.add_column(h)
    for e in summary:
        table.add_row(e["setting"], f"{e['complete']}/{e['seeds']}", *[_pm(e[k]) for k, _ in COLUMNS])
    console.print(table)


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
