import numpy as np
import pytest

from tailsweep.datasets import LabelTable, TableError
from tests.conftest import make_features_table


def test_roundtrip_and_closure(features_table):
    t = LabelTable(features_table.root)
    assert t.labels == ("a", "a/x", "a/y", "b")
    assert t.is_hierarchical and t.input_kind == "features"
    assert t.depths.tolist() == [1, 2, 2, 1]
    y = t.targets("train")
    assert y.shape == (120, 4)
    # every row with a/x or a/y also has its parent a (ancestor closure)
    assert np.all(y[:, 0] >= np.maximum(y[:, 1], y[:, 2]))
    raw = t.encode(t.read("train", ["labels"]).column("labels"), close=False)
    assert raw[:, 0].sum() == 0  # rows list only the most specific labels


def test_write_refuses_nonempty_dir(tmp_path):
    make_features_table(tmp_path / "t")
    with pytest.raises(TableError, match="not empty"):
        make_features_table(tmp_path / "t")


def test_open_errors_name_the_file(tmp_path):
    with pytest.raises(TableError, match="no such folder"):
        LabelTable(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TableError, match="manifest.json"):
        LabelTable(tmp_path / "empty")


def test_digest_changes_with_content(tmp_path):
    a = make_features_table(tmp_path / "a", seed=0)
    b = make_features_table(tmp_path / "b", seed=1)
    assert a.digest() != b.digest()
    assert a.digest() == LabelTable(a.root).digest()
