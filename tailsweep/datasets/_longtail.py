"""``launch data longtail``: a controlled long-tailed version of any label table.

The standard exponential profile (Cui et al., CVPR 2019; Cao et al., NeurIPS 2019): labels ranked by
training count, label of rank i (0 = most frequent) keeps n_max * imbalance^(-i / (C - 1)) positives,
so the most frequent keeps all of its n_max and the rarest n_max / imbalance. Only the training split is
subsampled (validation and test stay as they are, so results remain comparable).

Multi-label rows carry several labels, so rows are chosen greedily, rarest target first: for each label,
rows already kept count toward its target, random rows holding it are added until the target is met,
and its remaining rows are then excluded. Co-occurrence can leave frequent labels above their target;
the achieved counts are returned and recorded in the manifest. Rows without any label keep the overall
kept fraction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..inputs import number
from ._format import LabelTable, Manifest, TableError, write_table


def exponential_profile(counts: np.ndarray, imbalance: float) -> np.ndarray:
    """Target training positives per label (same order as ``counts``); labels with 0 stay 0."""
    counts = np.asarray(counts)
    present = np.flatnonzero(counts > 0)
    order = present[np.argsort(-counts[present], kind="stable")]
    targets = np.zeros(len(counts), dtype=np.int64)
    if len(order) == 0:
        return targets
    n_max = counts[order[0]]
    denom = max(1, len(order) - 1)
    for rank, j in enumerate(order):
        targets[j] = min(counts[j], max(1, int(round(n_max * imbalance ** (-rank / denom)))))
    return targets


def longtail_rows(y: np.ndarray, targets: np.ndarray, seed: int = 0) -> np.ndarray:
    """Indices of the training rows to keep so that label j has about ``targets[j]`` positives."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y) > 0
    n, c = y.shape
    keep = np.zeros(n, bool)
    excluded = np.zeros(n, bool)
    have = np.zeros(c, np.int64)
    for j in np.argsort(targets, kind="stable"):
        if targets[j] == 0:
            continue
        need = targets[j] - have[j]
        if need > 0:
            pool = np.flatnonzero(y[:, j] & ~keep & ~excluded)
            take = rng.permutation(pool)[:need]
            keep[take] = True
            have += y[take].sum(0)
        excluded |= y[:, j] & ~keep
    labelled = y.any(1)
    unlabelled = np.flatnonzero(~labelled)
    if len(unlabelled):
        frac = keep[labelled].sum() / max(1, labelled.sum())
        keep[rng.permutation(unlabelled)[: int(round(frac * len(unlabelled)))]] = True
    return np.flatnonzero(keep)


def _check_kept(table: LabelTable, counts: np.ndarray, achieved: np.ndarray, imbalance: float) -> None:
    """Refuse a profile that leaves a label with training positives in the source without any (rows are dropped
    whole, so a steep profile on co-occurring labels can remove a label's last row), naming the labels and the
    largest imbalance the table has room for."""
    lost = [table.labels[j] for j in np.flatnonzero((counts > 0) & (achieved == 0))]
    if not lost:
        return
    shown = ", ".join(f"'{x}'" for x in lost[:5]) + (f" (+{len(lost) - 5} more)" if len(lost) > 5 else "")
    raise TableError(
        f"--imbalance {imbalance:g} leaves {len(lost)} label(s) with no training positive at all: {shown} (rows "
        f"are dropped whole, and their last rows went with other labels' cuts); the most frequent label has "
        f"{int(counts.max())} positives, so an imbalance above that cannot be reached -- lower --imbalance"
    )


def make_longtail(src: str | Path, out: str | Path, imbalance: float = 100.0, seed: int = 0) -> tuple[LabelTable, dict]:
    """Write the long-tailed copy of ``src`` at ``out``; returns (table, summary)."""
    number(imbalance, "--imbalance", low=1, why="n_max / n_min of the profile")
    table = LabelTable(src)
    train = table.read("train")
    y = table.targets(train)
    counts = y.sum(0)
    if len(counts) and imbalance > (n_max := int(counts.max())):
        raise TableError(
            f"--imbalance {imbalance:g} cannot be reached on {table.root}: its most frequent label has {n_max} "
            f"training positives and every kept label keeps at least one, so the steepest profile is "
            f"--imbalance {n_max}; use a value up to that"
        )
    targets = exponential_profile(counts, imbalance)
    rows = longtail_rows(y, targets, seed)
    kept = train.take(rows)
    achieved = y[rows].sum(0)
    _check_kept(table, counts, achieved, imbalance)
    present = achieved[achieved > 0]
    summary = {
        "imbalance": imbalance,
        "seed": seed,
        "train_rows": [int(len(y)), int(len(rows))],
        "achieved_imbalance": float(present.max() / present.min()) if len(present) else float("nan"),
        "target_counts": {lab: int(t) for lab, t in zip(table.labels, targets, strict=True)},
        "achieved_counts": {lab: int(a) for lab, a in zip(table.labels, achieved, strict=True)},
    }
    labels = [{"label": x, "parents": list(table.parents[x]), "name": table.names[x]} for x in table.labels]
    m = table.manifest
    manifest = Manifest(
        name=f"{m.name}-LT{imbalance:g}",
        input=m.input,
        task=m.task,
        source=m.source,
        licence=m.licence,
        extra={**dict(m.extra), "longtail": summary, "longtail_of": m.name},
    )
    splits = {"train": kept, "val": table.read("val"), "test": table.read("test")}
    if m.input == "image_path":  # relative paths point into the source table: make them absolute
        import pyarrow as pa

        for name, t in splits.items():
            paths = [
                p if Path(p).is_absolute() else str((table.root / p).resolve())
                for p in t.column("image_path").to_pylist()
            ]
            splits[name] = t.set_column(
                t.schema.get_field_index("image_path"), "image_path", pa.array(paths, pa.string())
            )
    return write_table(out, manifest, labels, splits), summary
