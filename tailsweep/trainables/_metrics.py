"""Evaluation metrics of docs/methods.md section 3, on the full eval split.

Two macro conventions are reported and named:

- ``macro_*``: over labels with at least one positive in the eval split (the usual convention);
- ``macro_*_allnodes``: over *all* labels, a label with no positives and no predictions scoring 0
  (the second seed's, Xu et al., convention).
"""

from __future__ import annotations

import numpy as np

from ..datasets import BUCKETS, LabelStats

THRESHOLD = 0.5


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision of one label (sklearn's step-wise definition, ties grouped).

    NaN when ``y`` has no positives.
    """
    y = np.asarray(y).ravel().astype(np.float64)
    p = np.asarray(p).ravel()
    npos = y.sum()
    if npos == 0:
        return float("nan")
    order = np.argsort(-p, kind="mergesort")
    p_sorted, y_sorted = p[order], y[order]
    # last index of every group of tied scores = a distinct threshold
    distinct = np.flatnonzero(np.diff(p_sorted)) if len(p_sorted) > 1 else np.array([], dtype=int)
    ends = np.r_[distinct, len(p_sorted) - 1]
    tp = np.cumsum(y_sorted)[ends]
    precision = tp / (ends + 1)
    recall = tp / npos
    recall_prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - recall_prev) * precision))


def tune_thresholds(y: np.ndarray, p: np.ndarray, default: float = THRESHOLD) -> np.ndarray:
    """Per-label thresholds that maximise each label's F1 on (``y``, ``p``) -- the validation split.

    For label j the candidates are its distinct scores: predicting ``p >= t`` for t the k-th highest score gives
    F1 = 2 TP / (k + n_pos). Ties of F1 go to the highest threshold (the fewest predictions). A label without a
    positive here keeps ``default`` (nothing to tune on). Vectorised over labels (one sort of each column).
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    n, c = p.shape
    out = np.full(c, default, dtype=np.float64)
    if n == 0:
        return out
    order = np.argsort(-p, axis=0, kind="stable")
    ps = np.take_along_axis(p, order, 0)
    tp = np.cumsum(np.take_along_axis(y, order, 0), axis=0)
    npos = y.sum(0)
    k = np.arange(1, n + 1)[:, None]
    f1 = 2 * tp / (k + npos[None, :])
    last_of_tie = np.ones_like(ps, dtype=bool)
    last_of_tie[:-1] = ps[:-1] != ps[1:]  # a threshold predicts every row tied at it
    f1 = np.where(last_of_tie, f1, -1.0)
    best = np.argmax(f1, axis=0)  # the first maximum: the highest threshold among equal F1
    has = npos > 0
    out[has] = ps[best, np.arange(c)][has]
    return out


def predicted(p: np.ndarray, threshold, closure=None) -> np.ndarray:
    """``p >= threshold`` (a number or one per label); with ``closure`` (a label x label 0/1 matrix, row j = j and
    its ancestors) closed upward, so that per-label thresholds on a hierarchy keep every prediction coherent
    (a predicted node's ancestors are predicted)."""
    pred = np.asarray(p) >= threshold
    if closure is None:
        return pred
    import scipy.sparse as sp

    return np.asarray((sp.csr_matrix(pred.astype(np.float32)) @ sp.csr_matrix(closure)).todense() > 0)


def per_label_scores(y: np.ndarray, p: np.ndarray, threshold: float = THRESHOLD, pred=None) -> dict[str, np.ndarray]:
    """Per-label AP, precision, recall, F1 (threshold ``threshold``, or the given predictions ``pred``),
    positives and predictions."""
    y = y.astype(bool)
    pred = p >= threshold if pred is None else pred
    tp = (pred & y).sum(0).astype(np.float64)
    npred = pred.sum(0).astype(np.float64)
    npos = y.sum(0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(npred > 0, tp / npred, 0.0)
        recall = np.where(npos > 0, tp / npos, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    ap = np.array([average_precision(y[:, j], p[:, j]) for j in range(y.shape[1])])
    return {"ap": ap, "precision": precision, "recall": recall, "f1": f1, "positives": npos, "predicted": npred}


def _mean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else float("nan")


def compute_metrics(
    y: np.ndarray, p: np.ndarray, stats: LabelStats, threshold=THRESHOLD, closure=None
) -> tuple[dict[str, float], list[dict]]:
    """All headline metrics and the per-label table.

    Args:
        y: targets (N, C) in {0, 1}.
        p: probabilities (N, C).
        stats: training-split statistics (for frequency buckets and depths).
        threshold: one number, or one per label (:func:`tune_thresholds`).
        closure: a hierarchy's ancestor closure: predictions closed upward (:func:`predicted`).

    Returns:
        (metrics, per_label_rows).
    """
    y = np.asarray(y).astype(np.int8)
    p = np.asarray(p, dtype=np.float64)
    pred = predicted(p, threshold, closure)
    s = per_label_scores(y, p, pred=pred)
    has_pos = s["positives"] > 0
    tp, npred, npos = (pred & (y > 0)).sum(), pred.sum(), y.sum()
    micro_p = tp / npred if npred else 0.0
    micro_r = tp / npos if npos else 0.0
    m: dict[str, float] = {
        # Same definition as sklearn's average_precision_score (tested equal, ties included), which
        # C-HMCNN uses; computed here because importing sklearn.metrics costs each trial's worker 1-2 s.
        "micro_auprc": average_precision(y.ravel(), p.ravel()),
        "macro_ap": _mean(s["ap"][has_pos]),
        "micro_f1": float(2 * micro_p * micro_r / (micro_p + micro_r)) if micro_p + micro_r else 0.0,
    }
    for k in ("precision", "recall", "f1"):
        m[f"macro_{k}"] = _mean(s[k][has_pos])
        m[f"macro_{k}_allnodes"] = float(s[k].mean()) if len(s[k]) else float("nan")
    buckets = np.array(stats.buckets)
    for b in BUCKETS:
        sel = (buckets == b) & has_pos
        m[f"recall_{b}"] = _mean(s["recall"][sel])
        m[f"f1_{b}"] = _mean(s["f1"][sel])
        m[f"ap_{b}"] = _mean(s["ap"][sel])
    if stats.depths.max(initial=1) > 1:  # per-depth recall (depth 1 = top level)
        for d in np.unique(stats.depths):
            m[f"recall_depth{int(d)}"] = _mean(s["recall"][(stats.depths == d) & has_pos])
    rows = [
        {
            "label": stats.labels[j],
            "depth": int(stats.depths[j]),
            "train_count": int(stats.counts[j]),
            "bucket": stats.buckets[j],
            "positives": int(s["positives"][j]),
            "predicted": int(s["predicted"][j]),
            "ap": float(s["ap"][j]),
            "precision": float(s["precision"][j]),
            "recall": float(s["recall"][j]),
            "f1": float(s["f1"][j]),
        }
        for j in range(y.shape[1])
    ]
    return m, rows


THRESHOLD_METRICS = (
    "micro_f1",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "macro_precision_allnodes",
    "macro_recall_allnodes",
    "macro_f1_allnodes",
)  # and recall_* / f1_* per bucket and depth


def threshold_dependent(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics a threshold changes (not the AP family): what ``eval.thresholds: per_label`` logs again."""
    return {k: v for k, v in metrics.items() if k in THRESHOLD_METRICS or k.startswith(("recall_", "f1_"))}
