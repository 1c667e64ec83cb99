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
    tbl = tbl.set_column(
        tbl.schema.get_field_index("labels"),
        "labels",
        pa.array([",".join(x) for x in tbl.column("labels").to_pylist()]),
    )
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
        "ERROR: val.parquet [rows 2, 6]: image bytes cannot be decoded -> re-encode those images as PNG/JPEG or drop the rows"
    ]


def test_hierarchy_problems(tmp_path):
    t = make_features_table(tmp_path / "t")
    labels = pq.read_table(t.root / "labels.parquet").to_pylist()
    labels[0]["parents"] = ["a/x"]  # a -> a/x -> a: a cycle
    labels[3]["parents"] = ["ghost"]
    pq.write_table(
        pa.Table.from_pylist(labels, schema=pq.read_schema(t.root / "labels.parquet")), t.root / "labels.parquet"
    )
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
    pq.write_table(
        pa.Table.from_pylist(labels, schema=pq.read_schema(t.root / "labels.parquet")), t.root / "labels.parquet"
    )
    problems = validate_table(t.root)
    assert {p.severity for p in problems} == {"warning"}  # (also: the table's training rows without labels)
    zero = [p for p in problems if "no training positives" in p.message]
    assert len(zero) == 1 and "'never'" in str(zero[0])


def test_training_rows_without_labels_are_a_warning_and_all_of_them_an_error(tmp_path):
    t = make_features_table(tmp_path / "t")
    train = pq.read_table(t.root / "train.parquet")
    empty = [i for i, ls in enumerate(train.column("labels").to_pylist()) if not ls]
    assert 0 < len(empty) < train.num_rows
    warned = [p for p in validate_table(t.root) if "training rows have no label" in p.message]
    assert (
        len(warned) == 1 and warned[0].severity == "warning" and f"{len(empty)} of {train.num_rows}" in str(warned[0])
    )
    cleared = train.set_column(1, "labels", pa.array([[]] * train.num_rows, pa.list_(pa.string())))
    pq.write_table(cleared, t.root / "train.parquet")
    assert any("there is nothing to learn" in str(p) for p in _errors(t.root))


def test_every_hierarchy_problem_is_found_by_the_array_checks(tmp_path):
    from tailsweep.datasets._graph import ancestor_closure, cycles, depths, edges_from_lists, heights

    t = make_features_table(tmp_path / "t")
    labels = pq.read_table(t.root / "labels.parquet").to_pylist()
    labels += [{**labels[0], "label": f"extra{k}", "name": f"extra{k}", "parents": []} for k in range(6 - len(labels))]
    names = [r["label"] for r in labels]
    labels[0]["parents"] = [names[1]]
    labels[1]["parents"] = [names[2]]
    labels[2]["parents"] = [names[0]]  # 0 -> 1 -> 2 -> 0
    labels[3]["parents"] = [names[3]]  # its own parent
    labels[4]["parents"] = [names[0]]  # below the cycle, not on it
    labels.append(dict(labels[5]))  # a duplicate id
    pq.write_table(
        pa.Table.from_pylist(labels, schema=pq.read_schema(t.root / "labels.parquet")), t.root / "labels.parquet"
    )
    text = [str(e) for e in _errors(t.root)]
    cyc = [x for x in text if "cycle in parents" in x]
    assert len(cyc) == 1 and cyc[0].count(" -> ") >= 4 and names[4] not in cyc[0].split(":", 2)[2]
    assert any(f"label '{names[3]}']: is its own parent" in x for x in text)
    assert any(f"duplicate label '{names[5]}' (also row 5)" in x for x in text)
    # the helpers on a diamond: heights, depths, closure; and a cycle found as a path
    child, parent = edges_from_lists([[], [0], [0], [1, 2], [3]])
    assert heights(child, parent, 5).tolist() == [3, 2, 2, 1, 0]
    assert depths(child, parent, 5).tolist() == [1, 2, 2, 3, 4]
    assert ancestor_closure(child, parent, 5).toarray()[4].tolist() == [1, 1, 1, 1, 1]
    assert cycles(child, parent, 5) == []
    assert cycles(*edges_from_lists([[1], [2], [0], [0]]), 4) == [[0, 1, 2, 0]]
