"""The HMC ARFF importer: a hand-written file with every quirk, and the real benchmarks when present."""

import gzip

import numpy as np
import pytest

from tailsweep.datasets import LabelTable, TableError, label_stats, validate_table
from tailsweep.datasets._hmc import import_hmc, parse_arff
from tests.conftest import SHARED_DATA

TREE = """% a comment\r
@RELATION 'toy'\r
@ATTRIBUTE 'gene%expr'   numeric\r
@ATTRIBUTE colour        {r,g}\r
@ATTRIBUTE class hierarchical 01,01/01,01/02,02,01/01\r
@DATA\r
1.0,r,01/01\r
?,g,01/02@02\r
3.0,?,02\r
"""

DAG = """@RELATION dag
@ATTRIBUTE x numeric
@ATTRIBUTE class hierarchical root/NS1,NS1/A,NS1/B,A/C,B/C
@DATA
1,C
2,A@NS1
3,B
"""


def _write(folder, name, text):
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        with gzip.open(folder / f"{name}.{split}.arff.gz", "wt") as f:
            f.write(text)


def test_tree_quirks_crlf_percent_nominal_missing_duplicates(tmp_path):
    a = parse_arff(TREE)
    assert a.names == ["gene%expr", "colour"] and a.hierarchy == ["01", "01/01", "01/02", "02"]
    _write(tmp_path / "src" / "toy_FUN", "toy_FUN", TREE)
    t = import_hmc("toy_FUN", tmp_path / "out", tmp_path / "src", preprocess="impute")
    assert t.labels == ("01", "01/01", "01/02", "02") and t.parents["01/02"] == ("01",)
    x = np.stack(t.read("train").column("features").to_pylist())
    assert x.shape == (3, 3)  # numeric + one-hot(r, g)
    assert x[1, 0] == pytest.approx(2.0)  # '?' imputed with the training mean (1 + 3) / 2
    assert x[:, 1:].tolist() == [[1, 0], [0, 1], [0, 0]]  # nominal one-hot; '?' -> zeros
    y = t.targets("train")
    assert y[1].tolist() == [1, 0, 1, 1]  # 01/02@02 closed upward: 01 too
    assert t.manifest.extra["preprocess"] == "impute" and t.manifest.extra["hierarchy"] == "tree"
    assert [p for p in validate_table(t.root) if p.severity == "error"] == []


def test_dag_drops_artificial_roots_and_keeps_two_parents(tmp_path):
    _write(tmp_path / "src" / "toy_GO", "toy_GO", DAG)
    t = import_hmc("toy_GO", tmp_path / "out", tmp_path / "src")
    assert set(t.labels) == {"A", "B", "C"}  # root and the namespace root NS1 are not nodes
    assert sorted(t.parents["C"]) == ["A", "B"] and t.parents["A"] == ()
    assert t.targets("train")[0].tolist() == [1, 1, 1]  # C closes to A and B
    x = np.stack(t.read("train").column("features").to_pylist())
    assert x.mean() == pytest.approx(0.0, abs=1e-6)  # chmcnn: standardised on train + val


def test_missing_train_file_is_named(tmp_path):
    _write(tmp_path / "src" / "toy_FUN", "toy_FUN", TREE)
    (tmp_path / "src" / "toy_FUN" / "toy_FUN.train.arff.gz").unlink()
    with pytest.raises(TableError, match=r"missing .*toy_FUN\.train\.arff\.gz"):
        import_hmc("toy_FUN", tmp_path / "out", tmp_path / "src")
    assert not (tmp_path / "out").exists()


def test_bad_row_names_file_and_line():
    with pytest.raises(TableError, match=r"x\.arff:4: 3 fields, expected 2"):
        parse_arff("@ATTRIBUTE a numeric\n@ATTRIBUTE class hierarchical 01\n@DATA\n1,2,01\n", "x.arff")


@pytest.mark.skipif(not (SHARED_DATA / "cellcycle_FUN").is_dir(), reason="../shared/data/cellcycle_FUN not present")
@pytest.mark.parametrize(
    "name,nodes,card,rare,zero", [("cellcycle_FUN", 499, 8.721, 290, 45), ("cellcycle_GO", 4122, 31.679, 3405, 943)]
)
def test_real_benchmarks_match_their_published_statistics(tmp_path, name, nodes, card, rare, zero):
    if not (SHARED_DATA / name).is_dir():
        pytest.skip(f"../shared/data/{name} not present")
    t = import_hmc(name, tmp_path / name, SHARED_DATA)
    s = label_stats(t)
    assert s.num_labels == nodes
    assert t.targets("train").sum(1).mean() == pytest.approx(card, abs=1e-3)
    assert (s.counts < 10).sum() == rare and (s.counts == 0).sum() == zero
    assert LabelTable(t.root).manifest.extra["preprocess"] == "chmcnn"


