"""The report's comparison sections on synthetic trials with kept test predictions: the paired bootstrap table
(a real effect holds, an A/A comparison does not), the per-label view and both threshold rules."""

from __future__ import annotations

import numpy as np

from tailsweep.analysis.compare import (
    bootstrap_blocks,
    paired_rows,
    per_label_blocks,
    threshold_blocks,
)
from tailsweep.analysis.report import Trial

LABELS = 6
COUNTS = [400, 150, 60, 30, 12, 5]
BUCKET = ["many", "many", "medium", "medium", "few", "few"]


def _data(rows=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random((rows, LABELS)) < np.array([0.4, 0.3, 0.2, 0.15, 0.08, 0.05])
    return y


def _trial(name, seed, y, p, extra=None):
    per_label = [
        {
            "label": f"l{j}",
            "train_count": str(COUNTS[j]),
            "bucket": BUCKET[j],
            "ap": str(float(np.mean(p[y[:, j], j] > np.median(p[:, j])))),
        }
        for j in range(LABELS)
    ]
    preds = {"p": p.astype(np.float16), "y": y, "rows": np.arange(len(y), dtype=np.int32), "n_test": np.int64(len(y))}
    return Trial(
        f"{name}-{seed}",
        f"{name} seed={seed}",
        name,
        name,
        seed,
        "FINISHED",
        {"test/macro_ap": 0.5, **(extra or {})},
        per_label=per_label,
        predictions=preds,
    )


def _groups(effect):
    y = _data()
    groups = {"unweighted": [], "better": [], "same": []}
    for seed in (0, 1):
        rng = np.random.default_rng(10 + seed)
        noise = rng.normal(size=y.shape)
        base = 1 / (1 + np.exp(-(1.0 * y + noise)))
        better = 1 / (1 + np.exp(-((1.0 + effect) * y + noise)))
        groups["unweighted"].append(_trial("unweighted", seed, y, base))
        groups["better"].append(_trial("better", seed, y, better))
        groups["same"].append(_trial("same", seed, y, base.copy()))
    return groups


def test_a_real_gain_holds_and_an_identical_setting_does_not():
    blocks = bootstrap_blocks(_groups(effect=1.5), "unweighted", ["many", "medium", "few"], resamples=300)
    tables = [b for b in blocks if b[0] == "table"]
    head = {r[0]: r[1:] for r in tables[0][2]}
    assert "**holds**" in head["better"][0] and head["better"][0].startswith("+")  # micro AU(PRC)
    assert all(c.startswith("+0.0000 [+0.0000, +0.0000]") for c in head["same"])  # A/A: exactly 0
    text = " ".join(b[1] for b in blocks if b[0] == "p")
    assert "What it does not" in text and "Holm" in text and "97.5 %" in text  # 2 settings: Bonferroni level
    assert "`same`" not in text.split("excludes 0:")[1]


def test_trials_without_predictions_are_said_not_skipped_silently():
    groups = _groups(effect=1.0)
    for t in groups["unweighted"]:
        t.predictions = None
    (_, head), (_, text) = bootstrap_blocks(groups, "unweighted", ["many"], resamples=50)
    assert "No kept test predictions" in text
    other = _groups(effect=1.0)
    other["better"][0].predictions = {**other["better"][0].predictions, "rows": np.arange(1, 301, dtype=np.int32)}
    y, seeds, why = paired_rows({0: other["unweighted"][0].predictions}, {0: other["better"][0].predictions})
    assert y is None and "rows differ" in why


def test_the_per_label_view_draws_every_setting_and_lists_gains_and_losses(tmp_path):
    groups = _groups(effect=1.5)
    blocks = per_label_blocks(groups, "unweighted", {n: (0.1, 0.2, 0.3, 1.0) for n in groups}, tmp_path, resamples=100)
    assert ("img", "delta_ap_per_label.png", "per-label ΔAP") in blocks
    assert (tmp_path / "delta_ap_per_label.png").stat().st_size > 10_000
    tables = [b for b in blocks if b[0] == "table"]
    assert tables and all(r[2].startswith(("+", "-")) and r[3].startswith("[") for r in tables[0][2])


def test_both_threshold_rules_side_by_side():
    groups = _groups(effect=0.0)
    for t in groups["better"]:
        t.metrics.update(
            {"test/macro_f1": 0.20, "test/tuned_macro_f1": 0.45, "test/recall_few": 0.0, "test/tuned_recall_few": 0.5}
        )
    blocks = threshold_blocks(groups, ["few"])
    (table,) = [b for b in blocks if b[0] == "table"]
    row = {r[0]: r for r in table[2]}["better"]
    assert row[1] == "0.200 / 0.450" and row[-1] == "0.000 / 0.500"
    assert threshold_blocks({"x": groups["same"]}, ["few"]) == []  # no tuned metrics: no section
