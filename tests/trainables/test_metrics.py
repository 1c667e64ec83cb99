import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from tailsweep.datasets import LabelStats
from tailsweep.trainables import average_precision, compute_metrics


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(200) < 0.2
    p = np.round(rng.random(200), 1)  # many ties
    assert average_precision(y, p) == pytest.approx(average_precision_score(y, p))
    assert np.isnan(average_precision(np.zeros(5), rng.random(5)))


def test_macro_conventions_and_buckets_by_hand():
    # 3 labels: 0 has positives and is found; 1 has positives, never predicted; 2 has no positives and
    # no predictions (counts 0 under the all-nodes convention, excluded from the usual one)
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    p = np.array([[0.9, 0.1, 0.1], [0.8, 0.2, 0.1], [0.3, 0.4, 0.1], [0.2, 0.1, 0.2]])
    stats = LabelStats.from_counts([150, 50, 5], n_train=300)
    m, rows = compute_metrics(y, p, stats)
    assert m["macro_recall"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["macro_recall_allnodes"] == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    assert m["macro_f1"] == pytest.approx(0.5)
    assert m["macro_f1_allnodes"] == pytest.approx(1 / 3)
    assert m["micro_f1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)  # P = 2/2, R = 2/4
    assert m["recall_many"] == 1.0 and m["recall_medium"] == 0.0
    assert np.isnan(m["recall_few"])  # the few-shot label has no eval positives
    assert m["micro_auprc"] == pytest.approx(average_precision_score(y.ravel(), p.ravel()))
    assert [r["bucket"] for r in rows] == ["many", "medium", "few"]
    assert rows[1]["ap"] == pytest.approx(average_precision_score(y[:, 1], p[:, 1]))
