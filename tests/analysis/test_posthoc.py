"""Post-hoc logit adjustment (analysis/posthoc.py), on small arrays worked by hand."""

import math

import numpy as np
import pytest

from tailsweep.analysis.posthoc import (
    TAUS,
    adjust,
    choose_tau,
    close_upward,
    headline_scores,
    posthoc_settings,
    prior_log_odds,
)
from tailsweep.analysis.report import Trial


def test_prior_log_odds_by_hand_with_an_empty_label_kept_finite():
    got = prior_log_odds([10, 50, 0], 100)
    assert got == pytest.approx([math.log(10 / 90), 0.0, math.log(0.5 / 99.5)])


def test_adjust_shifts_each_logit_by_tau_times_the_prior_log_odds():
    shift = prior_log_odds([10, 50], 100)  # log(1/9), 0
    p = np.array([[0.5, 0.5]])
    assert adjust(p, shift, 1.0) == pytest.approx(np.array([[0.9, 0.5]]))  # logit 0 + log 9
    assert adjust(p, shift, 0.5) == pytest.approx(np.array([[0.75, 0.5]]))  # logit log 3
    assert adjust(p, shift, 0.0) == pytest.approx(p)
    assert np.isfinite(adjust(np.array([[0.0, 1.0]]), shift, 2.0)).all()  # saturated float16 scores stay finite


def test_close_upward_raises_every_ancestor_to_its_largest_descendant():
    edges = [(1, 0), (2, 1)]  # 2 -> 1 -> 0
    p = np.array([[0.2, 0.3, 0.7], [0.9, 0.1, 0.05]])
    assert close_upward(p, edges) == pytest.approx(np.array([[0.7, 0.7, 0.7], [0.9, 0.1, 0.05]]))
    assert close_upward(p, np.zeros((0, 2))) is p


def _closed_by_descendants(p: np.ndarray, edges) -> np.ndarray:
    """The max constraint by definition: each node the max over itself and every descendant (walked)."""
    kids: dict[int, list[int]] = {}
    for c, q in edges:
        kids.setdefault(int(q), []).append(int(c))
    out = p.copy()
    for j in range(p.shape[1]):
        seen, todo = {j}, [j]
        while todo:
            for c in kids.get(todo.pop(), []):
                if c not in seen:
                    seen.add(c)
                    todo.append(c)
        out[:, j] = p[:, sorted(seen)].max(axis=1)
    return out


def test_close_upward_by_levels_equals_the_max_over_descendants_on_a_random_dag_and_a_cycle():
    rng = np.random.default_rng(3)
    n = 60  # a DAG: each node's parents among the earlier nodes (several parents, shared descendants)
    edges = [(j, int(q)) for j in range(1, n) for q in rng.choice(j, size=min(j, 1 + j % 3), replace=False)]
    p = rng.random((7, n))
    assert np.array_equal(close_upward(p, edges), _closed_by_descendants(p, edges))
    cyc = [(0, 1), (1, 0), (2, 0)]  # refused by validation; still closed (by repeated passes)
    q = np.array([[0.1, 0.5, 0.2], [0.3, 0.05, 0.9]])
    assert np.array_equal(close_upward(q, cyc), _closed_by_descendants(q, cyc))


def test_adjust_on_a_hierarchy_stays_coherent():
    # the child is rarer: the shift lifts it above its parent, the max constraint lifts the parent back
    shift = prior_log_odds([40, 5], 100)
    p = adjust(np.array([[0.3, 0.3]]), shift, 1.0, edges=[(1, 0)])
    assert p[0, 0] == pytest.approx(p[0, 1]) and p[0, 1] > 0.3


def _pred(val_p, val_y, train_count=(50, 10), n_train=100):
    return {
        "val_p": np.asarray(val_p, np.float16),
        "val_y": np.asarray(val_y, bool),
        "train_count": np.asarray(train_count),
        "n_train": np.int64(n_train),
    }


def test_choose_tau_takes_the_first_best_on_validation_macro_f1():
    # label 1 (10 of 100 training rows, prior log-odds log(1/9) = -2.197): its positives score 0.3 (logit -0.847),
    # its negatives 0.05 (logit -2.944). tau 0.5 lifts the positives to +0.25 (predicted), tau 1 too, tau 1.5 lifts
    # the negatives to +0.35 as well; label 0 (prior 0) is never moved and always right.
    val_p = [[0.9, 0.3], [0.1, 0.05], [0.8, 0.3], [0.2, 0.05]]
    val_y = [[1, 1], [0, 0], [1, 1], [0, 0]]
    tau, scores = choose_tau([_pred(val_p, val_y)])
    assert scores[0.0] == pytest.approx(0.5) and scores[0.25] == pytest.approx(0.5)  # label 1 F1 0
    assert scores[0.5] == pytest.approx(1.0) and scores[1.0] == pytest.approx(1.0)
    assert scores[1.5] == pytest.approx((1 + 2 * 2 / 6) / 2)  # label 1: TP 2, 4 predicted
    assert tau == 0.5 and list(scores) == list(TAUS)


