"""The paired bootstrap over test rows (tailsweep.analysis.bootstrap): the vectorised metrics against direct
computations, a case worked by hand, weights as duplicated rows, A/A, coverage, Holm, pooled seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from tailsweep.analysis import bootstrap as bs


def synthetic(n=200, c=6, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    prev = np.linspace(0.5, 0.05, c)
    y = rng.random((n, c)) < prev
    y[0] = True  # every label has a positive
    p = 1 / (1 + np.exp(-(1.5 * y + rng.normal(size=(n, c)) - 1)))
    if ties:
        p = np.round(p, 1)
    return y, p


def buckets_for(c):
    lab = np.arange(c)
    return {"many": lab < c // 3, "medium": (lab >= c // 3) & (lab < 2 * c // 3), "few": lab >= 2 * c // 3}


def macro_f1_direct(y, p, thr):
    pred = p >= thr
    f1s = []
    for j in range(y.shape[1]):
        tp = int((y[:, j] & pred[:, j]).sum())
        fp = int((~y[:, j] & pred[:, j]).sum())
        fn = int((y[:, j] & ~pred[:, j]).sum())
        if tp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


# ------------------------------------------------------------------------------------------ metrics, plain value


def test_resample_indices_shape_dtype_range_and_seed():
    idx = bs.resample_indices(50, 20, seed=3)
    assert idx.shape == (20, 50) and idx.dtype == np.int32
    assert idx.min() >= 0 and idx.max() < 50
    assert np.array_equal(idx, bs.resample_indices(50, 20, seed=3))
    assert not np.array_equal(idx, bs.resample_indices(50, 20, seed=4))
    with pytest.raises(ValueError):
        bs.resample_indices(0, 10)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_average_precisions_match_sklearn(ties, seed):
    y, p = synthetic(n=150, c=7, seed=seed, ties=ties)
    ident = np.arange(len(y))[None]
    assert bs.micro_auprc(y, p, ident)[0] == pytest.approx(average_precision_score(y.ravel(), p.ravel()), abs=1e-12)
    per_label = bs.per_label_ap(y, p, ident)[0]
    expected = [average_precision_score(y[:, j], p[:, j]) for j in range(y.shape[1])]
    np.testing.assert_allclose(per_label, expected, atol=1e-12)
    assert bs.macro_ap(y, p, ident)[0] == pytest.approx(np.mean(expected), abs=1e-12)


def test_heavy_ties_and_float16_scores():
    rng = np.random.default_rng(5)
    y = rng.random((300, 5)) < 0.3
    p = (rng.integers(0, 4, size=(300, 5)) / 4 + 0.2 * y).astype(np.float16)  # few distinct values
    p32 = p.astype(np.float32)
    assert bs.micro_auprc(y, p)[0] == pytest.approx(average_precision_score(y.ravel(), p32.ravel()), abs=1e-12)
    expected = [average_precision_score(y[:, j], p32[:, j]) for j in range(5)]
    np.testing.assert_allclose(bs.per_label_ap(y, p)[0], expected, atol=1e-12)
    # all scores equal: AP = prevalence
    flat = np.full((40, 2), 0.5)
    yy = np.zeros((40, 2), dtype=bool)
    yy[:10, 0] = True
    assert bs.micro_auprc(yy, flat)[0] == pytest.approx(10 / 80)


def test_identity_idx_forms_agree():
    y, p = synthetic(n=60, c=4, seed=3)
    for name in bs.metric_names(buckets_for(4)):
        f = bs.metric_fn(name, threshold=0.5, buckets=buckets_for(4))
        a = f(y, p, None)
        assert a.shape == (1,)
        np.testing.assert_array_equal(a, f(y, p, np.arange(60)[None]))
        np.testing.assert_array_equal(a, f(y, p, np.arange(60)))


def test_macro_ap_skips_labels_without_positives():
    y, p = synthetic(n=80, c=4, seed=1)
    y[:, 2] = False
    per_label = bs.per_label_ap(y, p)[0]
    assert np.isnan(per_label[2])
    expected = [average_precision_score(y[:, j], p[:, j]) for j in (0, 1, 3)]
    assert bs.macro_ap(y, p)[0] == pytest.approx(np.mean(expected), abs=1e-12)
    assert np.isnan(bs.micro_auprc(np.zeros((5, 2), bool), np.random.default_rng(0).random((5, 2)))[0])


def test_macro_f1_matches_hand_computation():
    y, p = synthetic(n=120, c=5, seed=2)
    y[:, 4] = False  # no positives: not averaged
    for thr in (0.5, 0.3, np.array([0.2, 0.4, 0.5, 0.6, 0.7])):
        assert bs.macro_f1(y, p, None, thr)[0] == pytest.approx(macro_f1_direct(y, p, thr), abs=1e-12)
    # positives but no predictions: F1 0
    yy = np.array([[1, 1], [0, 1], [1, 0]], dtype=bool)
    pp = np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.1]])
    assert bs.macro_f1(yy, pp, None, 0.5)[0] == pytest.approx((0 + 2 * 2 / (2 * 2 + 0 + 0)) / 2)
    with pytest.raises(ValueError):
        bs.macro_f1(y, p, None, np.array([0.5, 0.5]))


def test_bucket_metrics_by_hand():
    # label 0: 2 positives, 1 found; label 1: 1 positive found + 1 false positive; label 2: no positive
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=bool)
    p = np.array([[0.9, 0.1, 0.1], [0.2, 0.8, 0.1], [0.1, 0.7, 0.9], [0.1, 0.1, 0.1]])
    both = np.array([True, True, False])
    assert bs.bucket_recall(y, p, None, 0.5, both)[0] == pytest.approx((1 / 2 + 1) / 2)
    assert bs.bucket_f1(y, p, None, 0.5, both)[0] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert bs.bucket_f1(y, p, None, 0.5, np.array([True, False, True]))[0] == pytest.approx(2 / 3)
    assert np.isnan(bs.bucket_recall(y, p, None, 0.5, np.array([False, False, True]))[0])
    assert np.isnan(bs.bucket_f1(y, p, None, 0.5, np.zeros(3, bool))[0])
    f = bs.metric_fn("recall_tail", threshold=0.5, buckets={"tail": both})
    assert f(y, p, None)[0] == pytest.approx(0.75)


def test_metric_names_and_errors():
    b = buckets_for(6)
    assert bs.metric_names(b) == [
        "micro_auprc",
        "macro_ap",
        "macro_f1",
        "recall_many",
        "f1_many",
        "recall_medium",
        "f1_medium",
        "recall_few",
        "f1_few",
    ]
    with pytest.raises(ValueError, match="unknown metric"):
        bs.metric_fn("accuracy")
    with pytest.raises(ValueError, match="needs buckets"):
        bs.metric_fn("recall_few")
    y, p = synthetic(n=20, c=3)
    with pytest.raises(ValueError):
        bs.paired_bootstrap(y, p, p, ["f1_many"], n_resamples=5)
    with pytest.raises(ValueError):
        bs.micro_auprc(y, p[:, :2])
    with pytest.raises(ValueError):
        bs.micro_auprc(y, p, np.array([[0, 20]]))


# ----------------------------------------------------------------------------------------------- resamples


def test_tiny_case_by_hand():
    y = np.array([[1], [0], [1], [0]], dtype=bool)
    base = np.array([[0.9], [0.8], [0.3], [0.1]])  # + - + -  -> AP 1/2 * 1 + 1/2 * 2/3 = 5/6
    other = np.array([[0.9], [0.2], [0.8], [0.1]])  # + + - -  -> AP 1
    idx = np.array(
        [
            [0, 0, 1, 2],  # weights 2, 1, 1, 0: base AP 2/3 * 1 + 1/3 * 3/4 = 11/12; other 1
            [1, 3, 3, 2],
        ]
    )  # weights 0, 1, 1, 2: base AP 1/2; other 1
    np.testing.assert_allclose(bs.micro_auprc(y, base, idx), [11 / 12, 1 / 2])
    np.testing.assert_allclose(bs.macro_ap(y, base, idx), [11 / 12, 1 / 2])
    np.testing.assert_allclose(bs.micro_auprc(y, other, idx), [1, 1])
    # F1 at 0.5: base predicts rows 0, 1 -> resample 0: tp 2, fp 1, fn 1 -> 4/6; resample 1: tp 0 -> 0
    np.testing.assert_allclose(bs.macro_f1(y, base, idx, 0.5), [2 / 3, 0])
    res = bs.paired_bootstrap(y, base, other, ["micro_auprc", "macro_f1"], idx=idx, alpha=0.5)
    r = res["micro_auprc"]
    d = np.array([1 / 12, 1 / 2])
    assert r["diff"] == pytest.approx(1 / 6)
    assert r["base"] == pytest.approx(5 / 6) and r["other"] == pytest.approx(1)
    assert r["low"] == pytest.approx(np.percentile(d, 25)) and r["high"] == pytest.approx(np.percentile(d, 75))
    assert r["low"] == pytest.approx(1 / 12 + 0.25 * (1 / 2 - 1 / 12))
    assert r["se"] == pytest.approx((1 / 2 - 1 / 12) / math.sqrt(2))
    assert r["p_value"] == pytest.approx(2 * (0 + 1) / (2 + 1))  # no resample <= 0: 2 * 1/3
    assert r["n_resamples"] == 2
    assert res["macro_f1"]["diff"] == pytest.approx(1 - 1 / 2)


def test_weights_equal_duplicated_rows():
    y, p = synthetic(n=40, c=5, seed=4, ties=True)
    b = buckets_for(5)
    idx = bs.resample_indices(40, 6, seed=1)
    idx[0, :3] = 0  # row 0 at least three times
    idx[1] = np.r_[0, 0, np.arange(1, 39)]  # row 0 twice, row 39 missing
    for name in bs.metric_names(b):
        f = bs.metric_fn(name, threshold=0.45, buckets=b)
        got = f(y, p, idx)
        assert got.shape == (6,)
        for k in range(6):
            want = f(y[idx[k]], p[idx[k]], None)[0]
            np.testing.assert_allclose(got[k], want, atol=1e-12, err_msg=f"{name} resample {k}")
    dup = np.r_[0, 0, np.arange(1, 39)]
    assert bs.micro_auprc(y, p, dup[None])[0] == pytest.approx(
        average_precision_score(y[dup].ravel(), p[dup].ravel()), abs=1e-12
    )


def test_dense_product_path_and_small_chunks(monkeypatch):
    y, p = synthetic(n=500, c=50, seed=6)
    y |= np.random.default_rng(0).random(y.shape) < 0.4  # dense targets and predictions: the BLAS branch
    idx = bs.resample_indices(500, 1000, seed=2)
    got = bs.macro_f1(y, p, idx, 0.4)
    for k in (0, 999):
        assert got[k] == pytest.approx(macro_f1_direct(y[idx[k]], p[idx[k]], 0.4), abs=1e-12)
    micro, per_label = bs.micro_auprc(y, p, idx[:20]), bs.per_label_ap(y, p, idx[:20])
    monkeypatch.setattr(bs, "CHUNK_BYTES", 1)  # one resample per chunk
    np.testing.assert_allclose(bs.micro_auprc(y, p, idx[:20]), micro, atol=1e-12)
    np.testing.assert_allclose(bs.per_label_ap(y, p, idx[:20]), per_label, atol=1e-12)
    np.testing.assert_allclose(bs.macro_f1(y, p, idx[:20], 0.4), got[:20], atol=1e-12)


def test_resample_without_positives_of_a_label():
    y = np.array([[1, 1], [0, 1], [0, 0], [1, 0]], dtype=bool)
    p = np.array([[0.9, 0.2], [0.5, 0.7], [0.6, 0.1], [0.3, 0.4]])
    idx = np.array([[1, 2, 2, 1], [0, 1, 2, 3]])  # resample 0: no positive of label 0
    per_label = bs.per_label_ap(y, p, idx)
    assert np.isnan(per_label[0, 0]) and per_label[0, 1] == pytest.approx(1.0)
    assert bs.macro_ap(y, p, idx)[0] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------- paired comparisons


def test_aa_identical_settings():
    y, p = synthetic(n=200, c=6, seed=7)
    b = buckets_for(6)
    res = bs.paired_bootstrap(y, p, p.copy(), bs.metric_names(b), n_resamples=200, buckets=b)
    for name, r in res.items():
        assert r["diff"] == 0 and r["low"] == 0 and r["high"] == 0 and r["se"] == 0, name
        assert r["p_value"] == 1.0


def test_aa_seed_noise_covers_zero():
    y, p = synthetic(n=300, c=6, seed=8)
    rng = np.random.default_rng(1)
    b = buckets_for(6)
    for noise in (1e-6, 1e-3):
        other = np.clip(p + noise * rng.normal(size=p.shape), 0, 1)
        res = bs.paired_bootstrap(y, p, other, bs.metric_names(b), n_resamples=300, seed=2, buckets=b)
        for name, r in res.items():
            assert r["low"] <= 0 <= r["high"], (noise, name, r)
            assert abs(r["diff"]) < 0.02


def test_clear_difference_is_significant():
    y, p = synthetic(n=300, c=4, seed=9)
    worse = np.clip(p + 0.4 * np.random.default_rng(2).normal(size=p.shape), 0, 1)
    r = bs.paired_bootstrap(y, worse, p, ["micro_auprc", "macro_ap"], n_resamples=400)
    for v in r.values():
        assert v["diff"] > 0 and v["low"] > 0
        assert v["p_value"] == pytest.approx(2 / 401)  # the +1 correction's floor
        assert v["low"] <= v["diff"] <= v["high"]


def test_ci_coverage_of_a_known_population_difference():
    """95% CIs of test sets of 300 rows drawn from a fixed population cover the population difference in
    90-99% of 200 repetitions (measured: 0.935 for micro AU(PRC), 0.945 for macro F1 with this seed)."""
    rng = np.random.default_rng(0)
    n_pop, c = 50_000, 4
    y = rng.random((n_pop, c)) < np.array([0.4, 0.25, 0.15, 0.1])
    z = rng.normal(size=(n_pop, c))
    base = 1 / (1 + np.exp(-(1.2 * y + z - 1)))
    other = 1 / (1 + np.exp(-(1.5 * y + 0.8 * z + 0.5 * rng.normal(size=(n_pop, c)) - 1)))
    names = ["micro_auprc", "macro_f1"]
    true = {m: bs.metric_fn(m)(y, other)[0] - bs.metric_fn(m)(y, base)[0] for m in names}
    assert true["micro_auprc"] > 0.05
    reps = 200
    hits = dict.fromkeys(names, 0)
    for r in range(reps):
        rows = rng.integers(0, n_pop, 300)
        res = bs.paired_bootstrap(y[rows], base[rows], other[rows], names, n_resamples=400, seed=r)
        for m in names:
            hits[m] += res[m]["low"] <= true[m] <= res[m]["high"]
    for m in names:
        assert 0.90 <= hits[m] / reps <= 0.99, (m, hits[m] / reps)


def test_pooled_seeds_mean_of_differences():
    y, p = synthetic(n=150, c=5, seed=10)
    rng = np.random.default_rng(3)
    base = {s: np.clip(p + 0.2 * rng.normal(size=p.shape), 0, 1) for s in (1, 2, 3)}
    other = {s: np.clip(p + 0.1 * rng.normal(size=p.shape), 0, 1) for s in (1, 2, 4)}  # seeds 3, 4: unpaired
    names = ["micro_auprc", "macro_ap", "macro_f1"]
    idx = bs.resample_indices(150, 100, seed=5)
    pooled = bs.pooled_paired_bootstrap(y, base, other, names, idx=idx)
    per_seed = {s: bs.paired_bootstrap(y, base[s], other[s], names, idx=idx) for s in (1, 2)}
    for m in names:
        assert pooled[m]["seeds"] == [1, 2]
        assert pooled[m]["diff"] == pytest.approx((per_seed[1][m]["diff"] + per_seed[2][m]["diff"]) / 2)
        f = bs.metric_fn(m)
        d = np.mean([f(y, other[s], idx) - f(y, base[s], idx) for s in (1, 2)], axis=0)
        lo, hi = np.percentile(d, [2.5, 97.5])
        assert pooled[m]["low"] == pytest.approx(lo) and pooled[m]["high"] == pytest.approx(hi)
        assert pooled[m]["se"] == pytest.approx(d.std(ddof=1))
    with pytest.raises(ValueError, match="no seed"):
        bs.pooled_paired_bootstrap(y, {1: p}, {2: p}, names, n_resamples=10)


def test_a_shared_baseline_cache_gives_the_same_figures_and_evaluates_the_baseline_once_per_seed(monkeypatch):
    y, p = synthetic(n=120, c=6, seed=11)
    rng = np.random.default_rng(4)
    base = {s: np.clip(p + 0.2 * rng.normal(size=p.shape), 0, 1) for s in (0, 1)}
    others = [{s: np.clip(p + k * rng.normal(size=p.shape), 0, 1) for s in (0, 1)} for k in (0.1, 0.3, 0.05)]
    names = ["micro_auprc", "macro_ap", "macro_f1"]
    plain = [bs.pooled_paired_bootstrap(y, base, o, names, n_resamples=200) for o in others]
    calls = []
    real = bs._evaluate
    monkeypatch.setattr(bs, "_evaluate", lambda y, p, *a: calls.append(id(p)) or real(y, p, *a))
    cache: dict = {}
    cached = [bs.pooled_paired_bootstrap(y, base, o, names, n_resamples=200, base_cache=cache) for o in others]
    assert cached == plain
    assert sum(c in {id(b) for b in base.values()} for c in calls) == 2  # the baseline: once per seed, not 6 times


def test_per_label_ap_diff():
    y, p = synthetic(n=200, c=5, seed=11)
    y[:, 3] = False  # no test positives: NaN
    rng = np.random.default_rng(4)
    base = {0: np.clip(p + 0.3 * rng.normal(size=p.shape), 0, 1), 1: np.clip(p + 0.3 * rng.normal(size=p.shape), 0, 1)}
    other = {0: p, 1: np.clip(p + 0.05 * rng.normal(size=p.shape), 0, 1)}
    idx = bs.resample_indices(200, 300, seed=1)
    diff, low, high = bs.per_label_ap_diff(y, base, other, idx)
    assert diff.shape == low.shape == high.shape == (5,)
    want = np.mean(
        [
            [
                average_precision_score(y[:, j], other[s][:, j]) - average_precision_score(y[:, j], base[s][:, j])
                if y[:, j].any()
                else np.nan
                for j in range(5)
            ]
            for s in (0, 1)
        ],
        axis=0,
    )
    np.testing.assert_allclose(diff, want, atol=1e-12)
    assert np.isnan(diff[3]) and np.isnan(low[3]) and np.isnan(high[3])
    ok = ~np.isnan(diff)
    assert np.all(low[ok] <= diff[ok]) and np.all(diff[ok] <= high[ok])
    assert np.all(low[ok] > 0)  # the noisier baseline loses on every label
    # a label with one positive: NaN in the resamples that miss it, ignored
    y1 = y.copy()
    y1[:, 4] = False
    y1[5, 4] = True
    d1, lo1, hi1 = bs.per_label_ap_diff(y1, base[0], other[0], idx)
    assert not np.isnan(d1[4]) and not np.isnan(lo1[4]) and lo1[4] <= hi1[4]


# ------------------------------------------------------------------------------------------ multiple comparisons


def test_holm_by_hand():
    # sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> max so far 0.06
    assert bs.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert bs.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert bs.holm([0.4, 0.3]) == pytest.approx([0.6, 0.6])
    out = bs.holm([0.02, float("nan"), 0.01])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert bs.holm([]) == []
    raw = np.random.default_rng(0).random(20) ** 3
    adj = np.array(bs.holm(raw.tolist()))
    order = np.argsort(raw)
    assert np.all(np.diff(adj[order]) >= 0) and np.all(adj >= raw) and np.all(adj <= 1)


def test_adjusted_alpha():
    assert bs.adjusted_alpha(0.05, 8) == pytest.approx(0.00625)
    with pytest.raises(ValueError):
        bs.adjusted_alpha(0.05, 0)
    y, p = synthetic(n=100, c=3, seed=12)
    other = np.clip(p + 0.1 * np.random.default_rng(0).normal(size=p.shape), 0, 1)
    idx = bs.resample_indices(100, 500, seed=0)
    r1 = bs.paired_bootstrap(y, p, other, ["micro_auprc"], idx=idx)["micro_auprc"]
    r8 = bs.paired_bootstrap(y, p, other, ["micro_auprc"], idx=idx, alpha=bs.adjusted_alpha(0.05, 8))["micro_auprc"]
    assert r8["low"] <= r1["low"] and r8["high"] >= r1["high"]
