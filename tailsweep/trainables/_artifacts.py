"""What a trial keeps besides its metrics: per-label tables, the rare labels' scores, the kept test predictions and
the scheme's weights, written into the final checkpoint's ``artifacts/`` (logged to MLflow by the controller)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..config import TrialConfig
from ..datasets import LabelStats

ARTIFACTS_DIR = "artifacts"  # in the final checkpoint: the files logged to the run's artifacts


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


RARE_LABELS = 6  # test predictions of this many rarest labels are kept (PR curves in `launch report`)


def rare_predictions(stats: LabelStats, y: np.ndarray, p: np.ndarray, k: int = RARE_LABELS) -> list[dict]:
    """(row, label, y, p) of the ``k`` rarest labels (by training count) that have a test positive."""
    order = [j for j in np.argsort(stats.counts, kind="stable") if stats.counts[j] > 0 and y[:, j].any()][:k]
    return [
        {
            "row": i,
            "label": stats.labels[j],
            "train_count": int(stats.counts[j]),
            "y": int(y[i, j]),
            "p": float(p[i, j]),
        }
        for j in order
        for i in range(len(y))
    ]


PREDICTIONS_FILE = "test_predictions.npz"


def _capped_rows(n: int, cap: int) -> np.ndarray:
    """Every row index, or past ``cap`` rows a seeded subsample (seed 0: the same rows for every trial of a table)."""
    rows = np.arange(n)
    if n > cap:
        rows = np.sort(np.random.default_rng(0).choice(n, size=cap, replace=False))
    return rows


def kept_predictions(
    y: np.ndarray,
    p: np.ndarray,
    thresholds: np.ndarray | None,
    cap: int,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    stats: LabelStats | None = None,
) -> dict | None:
    """The test scores kept for ``launch report`` (paired bootstrap, per-label view): every row, or past ``cap``
    rows a seeded subsample (seed 0: the same rows for every trial of a table); float16 scores (probabilities, as
    evaluated: MCM-coherent on a hierarchy), boolean targets, the test row indices kept, and the per-label
    thresholds when tuned. None when ``cap`` is 0 (off).

    ``val``: (targets, probabilities) of the validation split, kept under the same cap as ``val_p`` / ``val_y`` /
    ``val_rows`` / ``n_val`` (the report chooses the post-hoc adjustment's tau on them, analysis/posthoc.py).
    ``stats``: the training split's ``train_count`` (n_j), ``n_train`` (N) and the hierarchy's ``edges``
    ((child, parent) label indices; empty when flat), which that adjustment needs."""
    if cap <= 0:
        return None
    rows = _capped_rows(len(y), cap)
    out = {
        "p": np.asarray(p)[rows].astype(np.float16),
        "y": np.asarray(y)[rows].astype(bool),
        "rows": rows.astype(np.int32),
        "n_test": np.int64(len(y)),
    }
    if thresholds is not None:
        out["thresholds"] = np.asarray(thresholds, dtype=np.float32)
    if val is not None:
        val_y, val_p = val
        vrows = _capped_rows(len(val_y), cap)
        out |= {
            "val_p": np.asarray(val_p)[vrows].astype(np.float16),
            "val_y": np.asarray(val_y)[vrows].astype(bool),
            "val_rows": vrows.astype(np.int32),
            "n_val": np.int64(len(val_y)),
        }
    if stats is not None:
        edges = [(c, q) for c, ps in enumerate(stats.parent_indices()) for q in ps]
        out |= {
            "train_count": np.asarray(stats.counts, dtype=np.int64),
            "n_train": np.int64(stats.n_train),
            "edges": np.asarray(edges, dtype=np.int32).reshape(-1, 2),
        }
    return out


def write_trial_artifacts(
    d: Path, cfg: TrialConfig, loss_fn, stats: LabelStats, val_rows, test_rows, rare_rows, predictions=None
) -> None:
    """The trial's tables, into the final checkpoint's ``artifacts/`` (the run's MLflow artifacts)."""
    d.mkdir(parents=True, exist_ok=True)
    if predictions is not None:
        np.savez_compressed(d / PREDICTIONS_FILE, **predictions)
    write_csv(d / "per_label_val.csv", val_rows)
    write_csv(d / "per_label_test.csv", test_rows)
    if rare_rows:
        write_csv(d / "rare_labels_test_predictions.csv", rare_rows)
    table = loss_fn.weight_table() if hasattr(loss_fn, "weight_table") else {}
    weights = {
        "scheme": cfg.scheme,
        "params": cfg.scheme_params,
        "labels": list(stats.labels),
        "train_count": [int(c) for c in stats.counts],
        **table,
    }
    (d / "weights.json").write_text(json.dumps(weights, indent=1))
    vectors = {k: v for k, v in table.items() if isinstance(v, list) and len(v) == stats.num_labels}
    if vectors and len(vectors) == sum(isinstance(v, list) for v in table.values()):
        rows = [
            {"label": label, "train_count": int(c), **{k: v[j] for k, v in vectors.items()}}
            for j, (label, c) in enumerate(zip(stats.labels, stats.counts, strict=True))
        ]
        write_csv(d / "weights.csv", rows)
