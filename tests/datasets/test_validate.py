"""Broken tables: every problem is reported at once, with file and row."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tailsweep.datasets import validate_table
from tests.conftest import make_features_table, make_image_table


def _errors(root):
    return [p for p in validate_table(root) if p.severity == "error"]


def test_clean_tables_pass(features_table, image_table):
    assert _errors(features_table.root) == []
    assert _errors(image_table.root) == []


def test_many_problems_reported_together(tmp_path):
    t = make_features_table(tmp_path / "t")
    # train: an unknown label in row 3 and NaN features in row 5
    train = pq.read_table(t.path("train")).to_pylist()
    train[3]["labels"] = ["a/x", "zzz"]
    train[5]["features"] = [float("nan")] * 8
    pq.write_table(pa.Table.from_pylist(train, schema=pq.read_schema(t.path("train"))), t.path("train"))
    # val: empty; test: labels column missing
    pq.write_table(pq.read_table(t.path("val")).slice(0, 0), t.path("val"))
    pq.write_table(pq.read_table(t.path("test")).drop_columns(["labels"]), t.path("test"))
    errs = _errors(t.root)
    text = "\n".join(map(str, errs))
    assert "train.parquet [row 3]: unknown label 'zzz'" in text
    assert "train.parquet [row 5]: NaN or infinite feature values" in text
    assert "val.parquet" in text and "is empty" in text
    assert "test.parquet [column 'labels']: missing" in text
    assert len(errs) == 4


def test_wrong_types(tmp_path):
    t = make_features_table(tmp_path / "t")
    tbl = pq.read_table(t.path("train"))
    tbl = tbl.set_column(tbl.schema.get_field_index("labels"), "labels",
                         pa.array([",".join(x) for x in tbl.column("labels").to_pylist()]))
    tbl = tbl.set_column(0, "id", pa.array(np.arange(tbl.num_rows)))
    pq.write_table(tbl, t.path("train"))
    text = "\n".join(map(str, _errors(t.root)))
    assert "[column 'labels']: has type string -> expected list<string>" in text
    assert "[column 'id']: has type int64 -> expected string" in text


def test_undecodable_image_named_by_row(tmp_path):
    t = make_image_table(tmp_path / "t")
    rows = pq.read_table(t.path("val")).to_pylist()
    rows[2]["image"] = b"not an image"
    rows[6]["image"] = rows[6]["image"][:20]  # truncated PNG
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(t.path("val"))), t.path("val"))
    errs = _errors(t.root)
    assert [str(e) for e in errs] == [
        "ERROR: val.parquet [rows 2, 6]: image bytes cannot be decoded -> re-encode those images as PNG/JPEG or drop the rows"]


def test_hierarchy_problems(tmp_path):
    t = make_features_table(tmp_path / "t")
    labels = pq.read_table(t.root / "labels.parquet").to_pylist()
    labels[0]["parents"] = ["a/x"]  # a -> a/x -> a: a cycle
    labels[3]["parents"] = ["ghost"]
    pq.write_table(pa.Table.from_pylist(labels, schema=pq.read_schema(t.root / "labels.parquet")),
                   t.root / "labels.parquet")
    text = "\n".join(map(str, _errors(t.root)))
    assert "cycle in parents" in text
    assert "parent 'ghost' is not a label" in text


def test_missing_manifest_and_bad_input_kind(tmp_path):
    t = make_features_table(tmp_path / "t")
    m = json.loads((t.root / "manifest.json").read_text())
    m["input"] = "video"
    (t.root / "manifest.json").write_text(json.dumps(m))
    assert any("unknown input kind 'video'" in str(p) for p in _errors(t.root))
    (t.root / "manifest.json").unlink()
    assert "manifest.json" in str(_errors(t.root)[0])


def test_zero_positive_labels_are_a_warning(tmp_path):
    t = make_features_table(tmp_path / "t")
    labels = pq.read_table(t.root / "labels.parquet").to_pylist()
    labels.append({"label": "never", "parents": [], "name": "never", "depth": 1})
    pq.write_table(pa.Table.from_pylist(labels, schema=pq.read_schema(t.root / "labels.parquet")),
                   t.root / "labels.parquet")
    problems = validate_table(t.root)
    assert [p.severity for p in problems] == ["warning"]
    assert "'never'" in str(problems[0])
