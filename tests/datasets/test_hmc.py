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
@pytest.mark.parametrize("name,nodes,card,rare,zero", [("cellcycle_FUN", 499, 8.721, 290, 45),
                                                        ("cellcycle_GO", 4122, 31.679, 3405, 943)])
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