@pytest.mark.skipif(not (SHARED_DATA / "expr_FUN").is_dir(), reason="../shared/data/expr_FUN not present")
def test_expr_fun_without_train_file_is_refused(tmp_path):
    with pytest.raises(TableError, match="expr_FUN.train.arff"):
        import_hmc("expr_FUN", tmp_path / "x", SHARED_DATA)


def _others(folder, files, text):
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        (folder / name).write_text(text)


OTHERS_TREE = "".join(
    [
        "@RELATION enron\n@ATTRIBUTE x numeric\n@ATTRIBUTE class hierarchical A,A/B,C\n@DATA\n",
        *[f"{i}.0,{'A/B' if i % 3 == 0 else 'C' if i % 3 == 1 else 'A'}\n" for i in range(20)],
        "?,C\n",
    ]
)


@pytest.mark.parametrize(
    ("name", "files", "where"),
    [
        ("enron_others", ["Enron_corr_trainvalid.arff", "Enron_corr_test.arff"], "enron_others"),
        ("diatoms_others", ["Diatoms_train.arff", "Diatoms_test.arff"], "others"),
        ("imclef07a_others", ["ImCLEF07A_Train.arff", "ImCLEF07A_Test.arff"], "."),
    ],
)
def test_others_layout_train_or_trainvalid_plus_test(tmp_path, name, files, where):
    src = tmp_path / "src"
    _others(src / where, files, OTHERS_TREE)
    t = import_hmc(name, tmp_path / "out", src)
    extra = t.manifest.extra
    assert extra["layout"] == "others" and extra["val_from_train"] == 0.1
    assert extra["files"] == {"train": files[0], "test": files[1]}
    # no validation file: 10 % of the 21 training rows (2) carved out as val, the rest stays train
    assert t.read("train").num_rows == 19 and t.read("val").num_rows == 2 and t.read("test").num_rows == 21
    assert [p for p in validate_table(t.root) if p.severity == "error"] == []


def test_others_set_without_its_test_file_is_refused_by_name(tmp_path):
    _others(tmp_path / "src" / "enron_others", ["Enron_corr_trainvalid.arff"], OTHERS_TREE)
    with pytest.raises(TableError, match=r"missing Enron_corr_test\.arff"):
        import_hmc("enron_others", tmp_path / "out", tmp_path / "src")
    assert not (tmp_path / "out").exists()


def test_chmcnn_imputes_each_split_with_its_own_means(tmp_path):
    head = "@RELATION t\n@ATTRIBUTE x numeric\n@ATTRIBUTE class hierarchical 01,02\n@DATA\n"
    folder = tmp_path / "src" / "toy_FUN"
    folder.mkdir(parents=True)
    for split, rows in {"train": "1,01\n3,02\n?,01\n", "valid": "5,01\n7,02\n", "test": "10,01\n20,02\n?,01\n"}.items():
        (folder / f"toy_FUN.{split}.arff").write_text(head + rows)
    raw = {}
    for mode in ("chmcnn", "trainval"):
        t = import_hmc("toy_FUN", tmp_path / mode, tmp_path / "src", preprocess=mode)
        raw[mode] = {s: np.stack(t.read(s).column("features").to_pylist())[:, 0] for s in ("train", "test")}
        assert t.manifest.extra["preprocess"] == mode
    # chmcnn: train's '?' gets train's mean (2), test's '?' test's own mean (15); scaler on the filled
    # train + val = [1, 3, 2, 5, 7]: mean 3.6, std 2.154
    mu, sd = 3.6, np.std([1, 3, 2, 5, 7])
    assert raw["chmcnn"]["train"][2] == pytest.approx((2 - mu) / sd, rel=1e-5)
    assert raw["chmcnn"]["test"][2] == pytest.approx((15 - mu) / sd, rel=1e-5)
    # trainval: both '?' get the train + val mean (1 + 3 + 5 + 7) / 4 = 4, never a test statistic
    mu2, sd2 = 4.0, np.std([1, 3, 4, 5, 7])
    assert raw["trainval"]["test"][2] == pytest.approx((4 - mu2) / sd2, rel=1e-5)
