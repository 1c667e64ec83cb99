"""The verdict at the top of every report, from small synthetic result sets: it names the settings whose difference
holds, with the interval, and claims nothing for one whose interval covers 0."""

from __future__ import annotations

import numpy as np

from tailsweep.analysis.compare import Comparison, compare_to_baseline
from tailsweep.analysis.report import Trial, find_baseline, name_settings, settings
from tailsweep.analysis.verdict import Evidence, sentences


def _r(diff, low, high):
    return {"diff": diff, "low": low, "high": high, "p_value": 0.01}


def _trials(name, means, seeds=(0, 1, 2)):
    return [
        Trial(f"{name}-{s}", f"{name} seed={s}", name, name, s, "FINISHED", {f"test/{k}": v for k, v in means.items()})
        for s in seeds
    ]


def _evidence() -> Evidence:
    zero = _r(0.0, -0.01, 0.01)
    c = Comparison("unweighted", ["many", "medium", "few"], 1000)
    c.results = {
        "good": {
            "macro_ap": _r(0.05, 0.02, 0.08),
            "micro_auprc": zero,
            "macro_f1": zero,
            "recall_many": _r(-0.05, -0.08, -0.02),
            "recall_few": _r(0.2, 0.1, 0.3),
        },
        "noise": {"macro_ap": _r(0.06, -0.02, 0.14), "micro_auprc": zero, "macro_f1": zero},
        "worse": {"macro_ap": zero, "micro_auprc": _r(-0.03, -0.05, -0.01), "macro_f1": zero},
    }
    c.seeds = {n: [0, 1, 2] for n in c.results}
    groups = {  # the baseline last: a tie (micro AU(PRC), good and the baseline) goes to the baseline anyway
        "good": _trials("good", {"macro_ap": 0.65, "micro_auprc": 0.85, "recall_few": 0.3}),
        "noise": _trials("noise", {"macro_ap": 0.66, "micro_auprc": 0.84, "recall_few": 0.1}),
        "worse": _trials("worse", {"macro_ap": 0.60, "micro_auprc": 0.82, "recall_few": 0.1}),
        "unweighted": _trials("unweighted", {"macro_ap": 0.60, "micro_auprc": 0.85, "recall_few": 0.1}),
    }
    return Evidence(groups, "unweighted", c, ["many", "medium", "few"], missing=1, bucket_sizes={"few": 3})


def test_it_names_the_setting_that_holds_with_its_interval_and_not_the_one_that_does_not():
    beats, trade, pick, limits = sentences(_evidence())
    assert "`good` beats `unweighted` on macro AP by +0.050 [+0.020, +0.080]" in beats
    assert "`noise` beats" not in beats and "No headline difference holds for `noise`" in beats
    assert "`worse` falls behind it on micro AU(PRC) by -0.030 [-0.050, -0.010]" in beats
    assert "98.3 % intervals" in beats  # 95 % with Bonferroni's correction for 3 settings
    assert "`good` trades head for tail (few-shot +0.200 [+0.100, +0.300], many-shot -0.050 [-0.080, -0.020])" in trade
    assert "`noise`" in trade.split("No bucket's recall difference holds for")[1]
    # noise has the best macro AP mean, but the verdict does not let it win: its interval covers 0
    macro = pick.split("for every label counted alike (macro AP), ")[1].split(";")[0]
    assert macro.startswith("`noise` has the highest mean (0.660) but its difference") and "does not hold" in macro
    assert "for finding the rare labels (few-shot recall at 0.5), `good` (0.300; +0.200" in pick
    assert "micro AU(PRC)), `unweighted` (0.850): no setting has a higher mean" in pick
    assert "3 finished seed(s) per setting" in limits and "1 trial(s) are missing" in limits and "few-shot 3" in limits


def test_a_goal_no_setting_moves_is_said_so_instead_of_picking_the_baseline():
    ev = _evidence()
    for ts in ev.groups.values():
        for t in ts:
            t.metrics["test/recall_few"] = 0.0  # no setting finds a few-shot label at 0.5
    pick = sentences(ev)[2]
    assert "for finding the rare labels (few-shot recall at 0.5), no setting stands out: every one scores 0.000" in pick
    assert "`unweighted` (0.000)" not in pick
    assert "macro AP), `noise` has the highest mean" in pick  # the other goals are unchanged


COUNTS = [400, 150, 60, 30, 12, 5]
BUCKETS = ["many", "many", "medium", "medium", "few", "few"]


def _data(rows=300, labels=6, seed=0):
    return np.random.default_rng(seed).random((rows, labels)) < np.array([0.4, 0.3, 0.2, 0.15, 0.08, 0.05])


