"""eval.thresholds: per_label -- each label's threshold chosen on validation by hand, ties and labels without
positives, and coherence on a hierarchy (predictions closed upward)."""

from __future__ import annotations

import numpy as np

from tailsweep.trainables._metrics import predicted, threshold_dependent, tune_thresholds


def test_each_label_gets_its_f1_best_threshold_by_hand():
    # label 0: scores 0.9 (pos), 0.8 (neg), 0.3 (pos), 0.1 (neg).
    #   t=0.9: TP1 k1 -> F1 = 2/(1+2) = .667; t=0.8: 2/(2+2) = .5; t=0.3: 4/(3+2) = .8; t=0.1: 4/(4+2) = .667
    # label 1: its one positive has the third-highest score (0.2): predicting down to it, F1 = 2/(3+1) = 0.5
    y = np.array([[1, 0], [0, 0], [1, 1], [0, 0]])
    p = np.array([[0.9, 0.6], [0.8, 0.4], [0.3, 0.2], [0.1, 0.1]])
    t = tune_thresholds(y, p)
    assert t[0] == 0.3  # F1 0.8
    assert t[1] == 0.2  # the best reachable


def test_ties_go_to_the_highest_threshold_and_labels_without_positives_keep_the_default():
    # label 0: F1 at t=0.7 is 2*1/(1+2) = .667, at t=0.2 is 2*2/(4+2) = .667: a tie -> 0.7 (fewer predictions)
    y = np.array([[1, 0], [0, 0], [0, 0], [1, 0]])
    p = np.array([[0.7, 0.9], [0.5, 0.8], [0.4, 0.1], [0.2, 0.2]])
    t = tune_thresholds(y, p)
    assert t[0] == 0.7
    assert t[1] == 0.5  # no positive on validation: 0.5 stays
    # tied scores are one threshold: rows tied at 0.5 are predicted together
    t = tune_thresholds(np.array([[1], [0], [1]]), np.array([[0.5], [0.5], [0.1]]))
    assert t[0] in (0.5, 0.1)
    f1 = {0.5: 2 * 1 / (2 + 2), 0.1: 2 * 2 / (3 + 2)}
    assert f1[t[0]] == max(f1.values())


def test_per_label_thresholds_stay_coherent_on_a_hierarchy():
    # labels: 0 = root, 1 = child of 0. Coherent scores (parent >= child) but a child threshold below the parent's
    closure = np.array([[1, 0], [1, 1]])  # row j: j and its ancestors
    p = np.array([[0.5, 0.4], [0.9, 0.1]])
    raw = p >= np.array([0.6, 0.3])
    assert raw[0].tolist() == [False, True]  # the child alone: incoherent
    pred = predicted(p, np.array([0.6, 0.3]), closure)
    assert pred.tolist() == [[True, True], [True, False]]
    assert np.all(pred[:, 0] >= pred[:, 1])  # a predicted child's parent is predicted


def test_only_threshold_metrics_are_logged_again():
    m = {
        "micro_auprc": 0.3,
        "macro_ap": 0.2,
        "macro_f1": 0.1,
        "micro_f1": 0.2,
        "recall_few": 0.0,
        "ap_few": 0.1,
        "f1_many": 0.4,
        "recall_depth2": 0.1,
    }
    assert set(threshold_dependent(m)) == {"macro_f1", "micro_f1", "recall_few", "f1_many", "recall_depth2"}
