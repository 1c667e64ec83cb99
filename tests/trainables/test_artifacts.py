"""What a trial keeps: the kept test predictions and its tables."""

import json

import numpy as np

from tailsweep.datasets import label_stats
from tailsweep.losses import build_loss
from tailsweep.trainables._artifacts import PREDICTIONS_FILE, kept_predictions, rare_predictions, write_trial_artifacts
from tests.trainables.test_worker import trial_config


def test_kept_predictions_cap_with_the_same_seeded_rows_for_every_trial():
    y = np.random.default_rng(1).random((50, 3)) > 0.5
    p = np.random.default_rng(2).random((50, 3))
    a, b = kept_predictions(y, p, None, 20), kept_predictions(y, 1 - p, np.array([0.3, 0.4, 0.5]), 20)
    assert len(a["rows"]) == 20 and np.array_equal(a["rows"], b["rows"]) and a["n_test"] == 50
    assert a["p"].dtype == np.float16 and "thresholds" not in a and b["thresholds"].dtype == np.float32
    assert kept_predictions(y, p, None, 0) is None
    assert len(kept_predictions(y, p, None, 100)["rows"]) == 50


def test_the_trials_tables_are_written(tmp_path, features_table):
    stats = label_stats(features_table)
    y = np.array([[1, 1, 0, 0], [0, 0, 0, 1]])
    p = np.array([[0.9, 0.8, 0.1, 0.2], [0.1, 0.2, 0.3, 0.7]])
    rows = [{"label": lab, "ap": 0.5} for lab in stats.labels]
    rare = rare_predictions(stats, y, p, k=2)
    assert {r["label"] for r in rare} <= set(stats.labels) and len(rare) == 2 * len(y)
    cfg = trial_config(features_table)
    loss = build_loss(cfg.scheme, stats)
    write_trial_artifacts(tmp_path, cfg, loss, stats, rows, rows, rare, kept_predictions(y, p, None, 10))
    names = {f.name for f in tmp_path.iterdir()}
    assert {"per_label_val.csv", "per_label_test.csv", "rare_labels_test_predictions.csv", "weights.json",
            PREDICTIONS_FILE} <= names  # fmt: skip
    weights = json.loads((tmp_path / "weights.json").read_text())
    assert weights["scheme"] == "inverse_frequency" and weights["labels"] == list(stats.labels)


def test_val_scores_are_kept_under_the_same_cap_with_the_training_counts(features_table):
    stats = label_stats(features_table)
    c = stats.num_labels
    rng = np.random.default_rng(3)
    y, p = rng.random((50, c)) > 0.5, rng.random((50, c))
    vy, vp = rng.random((30, c)) > 0.5, rng.random((30, c))
    kept = kept_predictions(y, p, None, 20, (vy, vp), stats)
    assert len(kept["val_rows"]) == 20 and kept["n_val"] == 30 and kept["val_p"].dtype == np.float16
    assert np.array_equal(kept["val_p"], vp[kept["val_rows"]].astype(np.float16))
    assert np.array_equal(kept["val_y"], vy[kept["val_rows"]])
    assert kept["train_count"].tolist() == [int(n) for n in stats.counts] and kept["n_train"] == stats.n_train
    edges = {(ch, pa) for ch, ps in enumerate(stats.parent_indices()) for pa in ps}
    assert {tuple(e) for e in kept["edges"].tolist()} == edges and edges  # the table's hierarchy
    small = kept_predictions(y, p, None, 100, (vy, vp), stats)
    assert len(small["val_rows"]) == 30 and np.array_equal(small["val_rows"], np.arange(30))