def _predicted(name, seed, y, p):
    per_label = [
        {"label": f"l{j}", "train_count": str(c), "bucket": b, "ap": "0.5"}
        for j, (c, b) in enumerate(zip(COUNTS, BUCKETS, strict=True))
    ]
    preds = {"p": p.astype(np.float16), "y": y, "rows": np.arange(len(y), dtype=np.int32), "n_test": np.int64(len(y))}
    metrics = {"test/macro_ap": float(p[y].mean()), "test/micro_auprc": 0.5}
    return Trial(f"{name}-{seed}", "", name, name, seed, "FINISHED", metrics, per_label=per_label, predictions=preds)


def test_from_kept_predictions_a_real_gain_is_claimed_and_an_identical_setting_is_not():
    y = _data()
    groups = {"unweighted": [], "better": [], "same": []}
    for seed in (0, 1):
        noise = np.random.default_rng(10 + seed).normal(size=y.shape)
        base = 1 / (1 + np.exp(-(1.0 * y + noise)))
        groups["unweighted"].append(_predicted("unweighted", seed, y, base))
        groups["better"].append(_predicted("better", seed, y, 1 / (1 + np.exp(-(2.5 * y + noise)))))
        groups["same"].append(_predicted("same", seed, y, base.copy()))
    buckets = ["many", "medium", "few"]
    c = compare_to_baseline(groups, "unweighted", buckets, resamples=200)
    beats = sentences(Evidence(groups, "unweighted", c, buckets))[0]
    assert "`better` beats `unweighted` on micro AU(PRC) by +" in beats
    assert "`same` beats" not in beats and "`same`" in beats.split("No headline difference holds for")[1]


def test_without_a_baseline_or_predictions_it_claims_nothing():
    groups = {"a": _trials("a", {"macro_ap": 0.6}), "b": _trials("b", {"macro_ap": 0.7})}
    none = sentences(Evidence(groups, None, None))
    assert none[0].startswith("No baseline setting") and not any("beats" in s for s in none)
    for t in groups["a"]:
        t.status = "KILLED"
    unfinished = sentences(Evidence(groups, "a", Comparison("a", [], 1000, baseline_predictions=False)))
    assert unfinished[0] == "`a` has no finished trial, so nothing is compared against it (see 'What is missing')."
    for t in groups["a"]:
        t.status = "FINISHED"
    alone = sentences(Evidence({"a": groups["a"]}, "a", Comparison("a", [], 1000)))
    assert alone[0] == "`a` is the only setting in this sweep: there is nothing to compare it with."
    unpaired = sentences(Evidence(groups, "a", Comparison("a", [], 1000, baseline_predictions=False)))
    assert "no difference below comes with an interval" in unpaired[0]
    assert "`b` has the highest mean (0.700; no interval against the baseline)" in unpaired[1]


def test_settings_are_keyed_by_their_plan_group_not_their_name():
    def t(group, setting, scheme, seed, variant=""):
        return Trial(f"{group}/{seed}", "any name", setting, scheme, seed, "FINISHED", {}, group=group, variant=variant)

    trials = [t("0:0", "focal γ=2", "focal", s) for s in (0, 1)]  # the same scheme entered twice, same parameters
    trials += [t("1:0", "focal γ=2", "focal", s) for s in (0, 1)]
    trials += [t("2:0", "plain", "unweighted", s, variant="plain") for s in (0, 1)]
    name_settings(trials)
    groups = settings(type("S", (), {"trials": trials})())
    assert {n: sorted(x.seed for x in ts) for n, ts in groups.items()} == {
        "focal γ=2 [0:0]": [0, 1],
        "focal γ=2 [1:0]": [0, 1],
        "plain": [0, 1],
    }
    assert find_baseline(groups, None) == ("unweighted", "plain")  # by its scheme, whatever its label
    assert find_baseline(groups, "plain")[1] == "plain" and find_baseline(groups, "mcloss")[1] is None


def test_a_difference_outside_its_own_interval_is_marked_and_explained():
    from tailsweep.analysis.compare import bootstrap_blocks
    from tailsweep.analysis.report import to_markdown

    ev = _evidence()
    ev.comparison.results["good"]["recall_few"] = _r(0.411, 0.379, 0.408)  # seen on cellcycle_GO, post-hoc τ
    beats, trade, pick, limits = sentences(ev)
    assert "few-shot +0.411 † [+0.379, +0.408]" in trade and "many-shot -0.050 [-0.080, -0.020]" in trade
    assert "lies outside its own interval" in limits and "one test positive" in limits
    assert "lies outside" not in " ".join(sentences(_evidence()))  # nothing outside: nothing said
    c = Comparison("unweighted", ["few"], 1000)
    zero = _r(0.0, -0.01, 0.01)
    c.results = {"good": dict.fromkeys(c.metrics, zero) | {"recall_few": _r(0.411, 0.379, 0.408)}}
    md = to_markdown(bootstrap_blocks(ev.groups, "unweighted", ["few"], comparison=c))
    assert "+0.4110 † [+0.3790, +0.4080]" in md and "† A difference marked † lies outside" in md
