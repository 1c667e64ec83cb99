"""The trade-off a multi-objective search (``search.metrics``) explored, for ``launch report``: every scheme
entry's configurations by their mean over seeds of each metric at the selected epoch (``best/<metric>``, what the
studies learned from), each scheme's own Pareto front drawn, the configurations no other configuration of any
scheme dominates listed, and the schemes with none among them named.

A configuration dominates another when it is at least as good on every metric (in each metric's mode) and
better on one; the front is the set no configuration dominates. Validation figures (what the search saw); the
table adds the same metrics on test for the listed configurations. Imports no Ray.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._panels import finish
from .search import configurations


def pareto_mask(points, modes) -> np.ndarray:
    """Which rows of ``points`` (configurations x metrics) no other row dominates; ``modes``: max | min per
    metric. Rows with a NaN are never on the front (and dominate nothing)."""
    pts = np.asarray(points, dtype=np.float64).reshape(len(points), len(modes))
    sign = np.array([1.0 if m == "max" else -1.0 for m in modes])
    x = pts * sign  # larger is better on every column
    ok = ~np.isnan(x).any(axis=1)
    out = np.zeros(len(x), dtype=bool)
    for i in np.flatnonzero(ok):
        others = x[ok]
        dominated = ((others >= x[i]).all(axis=1) & (others > x[i]).any(axis=1)).any()
        out[i] = not dominated
    return out


def objective_values(config: dict, metrics: list[str], prefix: str = "best/") -> list[float]:
    """A configuration's mean over its complete seeds of each metric (``best/<metric>``; NaN where missing)."""
    done = [t for t in config["trials"] if t.complete]
    out = []
    for m in metrics:
        v = [t.metrics[prefix + m] for t in done if prefix + m in t.metrics]
        out.append(float(np.mean(v)) if v else math.nan)
    return out


def _test_key(metric: str) -> str | None:
    return "test/" + metric.removeprefix("val/") if metric.startswith("val/") else None


def points(sweep, settings: dict) -> list[dict]:
    """One row per configuration of every entry: {entry, scheme, setting, values, config}."""
    names = dict(enumerate(settings["schemes"]))
    rows = []
    for entry, cs in sorted(configurations(sweep.trials).items()):
        for c in cs:
            rows.append(
                {
                    "entry": entry,
                    "scheme": names.get(entry, str(entry)),
                    "setting": c["setting"],
                    "values": objective_values(c, settings["metrics"]),
                    "config": c,
                }
            )
    return rows


def plot_fronts(rows: list[dict], metrics: list[str], modes: list[str], front: np.ndarray, path: Path) -> None:
    """All configurations (faint), each scheme's own front (a line), the front across schemes (ringed); the first
    two metrics."""
    import matplotlib
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    cmap = matplotlib.colormaps["tab10" if len(schemes) <= 10 else "tab20"]
    for k, name in enumerate(schemes):
        mine = [r for r in rows if r["scheme"] == name]
        xy = np.array([r["values"][:2] for r in mine], dtype=np.float64)
        colour = cmap(k % cmap.N)
        ax.scatter(xy[:, 0], xy[:, 1], s=18, color=colour, alpha=0.35)
        own = pareto_mask(np.array([r["values"] for r in mine]), modes)
        f = xy[own]
        f = f[np.argsort(f[:, 0])]
        ax.plot(f[:, 0], f[:, 1], "-o", color=colour, ms=5, lw=1.5, label=f"{name} ({len(mine)} configurations)")
    ring = np.array([r["values"][:2] for r, on in zip(rows, front, strict=True) if on], dtype=np.float64)
    if len(ring):
        ax.scatter(ring[:, 0], ring[:, 1], s=140, facecolors="none", edgecolors="black", lw=1.3, label="front")
    ax.set_xlabel(f"{metrics[0]} ({modes[0]})")
    ax.set_ylabel(f"{metrics[1]} ({modes[1]})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    axes = np.array([[ax]])
    finish(fig, path, None, axes, "Pareto front per scheme (validation, mean over seeds)")


def rows_on(rows: list[dict], front: np.ndarray) -> list[dict]:
    return [r for r, on in zip(rows, front, strict=True) if on]


def _cell(values: list[float]) -> str:
    v = [x for x in values if not math.isnan(x)]
    return f"{np.mean(v):.3f}" if v else "-"


def _front_table(rows: list[dict], front: np.ndarray, metrics: list[str], modes: list[str]) -> tuple:
    tests = [_test_key(m) for m in metrics]
    sign = 1 if modes[0] == "max" else -1
    rows = sorted(rows_on(rows, front), key=lambda r: -sign * r["values"][0])
    out = []
    for r in rows:
        done = [t for t in r["config"]["trials"] if t.complete]
        test_cells = [_cell([t.metrics.get(k, math.nan) for t in done]) if k else "-" for k in tests]
        out.append([r["scheme"], r["setting"], str(len(done))] + [f"{v:.3f}" for v in r["values"]] + test_cells)
    header = ["scheme", "configuration", "seeds"] + [f"val {m.removeprefix('val/')}" for m in metrics]
    header += [f"test {k.removeprefix('test/')}" if k else f"test ({m})" for m, k in zip(metrics, tests, strict=True)]
    return ("table", header, out)


def pareto_blocks(sweep, settings: dict, out_dir: Path) -> list[tuple]:
    """The report's trade-off section (blocks as ``report.build_report`` renders them); [] for one metric."""
    metrics, modes = settings.get("metrics"), settings.get("modes")
    if not metrics:
        return []
    rows = [r for r in points(sweep, settings) if not any(math.isnan(v) for v in r["values"])]
    blocks: list[tuple] = [("h2", "Trade-off: the Pareto front (multi-objective search)")]
    goals = ", ".join(f"`{m}` ({mode})" for m, mode in zip(metrics, modes, strict=True))
    if not rows:
        return blocks + [("p", f"No configuration recorded {goals} at its selected epoch (best/<metric>).")]
    front = pareto_mask(np.array([r["values"] for r in rows]), modes)
    plot_fronts(rows, metrics, modes, front, out_dir / "pareto_front.png")
    schemes = list(dict.fromkeys(r["scheme"] for r in rows))
    on = {r["scheme"] for r, f in zip(rows, front, strict=True) if f}
    off = [s for s in schemes if s not in on]
    text = (
        f"Each scheme entry's study searched {goals} together; every configuration is placed by its mean over "
        "seeds of each metric at the epoch the first metric selected (validation: what the studies saw). "
        "Lines: each scheme's own front; rings: the front across schemes (no configuration of any scheme is at "
        "least as good on every metric and better on one). "
    )
    if len(metrics) > 2:
        text += f"The figure draws the first two metrics; the front uses all {len(metrics)}. "
    text += (
        f"{int(front.sum())} of {len(rows)} configurations are on the front, from "
        f"{len(on)} of {len(schemes)} schemes. "
        + (
            "Schemes with no configuration on the front: " + ", ".join(f"`{s}`" for s in off) + "."
            if off
            else "Every scheme has a configuration on the front."
        )
    )
    blocks += [
        ("img", "pareto_front.png", "Pareto front"),
        ("p", text),
        _front_table(rows, front, metrics, modes),
        (
            "p",
            "The configurations on the front across schemes, by the first metric; the test columns are the same "
            "metrics on the test split (mean over seeds), which the search did not see.",
        ),
    ]
    return blocks
