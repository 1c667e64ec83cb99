"""Every statistic the reports use, once: the Student-t interval over seeds, the paired Wilcoxon signed-rank test
over seeds, Friedman's test across datasets with its tie correction and Nemenyi's critical difference (Demsar,
JMLR 2006), Holm's step-down adjustment, and the paired bootstrap over test rows (:mod:`.bootstrap`)."""

from __future__ import annotations

import math

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
