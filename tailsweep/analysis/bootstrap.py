"""The paired bootstrap over test rows: is setting B better than setting A on this multi-label test set?

Pure numpy/scipy (no Ray, no MLflow, no torch). Everything works on a *row-count matrix*: a resample is a multiset
of test rows, so resample ``b`` gives row ``i`` the integer weight ``W[b, i]`` (how often ``i`` was drawn), and
every metric here is the metric of the test set in which each row appears ``W[b, i]`` times. Both settings (and
all seeds) are scored on the same resamples (a paired bootstrap), so what the two have in common (hard rows, rare
labels that happen to be in the test set) cancels in the difference.

Metrics (``metric_fn(name, threshold=..., buckets=...)`` gives a ``f(y, p, idx) -> (B,)`` for each name):

- ``micro_auprc``: average precision of all (row, label) pairs pooled, sklearn's step-wise definition
  ``sum_k (R_k - R_{k-1}) * P_k`` over the distinct scores (tied scores form one step);
- ``macro_ap``: the mean, over the labels with a positive *in that resample*, of the per-label average precision;
- ``macro_f1``: the mean, over the labels with a positive in that resample, of the F1 at ``p >= threshold``
  (``threshold`` a float or one per label); a label with positives and no predictions scores 0;
- ``recall_<bucket>``, ``f1_<bucket>``: macro recall / F1 over the labels of a frequency bucket (``buckets`` maps
  ``"many"``, ``"medium"``, ``"few"`` -- or any other name -- to a boolean mask over the labels), again over the
  labels with a positive in the resample; NaN when the bucket has none.

How it is fast: the average precisions sort the scores once (all pairs for the micro one, each label's column
for the per-label ones) and turn the ranking into a sparse matrix ``D`` (test rows x "steps"): the weighted true
positives and the weighted number of pairs between two consecutive steps that hold a positive are ``W @ D``, and a
cumulative sum over the steps gives the precision at every step of every resample at once. Only the steps that
hold a positive add to the AP, so the work is one sparse product of (number of pairs) x (number of resamples)
multiply-adds plus a few passes over (positive steps) x (resamples); resamples go in chunks of ``CHUNK_BYTES`` of
working memory. The thresholded metrics are the products ``W @ (y & pred)``, ``W @ y``, ``W @ pred`` (sparse
unless targets and predictions are dense and the table is large; then BLAS).
Measured (B = 1000, one comparison = two settings, 2-core machine): 1,000 rows x 25 labels, all nine metrics,
about 0.3 s of CPU; 1,281 rows x 4,122 labels (an HMC GO set), micro AU(PRC) or macro AP about 5 s of CPU each,
below 1 GB of memory -- so there is no cap on the number of pairs.

What the CI covers: the variability from *which test rows were drawn* (the test set as a sample of the
population the rows come from), holding the trained models fixed. :func:`pooled_paired_bootstrap` averages the
difference over the paired training seeds, so training randomness enters only through those few seeds (the
statistic is the seed-mean difference); it is *not* a CI over training variance (that needs more seeds and a
CI across them, :func:`tailsweep.analysis.stats.mean_ci`).

Multiple comparisons (a report with ``m`` comparisons against one baseline): report :func:`holm`-adjusted
p-values, and CIs at the Bonferroni level ``1 - alpha / m`` (``paired_bootstrap(..., alpha=adjusted_alpha(alpha,
m))``). A Bonferroni CI that excludes 0 implies the Holm-adjusted p is below ``alpha`` (Holm rejects at least
what Bonferroni does), not always the other way round.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import sparse

from .._common import BUCKETS  # the usual frequency buckets (any name in ``buckets`` works)
from .stats import holm  # multiple comparisons: one definition, in stats

__all__ = [
    "BUCKETS",
    "CHUNK_BYTES",
    "METRIC_NAMES",
    "adjusted_alpha",
    "bucket_f1",
    "bucket_recall",
    "holm",
    "macro_ap",
    "macro_f1",
    "metric_fn",
    "metric_names",
    "micro_auprc",
    "paired_bootstrap",
    "per_label_ap",
    "per_label_ap_diff",
    "pooled_paired_bootstrap",
    "resample_indices",
]

CHUNK_BYTES = 16 * 2**20
"""Working memory of one chunk of resamples (bytes). Small chunks stay in cache and reuse their buffers (faster
than large ones, measured); the peak memory is then that of the inputs and of the one-off sorting, a few hundred
MB for 1,281 rows x 4,122 labels."""

METRIC_NAMES = ("micro_auprc", "macro_ap", "macro_f1")
"""The metrics that need no bucket; ``recall_<bucket>`` and ``f1_<bucket>`` need ``buckets``."""


Metric = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]


# ---------------------------------------------------------------------------------------------------- resampling


def resample_indices(n_rows: int, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """``(n_resamples, n_rows)`` int32 row indices drawn with replacement; use the same matrix for every setting
    and seed of a comparison (that is what makes the bootstrap paired)."""
    if n_rows < 1 or n_resamples < 1:
        raise ValueError(f"need n_rows >= 1 and n_resamples >= 1, got {n_rows}, {n_resamples}")
    return np.random.default_rng(seed).integers(0, n_rows, size=(n_resamples, n_rows), dtype=np.int32)


def _row_weights(idx: np.ndarray | None, n_rows: int) -> np.ndarray:
    """Row-count matrix of resample indices ``(B, n)``, transposed: ``(n_rows, B)`` float64, C order (the layout
    the sparse products want); None: the test set itself."""
    if idx is None:
        return np.ones((n_rows, 1))
    idx = np.asarray(idx)
    if idx.ndim == 1:
        idx = idx[None]
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx must be a 2-d integer array (resamples x rows), got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n_rows):
        raise ValueError(f"idx holds rows outside [0, {n_rows})")
    n_b = idx.shape[0]
    flat = (idx.astype(np.int64) * n_b + np.arange(n_b, dtype=np.int64)[:, None]).ravel()
    return np.bincount(flat, minlength=n_b * n_rows).reshape(n_rows, n_b).astype(np.float64)


def _inputs(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    p = np.asarray(p)
    if y.ndim != 2 or p.shape != y.shape:
        raise ValueError(f"y and p must be (rows, labels) of one shape, got {y.shape} and {p.shape}")
    if y.dtype != bool:
        y = y.astype(bool)
    return y, p.astype(np.float64)


def _chunks(n: int, per_item_bytes: float):
    step = max(1, int(CHUNK_BYTES // max(per_item_bytes, 1.0)))
    for lo in range(0, n, step):
        yield slice(lo, min(n, lo + step))


def _nanmean(a: np.ndarray, axis: int = 1) -> np.ndarray:
    ok = ~np.isnan(a)
    n = ok.sum(axis=axis)
    s = np.where(ok, a, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


# ------------------------------------------------------------------------------------------- average precision


class _Ranking:
    """Scores sorted once into ``segments`` (one for the micro AP, one per label for the per-label AP).

    ``rows``, ``scores``, ``targets``, ``segs``: one entry per (row, label) pair, sorted by segment and then by
    descending score. A *step* is a group of tied scores of one segment; only the steps that hold a positive add
    to the AP. For positive step ``k`` (in order), ``D[k, i]`` counts row ``i``'s positives in the step and
    ``D[K + k, i]`` row ``i``'s pairs ranked after positive step ``k - 1`` (of the same segment) up to step ``k``,
    so that ``W @ D.T`` gives, per resample, each positive step's weighted true positives and pairs.
    """

    def __init__(self, rows, scores, targets, segs, n_segs: int, n_rows: int):
        self.n_segs = n_segs
        m = len(scores)
        if m == 0 or not targets.any():
            self.k = 0
            return
        new = np.ones(m, dtype=bool)
        new[1:] = (segs[1:] != segs[:-1]) | (scores[1:] != scores[:-1])
        gid = np.cumsum(new) - 1
        gseg = segs[new]
        haspos = np.zeros(len(gseg), dtype=bool)
        haspos[gid[targets]] = True
        pos_steps = np.flatnonzero(haspos)
        k = len(pos_steps)
        first_pos_at_or_after = (np.cumsum(haspos) - haspos)[gid]
        valid = first_pos_at_or_after < k
        valid[valid] = gseg[pos_steps][first_pos_at_or_after[valid]] == segs[valid]
        r = np.concatenate([first_pos_at_or_after[targets], k + first_pos_at_or_after[valid]])
        c = np.concatenate([rows[targets], rows[valid]])
        self.d = sparse.csr_array((np.ones(len(r)), (r, c)), shape=(2 * k, n_rows))
        self.d.sum_duplicates()
        self.k = k
        self.present, self.starts = np.unique(gseg[pos_steps], return_index=True)

    def _segment_cumsum(self, a: np.ndarray, totals: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Cumulative sum of ``a`` (resamples x steps) along the steps, restarting at every segment, into
        ``out`` (may be ``a``); ``totals``: the segment sums of ``a``."""
        later = self.starts[1:]
        if len(later) and out is not a:
            a[:, later] -= totals[:, :-1]
            np.cumsum(a, axis=1, out=out)
            a[:, later] += totals[:, :-1]
        elif len(later):
            a[:, later] -= totals[:, :-1]
            np.cumsum(a, axis=1, out=out)
        else:
            np.cumsum(a, axis=1, out=out)
        return out

    def ap(self, wt: np.ndarray) -> np.ndarray:
        """``(B, n_segs)`` average precision of every segment on every resample of the row weights ``wt`` (rows x
        resamples); NaN where the segment has no (weighted) positive."""
        n_b = wt.shape[1]
        out = np.full((n_b, self.n_segs), np.nan)
        k = self.k
        if k == 0:
            return out
        step = max(1, int(CHUNK_BYTES // (5 * 8 * k)))
        steps = np.empty((min(step, n_b), 2 * k))  # per resample: positives, then pairs, of each step
        tp = np.empty((steps.shape[0], k))
        for lo in range(0, n_b, step):
            b = min(step, n_b - lo)
            x, t = steps[:b], tp[:b]
            np.copyto(x, (self.d @ np.ascontiguousarray(wt[:, lo : lo + b])).T)
            dtp, dn = x[:, :k], x[:, k:]
            tp_tot = np.add.reduceat(dtp, self.starts, axis=1)
            self._segment_cumsum(dtp, tp_tot, t)
            self._segment_cumsum(dn, np.add.reduceat(dn, self.starts, axis=1), dn)  # dn: pairs so far
            np.multiply(t, dtp, out=t)  # where no pair was drawn no positive was either: the gain is 0 already
            np.divide(t, dn, out=t, where=dn > 0)
            num = np.add.reduceat(t, self.starts, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[lo : lo + b, self.present] = np.where(tp_tot > 0, num / tp_tot, np.nan)
        return out


def _micro_ranking(y: np.ndarray, p: np.ndarray) -> _Ranking:
    n, c = y.shape
    flat = p.ravel()
    order = np.argsort(-flat)  # the order within ties does not matter
    return _Ranking(order // c, flat[order], y.ravel()[order], np.zeros(len(order), dtype=np.int8), 1, n)


def _label_ranking(y: np.ndarray, p: np.ndarray) -> _Ranking:
    n, c = y.shape
    order = np.argsort(-p, axis=0)
    scores = np.take_along_axis(p, order, axis=0).T.ravel()
    targets = np.take_along_axis(y, order, axis=0).T.ravel()
    segs = np.repeat(np.arange(c), n)
    return _Ranking(order.T.ravel(), scores, targets, segs, c, n)


def micro_auprc(y, p, idx=None) -> np.ndarray:
    """``(B,)`` micro average precision (all (row, label) pairs pooled) on each resample of ``idx`` (``(B, n)``
    row indices; None or ``np.arange(N)[None]``: the test set itself)."""
    y, p = _inputs(y, p)
    return _micro_ranking(y, p).ap(_row_weights(idx, y.shape[0]))[:, 0]


def per_label_ap(y, p, idx=None) -> np.ndarray:
    """``(B, C)`` average precision of each label on each resample; NaN where the label has no positive."""
    y, p = _inputs(y, p)
    return _label_ranking(y, p).ap(_row_weights(idx, y.shape[0]))


def macro_ap(y, p, idx=None) -> np.ndarray:
    """``(B,)`` mean per-label AP over the labels with a positive in the resample (NaN if none)."""
    return _nanmean(per_label_ap(y, p, idx))


# ------------------------------------------------------------------------------------------ thresholded metrics


def _counts(y: np.ndarray, p: np.ndarray, wt: np.ndarray, threshold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted true positives, positives and predictions per resample and label, each ``(B, C)``."""
    thr = np.asarray(threshold, dtype=np.float64)
    if thr.ndim not in (0, 1) or (thr.ndim == 1 and thr.shape[0] != y.shape[1]):
        raise ValueError(f"threshold must be a float or one per label ({y.shape[1]}), got shape {thr.shape}")
    pred = p >= thr
    c = y.shape[1]
    mats = np.concatenate([y & pred, y, pred], axis=1)
    n_b = wt.shape[1]
    out = np.empty((n_b, 3 * c))
    if mats.mean() < 0.3 or mats.size * n_b < 2**26:
        # mostly: sparse targets (and predictions), or small: the sparse product is cheaper than BLAS set-up
        mt = sparse.csr_array(mats.T.astype(np.float64))
        for sl in _chunks(n_b, 8 * 4 * c):
            np.copyto(out[sl], (mt @ np.ascontiguousarray(wt[:, sl])).T)
    else:
        mats = mats.astype(np.float64)
        for sl in _chunks(n_b, 8 * 3 * c):
            out[sl] = wt[:, sl].T @ mats
    return out[:, :c], out[:, c : 2 * c], out[:, 2 * c :]


def _f1(tp, pos, npred, mask=None) -> np.ndarray:
    keep = pos > 0 if mask is None else (pos > 0) & mask
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(keep, 2 * tp / np.maximum(pos + npred, 1e-300), np.nan)
    return _nanmean(f1)


def _recall(tp, pos, mask) -> np.ndarray:
    keep = (pos > 0) & mask
    with np.errstate(invalid="ignore", divide="ignore"):
        rec = np.where(keep, tp / np.maximum(pos, 1e-300), np.nan)
    return _nanmean(rec)


def _mask(mask, n_labels: int) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (n_labels,):
        raise ValueError(f"a bucket mask must be ({n_labels},) booleans, got {mask.shape}")
    return mask


def macro_f1(y, p, idx=None, threshold=0.5) -> np.ndarray:
    """``(B,)`` mean F1 at ``p >= threshold`` over the labels with a positive in the resample."""
    y, p = _inputs(y, p)
    return _f1(*_counts(y, p, _row_weights(idx, y.shape[0]), threshold))


def bucket_recall(y, p, idx=None, threshold=0.5, mask=None) -> np.ndarray:
    """``(B,)`` macro recall over the labels of ``mask`` (``(C,)`` bool) with a positive in the resample; NaN
    when there is none."""
    y, p = _inputs(y, p)
    tp, pos, _ = _counts(y, p, _row_weights(idx, y.shape[0]), threshold)
    return _recall(tp, pos, _mask(mask, y.shape[1]))


def bucket_f1(y, p, idx=None, threshold=0.5, mask=None) -> np.ndarray:
    """``(B,)`` macro F1 over the labels of ``mask`` (``(C,)`` bool) with a positive in the resample; NaN when
    there is none."""
    y, p = _inputs(y, p)
    tp, pos, npred = _counts(y, p, _row_weights(idx, y.shape[0]), threshold)
    return _f1(tp, pos, npred, _mask(mask, y.shape[1]))


# ------------------------------------------------------------------------------------------------ metric names


def _parse(name: str, buckets: Mapping[str, np.ndarray] | None) -> tuple[str, str | None]:
    if name in METRIC_NAMES:
        return name, None
    for kind in ("recall", "f1"):
        if name.startswith(kind + "_"):
            bucket = name[len(kind) + 1 :]
            if not buckets or bucket not in buckets:
                raise ValueError(f"metric {name!r} needs buckets[{bucket!r}] (a boolean mask over the labels)")
            return kind, bucket
    raise ValueError(f"unknown metric {name!r}: one of {', '.join(METRIC_NAMES)}, recall_<bucket>, f1_<bucket>")


def metric_names(buckets: Mapping[str, np.ndarray] | None = None) -> list[str]:
    """Every metric name available with these buckets, in report order."""
    names = list(METRIC_NAMES)
    for b in buckets or {}:
        names += [f"recall_{b}", f"f1_{b}"]
    return names


def metric_fn(name: str, threshold=0.5, buckets: Mapping[str, np.ndarray] | None = None) -> Metric:
    """The metric ``name`` as ``f(y, p, idx) -> (B,)`` (see the module docstring for the names)."""
    kind, bucket = _parse(name, buckets)
    if kind == "micro_auprc":
        return micro_auprc
    if kind == "macro_ap":
        return macro_ap
    if kind == "macro_f1":
        return lambda y, p, idx=None: macro_f1(y, p, idx, threshold)
    mask = buckets[bucket]
    if kind == "recall":
        return lambda y, p, idx=None: bucket_recall(y, p, idx, threshold, mask)
    return lambda y, p, idx=None: bucket_f1(y, p, idx, threshold, mask)


def _evaluate(y, p, wt, names, threshold, buckets) -> dict[str, np.ndarray]:
    """Every metric of ``names`` on the row weights ``wt`` (rows x resamples), sharing the ranking and the counts."""
    y, p = _inputs(y, p)
    parsed = {name: _parse(name, buckets) for name in names}
    out: dict[str, np.ndarray] = {}
    counts = None
    for name, (kind, bucket) in parsed.items():
        if kind == "micro_auprc":
            out[name] = _micro_ranking(y, p).ap(wt)[:, 0]
        elif kind == "macro_ap":
            out[name] = _nanmean(_label_ranking(y, p).ap(wt))
        else:
            if counts is None:
                counts = _counts(y, p, wt, threshold)
            tp, pos, npred = counts
            mask = None if bucket is None else _mask(buckets[bucket], y.shape[1])
            out[name] = _recall(tp, pos, mask) if kind == "recall" else _f1(tp, pos, npred, mask)
    return out


# ------------------------------------------------------------------------------------------------- comparisons


def _as_seeds(p) -> dict[int, np.ndarray]:
    return dict(p) if isinstance(p, Mapping) else {0: p}


def _summary(observed: float, d: np.ndarray, alpha: float) -> dict[str, float]:
    d = d[~np.isnan(d)]
    n = len(d)
    if n == 0 or np.isnan(observed):
        return {
            "diff": float(observed),
            "low": np.nan,
            "high": np.nan,
            "se": np.nan,
            "p_value": np.nan,
            "n_resamples": n,
        }
    low, high = np.percentile(d, [50 * alpha, 100 - 50 * alpha])
    le, ge = int((d <= 0).sum()), int((d >= 0).sum())
    p_value = min(1.0, 2 * (min(le, ge) + 1) / (n + 1))
    return {
        "diff": float(observed),
        "low": float(low),
        "high": float(high),
        "se": float(d.std(ddof=1)) if n > 1 else np.nan,
        "p_value": p_value,
        "n_resamples": n,
    }


def pooled_paired_bootstrap(
    y,
    base_by_seed: Mapping[int, np.ndarray],
    other_by_seed: Mapping[int, np.ndarray],
    metrics: Sequence[str],
    idx: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    threshold=0.5,
    buckets: Mapping[str, np.ndarray] | None = None,
    alpha: float = 0.05,
    base_cache: dict | None = None,
) -> dict[str, dict]:
    """Paired bootstrap of the seed-mean difference ``other - base`` of each metric.

    Seeds are paired (only the seeds in both mappings count). On each resample of test rows (the same rows for
    every seed and both settings) the statistic is ``mean over paired seeds of metric(other[s]) - metric(base[s])``;
    ``diff`` is that statistic on the full test set.

    The CI covers the sampling of the test rows with the models held fixed; training randomness enters only
    through the pooled seeds (the mean over them), so this is not a CI over training variance.

    ``idx``: ``(B, N)`` resample row indices (default: :func:`resample_indices` with ``n_resamples``, ``seed``).
    ``threshold``: for ``macro_f1`` and the buckets (a float or one per label). ``buckets``: name -> ``(C,)``
    bool mask, for ``recall_<name>`` and ``f1_<name>``.

    Returns, per metric: ``diff``, ``low``/``high`` (percentile CI at level ``1 - alpha``; for ``m`` comparisons
    pass ``alpha=adjusted_alpha(alpha, m)``, the Bonferroni level), ``se`` (standard deviation of the resampled
    differences), ``p_value`` (two-sided, ``2 * min(#{d <= 0} + 1, #{d >= 0} + 1) / (B + 1)`` clipped to 1: the
    usual +1 correction, so never below ``2 / (B + 1)``), ``n_resamples`` (resamples where the metric is defined),
    ``base``/``other`` (the seed-mean metric values on the full test set) and ``seeds``. Resamples where the
    metric is undefined (a bucket without positives) are left out; all undefined: NaN.

    ``base_cache``: a dict kept by the caller across the comparisons of several settings against one baseline
    (the same ``y``, ``base_by_seed``, resamples, metrics, threshold and buckets in every call): the baseline's
    metrics on the resamples are computed once per seed instead of once per comparison.
    """
    base_by_seed, other_by_seed = _as_seeds(base_by_seed), _as_seeds(other_by_seed)
    seeds = sorted(set(base_by_seed) & set(other_by_seed))
    if not seeds:
        raise ValueError("no seed is present for both settings")
    y = np.asarray(y)
    n = y.shape[0]
    names = list(metrics)
    for name in names:
        _parse(name, buckets)
    if idx is None:
        idx = resample_indices(n, n_resamples, seed)
    wt = np.hstack([np.ones((n, 1)), _row_weights(idx, n)])  # column 0: the full test set
    diffs = {name: np.zeros(wt.shape[1]) for name in names}
    base_vals = dict.fromkeys(names, 0.0)
    other_vals = dict.fromkeys(names, 0.0)
    cache = {} if base_cache is None else base_cache
    for s in seeds:
        key = (s, tuple(names), idx.shape)
        if key not in cache:
            cache[key] = _evaluate(y, base_by_seed[s], wt, names, threshold, buckets)
        vb = cache[key]
        vo = _evaluate(y, other_by_seed[s], wt, names, threshold, buckets)
        for name in names:
            diffs[name] += (vo[name] - vb[name]) / len(seeds)
            base_vals[name] += vb[name][0] / len(seeds)
            other_vals[name] += vo[name][0] / len(seeds)
    out = {}
    for name in names:
        out[name] = _summary(diffs[name][0], diffs[name][1:], alpha)
        out[name].update(base=float(base_vals[name]), other=float(other_vals[name]), seeds=seeds)
    return out


def paired_bootstrap(
    y,
    p_base,
    p_other,
    metrics: Sequence[str],
    idx: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    threshold=0.5,
    buckets: Mapping[str, np.ndarray] | None = None,
    alpha: float = 0.05,
) -> dict[str, dict]:
    """Paired bootstrap of ``metric(p_other) - metric(p_base)`` over test rows, one seed each (see
    :func:`pooled_paired_bootstrap` for the arguments, the result and what the CI covers)."""
    return pooled_paired_bootstrap(
        y,
        {0: p_base},
        {0: p_other},
        metrics,
        idx=idx,
        n_resamples=n_resamples,
        seed=seed,
        threshold=threshold,
        buckets=buckets,
        alpha=alpha,
    )


def per_label_ap_diff(
    y,
    p_base_by_seed,
    p_other_by_seed,
    idx: np.ndarray | None = None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-label AP difference ``other - base`` (mean over the paired seeds) and its percentile CI per label.

    Returns ``(diff, low, high)``, each ``(C,)``. A resample without a positive of a label gives that label NaN,
    left out of its CI (``nanpercentile``); a label without test positives is NaN throughout. The CI covers the
    sampling of the test rows (see :func:`pooled_paired_bootstrap`); a single array is taken as one seed.
    """
    base_by_seed, other_by_seed = _as_seeds(p_base_by_seed), _as_seeds(p_other_by_seed)
    seeds = sorted(set(base_by_seed) & set(other_by_seed))
    if not seeds:
        raise ValueError("no seed is present for both settings")
    y = np.asarray(y).astype(bool)
    n = y.shape[0]
    if idx is None:
        idx = resample_indices(n, n_resamples, seed)
    wt = np.hstack([np.ones((n, 1)), _row_weights(idx, n)])
    d = np.zeros((wt.shape[1], y.shape[1]))
    for s in seeds:
        _, pb = _inputs(y, base_by_seed[s])
        _, po = _inputs(y, other_by_seed[s])
        d += (_label_ranking(y, po).ap(wt) - _label_ranking(y, pb).ap(wt)) / len(seeds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: labels without test positives
        low, high = np.nanpercentile(d[1:], [50 * alpha, 100 - 50 * alpha], axis=0)
    return d[0], low, high


# ------------------------------------------------------------------------------------------ multiple comparisons


def adjusted_alpha(alpha: float, m: int) -> float:
    """The Bonferroni level for ``m`` comparisons, ``alpha / m``: CIs at ``1 - alpha / m`` hold jointly with
    probability at least ``1 - alpha``."""
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    return alpha / m
