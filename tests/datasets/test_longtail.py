"""launch data longtail: the exponential profile, by hand and on a table."""

import numpy as np
import pytest

from tailsweep.datasets import (
    exponential_profile,
    label_stats,
    longtail_rows,
    make_longtail,
)
from tailsweep.inputs import InputError
from tests.conftest import make_features_table


def test_exponential_profile_by_hand():
    counts = np.array([50, 400, 0, 100, 200])
    # ranks: 400 (0), 200 (1), 100 (2), 50 (3); n_max = 400, imbalance 100: 400 * 100^(-i/3)
    expected = [
        min(50, round(400 * 100 ** (-3 / 3))),
        400,
        0,
        min(100, round(400 * 100 ** (-2 / 3))),
        min(200, round(400 * 100 ** (-1 / 3))),
    ]
    assert exponential_profile(counts, 100).tolist() == expected


def test_rows_meet_single_label_targets_exactly():
    y = np.zeros((300, 3), int)
    y[:200, 0] = 1
    y[200:280, 1] = 1
    y[280:, 2] = 1
    rows = longtail_rows(y, np.array([200, 20, 2]), seed=0)
    assert y[rows].sum(0).tolist() == [200, 20, 2]


def test_table_copy_keeps_val_and_test(tmp_path):
    src = make_features_table(tmp_path / "src", n=(400, 50, 50))
    table, summary = make_longtail(src.root, tmp_path / "lt", imbalance=10, seed=1)
    assert table.read("val").num_rows == 50 and table.read("test").num_rows == 50
    before, after = summary["train_rows"]
    assert after < before and table.manifest.extra["longtail"]["imbalance"] == 10
    counts = label_stats(table).counts
    assert counts.max() / counts[counts > 0].min() >= 3  # far more skewed than the source
    with pytest.raises(InputError, match="--imbalance must be a finite number >= 1"):
        make_longtail(src.root, tmp_path / "bad", imbalance=0.5)