def test_test_scores_by_hand():
    y = np.array([[1, 0], [0, 1], [1, 0]], bool)
    p = np.array([[0.9, 0.6], [0.4, 0.7], [0.6, 0.1]])
    m, rows = headline_scores(y, p, np.array([200, 5]), np.array([1, 1]))
    assert m["test/macro_f1"] == pytest.approx((2 * 2 / 4 + 2 * 1 / 3) / 2)  # label 0: TP 2/2; label 1: TP 1, 2 pred
    assert m["test/recall_many"] == 1.0 and m["test/recall_few"] == 1.0 and m["test/macro_ap"] == pytest.approx(1.0)
    assert rows[1]["bucket"] == "few" and rows[1]["predicted"] == 2


def _trial(setting, scheme, seed, pred, metrics=None):
    per_label = [{"label": f"l{j}", "depth": 1, "train_count": int(c)} for j, c in enumerate(pred["train_count"])]
    return Trial(f"r{setting}{seed}", f"{setting} seed={seed}", setting, scheme, seed, "FINISHED",
                 metrics or {"test/macro_ap": 0.5}, per_label=per_label, predictions=pred)  # fmt: skip


def test_posthoc_settings_name_the_chosen_tau_and_skip_what_makes_no_sense():
    rng = np.random.default_rng(0)
    preds = []
    for _ in range(2):
        pr = _pred([[0.9, 0.3], [0.1, 0.05], [0.8, 0.3], [0.2, 0.05]], [[1, 1], [0, 0], [1, 1], [0, 0]])
        y = rng.random((20, 2)) > 0.5
        pr |= {"p": rng.random((20, 2)).astype(np.float16), "y": y, "rows": np.arange(20), "n_test": np.int64(20)}
        preds.append(pr)
    groups = {
        "unweighted": [_trial("unweighted", "unweighted", s, preds[s]) for s in (0, 1)],
        "multilabel_softmax": [_trial("multilabel_softmax", "multilabel_softmax", 0, preds[0])],
        "old": [_trial("old", "focal", 0, {k: v for k, v in preds[0].items() if not k.startswith("val_")})],
    }
    adjusted, blocks = posthoc_settings(groups)
    assert list(adjusted) == ["unweighted + post-hoc τ=0.5"]
    trials = adjusted["unweighted + post-hoc τ=0.5"]
    assert [t.seed for t in trials] == [0, 1] and all(t.complete for t in trials)
    assert trials[0].metrics["posthoc/tau"] == 0.5 and trials[0].per_label[1]["label"] == "l1"
    want = adjust(preds[0]["p"], prior_log_odds([50, 10], 100), 0.5)
    assert np.allclose(trials[0].predictions["p"], want, atol=1e-6) and "thresholds" not in trials[0].predictions
    plain, _ = headline_scores(preds[0]["y"], preds[0]["p"].astype(np.float64), np.array([50, 10]), np.ones(2, int))
    assert trials[0].metrics["test/macro_ap"] == pytest.approx(plain["test/macro_ap"])  # monotone per label
    text = " ".join(b[1] for b in blocks if b[0] == "p")
    assert "multilabel_softmax" in text and "old (no kept validation scores" in text
    table = next(b for b in blocks if b[0] == "table")
    assert table[2][0][:2] == ["unweighted", "0.5"]


def test_a_setting_whose_validation_chooses_tau_0_is_not_copied():
    # balanced labels (50 of 100 training rows each): the prior log-odds are 0, every τ ties, τ = 0 is chosen
    pr = _pred([[0.9, 0.8], [0.1, 0.2]], [[1, 1], [0, 0]], train_count=(50, 50))
    pr |= {"p": np.array([[0.7, 0.6]], np.float16), "y": np.array([[1, 1]]), "rows": np.arange(1), "n_test": 1}
    adjusted, blocks = posthoc_settings({"unweighted": [_trial("unweighted", "unweighted", 0, pr)]})
    assert adjusted == {}  # no "unweighted + post-hoc τ=0" twin of the setting
    table = next(b for b in blocks if b[0] == "table")
    assert table[2][0][:2] == ["unweighted", "0"]  # the choice is still shown
