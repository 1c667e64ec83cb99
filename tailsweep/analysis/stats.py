"""Every statistic the reports use, once: the seeds' spread (mean, min-max), the Student-t interval over seeds
(:func:`mean_ci`; the reports show the spread instead, see :func:`seed_spread`), the paired Wilcoxon signed-rank
test over seeds, Friedman's test across datasets with its tie correction and Nemenyi's critical difference
(Demsar, JMLR 2006), Holm's step-down adjustment, and the paired bootstrap over test rows (:mod:`.bootstrap`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_ci(values: list[float]) -> tuple[float, float, float, int]:
    """(mean, std, half-width of the 95 % t interval, n); NaNs for no values."""
    from scipy.stats import t as student

    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=np.float64)
    if len(v) == 0:
        return math.nan, math.nan, math.nan, 0
    if len(v) == 1:
        return float(v[0]), math.nan, math.nan, 1
    sd = float(v.std(ddof=1))
    return float(v.mean()), sd, float(student.ppf(0.975, len(v) - 1) * sd / math.sqrt(len(v))), len(v)


def seed_spread(values: list[float]) -> tuple[float, float, float, int]:
    """(mean, min, max, n) over seeds; NaNs for no values. With two or three seeds a Student-t interval is
    wider than the metric's domain allows (it assumes normal seeds and leans on few of them; two seeds of micro
    AU(PRC) gave [0.842, 1.022]): the reports show this range and lead with the paired bootstrap instead."""
    v = [x for x in values if x is not None and not math.isnan(x)]
    if not v:
        return math.nan, math.nan, math.nan, 0
    return float(np.mean(v)), float(min(v)), float(max(v)), len(v)


def fmt_spread(values: list[float]) -> str:
    """The seeds as "mean (min–max)" (:func:`seed_spread`); "mean (1 seed)"; "-" for none."""
    mean, low, high, n = seed_spread(values)
    if n == 0:
        return "-"
    if n == 1:
        return f"{mean:.3f} (1 seed)"
    return f"{mean:.3f} ({low:.3f}–{high:.3f})"


def paired_wilcoxon(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, int]:
    """(mean difference b - a, two-sided p, pairs) over seeds present in both; p NaN if undefined."""
    from scipy.stats import wilcoxon

    seeds = sorted(set(a) & set(b))
    diffs = np.array([b[s] - a[s] for s in seeds])
    if len(seeds) < 2 or not np.any(diffs):
        return (float(diffs.mean()) if len(diffs) else math.nan), math.nan, len(seeds)
    return float(diffs.mean()), float(wilcoxon(diffs).pvalue), len(seeds)


def friedman(ranks: np.ndarray) -> tuple[float, float]:
    """Friedman's chi-square over an (N datasets x k schemes) table of within-row ranks (ties share the mean
    rank), with the tie correction -- chi2 / (1 - sum over rows and tie groups of (t^3 - t) / (N k (k^2 - 1)))
    -- as ``scipy.stats.friedmanchisquare`` computes it (which needs k >= 3; this also serves k = 2)."""
    from scipy.stats import chi2

    n, k = ranks.shape
    avg = ranks.mean(0)
    stat = 12 * n / (k * (k + 1)) * (np.sum(avg**2) - k * (k + 1) ** 2 / 4)
    ties = sum(float(t**3 - t) for row in ranks for t in np.unique(row, return_counts=True)[1])
    correction = 1 - ties / (n * k * (k * k - 1))
    stat = stat / correction if correction > 0 else 0.0  # every row all tied: no evidence either way
    return float(stat), float(chi2.sf(stat, k - 1))


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference of average ranks for ``k`` schemes on ``n`` datasets:
    q_alpha sqrt(k (k + 1) / (6 n)), q_alpha the studentised range quantile over sqrt(2)."""
    from scipy.stats import studentized_range

    q = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order: the ``i``-th smallest becomes
    ``max_{j <= i} (m - j + 1) p_(j)``, clipped to 1 (monotone in the raw p). NaN stays NaN and does not count
    in ``m``."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m:
        order = np.argsort(q, kind="stable")
        adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
        res = np.empty(m)
        res[order] = adj
        out[ok] = res
    return out.tolist()
