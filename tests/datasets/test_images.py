"""launch data import-images: CSV + folder (+ taxonomy) -> label table; broken input named precisely."""

import csv

import numpy as np
import pytest

from tailsweep.datasets import (
    TableError,
    import_images,
    read_taxonomy,
    split_groups,
    validate_table,
)
from tests.conftest import SHARED_DATA, png_bytes


def _write(tmp_path, rows, header=("image", "labels", "kids", "sender"), images=None):
    folder = tmp_path / "imgs"
    folder.mkdir(exist_ok=True)
    for r in rows:
        name = r[0]
        if name and (images is None or name in images):
            (folder / name).write_bytes(images.get(name) if images else png_bytes((len(name) * 20 % 255, 0, 0)))
    path = tmp_path / "items.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path, folder


def _rows(n=60):
    rng = np.random.default_rng(0)
    kinds = ["T-Shirt"] * 6 + ["Pants"] * 3 + ["Blouse"]
    return [
        (
            f"i{i}.png",
            kinds[int(rng.integers(0, len(kinds)))] if i % 13 else "Not sure",
            "true" if i % 7 == 0 else "false",
            f"s{i % 12}",
        )
        for i in range(n)
    ]


TAXONOMY = "upper body: [T-Shirt, Blouse]\nlower body: [Pants]\n"


def test_import_with_taxonomy_groups_and_attributes(tmp_path):
    path, folder = _write(tmp_path, _rows())
    (tmp_path / "tax.yaml").write_text(TAXONOMY)
    table, report = import_images(
        path,
        folder,
        tmp_path / "t",
        labels_col="labels",
        attribute_cols=["kids"],
        group_col="sender",
        taxonomy=tmp_path / "tax.yaml",
        drop_labels=["Not sure"],
    )
    assert not [p for p in validate_table(table.root) if p.severity == "error"]
    assert set(table.labels) == {"upper body", "lower body", "T-Shirt", "Blouse", "Pants", "kids"}
    assert list(table.parents["Blouse"]) == ["upper body"] and not table.parents["kids"]
    y = table.targets("train")
    j = {x: i for i, x in enumerate(table.labels)}
    assert (y[:, j["upper body"]] >= y[:, j["T-Shirt"]]).all()  # closed upward
    assert report.dropped_labels["Not sure"] > 0
    groups = {s: set(table.read(s, ["group"]).column("group").to_pylist()) for s in ("train", "val", "test")}
    assert (
        not (groups["train"] & groups["val"])
        and not (groups["train"] & groups["test"])
        and not (groups["val"] & groups["test"])
    )
    assert sum(report.split_rows.values()) == report.rows
    import pyarrow.parquet as pq

    assert pq.ParquetFile(table.root / "train.parquet").metadata.num_row_groups >= 1


def test_split_is_stratified_on_rare_labels_and_seeded():
    groups = {f"g{i}": [["rare"] if i < 6 else ["common"]] * 2 for i in range(40)}
    a = split_groups(groups, (0.7, 0.15, 0.15), seed=1)
    assert a == split_groups(groups, (0.7, 0.15, 0.15), seed=1)
    rare_splits = sorted(a[f"g{i}"] for i in range(6))
    assert set(rare_splits) == {0, 1, 2}  # six rare groups: every split gets some


def test_missing_and_corrupt_images_are_named_and_skipped_only_when_asked(tmp_path):
    rows = [("a.png", "T-Shirt", "false", "1"), ("b.png", "Pants", "false", "2"), ("c.png", "Pants", "false", "3")] + [
        (f"x{i}.png", "T-Shirt" if i % 2 else "Pants", "false", str(i)) for i in range(12)
    ]
    images = {r[0]: png_bytes() for r in rows if r[0] != "b.png"}
    images["c.png"] = b"not an image"
    path, folder = _write(tmp_path, rows, images=images)
    with pytest.raises(TableError) as e:
        import_images(path, folder, tmp_path / "t")
    msg = str(e.value)
    assert "2 image(s) missing or unreadable" in msg and "b.png (row 3): file not found" in msg
    assert "c.png (row 4): cannot decode" in msg and "--skip-bad" in msg
    assert not (tmp_path / "t").exists()  # nothing half-written
    table, report = import_images(path, folder, tmp_path / "t", skip_bad=True)
    assert report.rows == 13 and len(report.skipped) == 2
    assert table.manifest.extra["skipped_images"] == ["b.png", "c.png"]


def test_broken_csv_reports_every_problem_with_row_and_column(tmp_path):
    rows = [("a.png", "T-Shirt", "maybe", "1"), ("a.png", "Pants", "false", "2"), ("", "Pants", "false", "3")]
    path, folder = _write(tmp_path, rows)
    with pytest.raises(TableError) as e:
        import_images(path, folder, tmp_path / "t", attribute_cols=["kids"])
    msg = str(e.value)
    assert "3 problem(s)" in msg
    assert "row 2, column 'kids': 'maybe' is not a yes/no value" in msg
    assert "row 3: image 'a.png' already listed on row 2" in msg
    assert "row 4, column 'image': empty" in msg
    with pytest.raises(TableError, match=r"column\(s\) \['sku'\] not found; the header has"):
        import_images(path, folder, tmp_path / "t", image_col="sku")


def test_bad_taxonomy_is_refused(tmp_path):
    (tmp_path / "t.yaml").write_text("- just\n- a list\n")
    with pytest.raises(TableError, match="expected a mapping of parent"):
        read_taxonomy(tmp_path / "t.yaml")
    (tmp_path / "n.yaml").write_text("clothes:\n  upper: [Shirt]\n  lower: [Pants]\n")
    assert read_taxonomy(tmp_path / "n.yaml") == {
        "clothes": [],
        "upper": ["clothes"],
        "lower": ["clothes"],
        "Shirt": ["upper"],
        "Pants": ["lower"],
    }


@pytest.mark.skipif(
    not (SHARED_DATA / "clothing_dataset_full").is_dir(), reason="../shared/data/clothing_dataset_full not present"
)
def test_the_clothing_recipe(tmp_path):
    from pathlib import Path

    from tailsweep.datasets import label_stats

    src = SHARED_DATA / "clothing_dataset_full"
    taxonomy = Path(__file__).resolve().parents[2] / "configs" / "taxonomies" / "clothing.yaml"
    table, report = import_images(
        src / "labels.csv",
        src / "images",
        tmp_path / "clothing",
        labels_col="label",
        ext=".jpg",
        attribute_cols=["kids"],
        group_col="sender_id",
        taxonomy=taxonomy,
        drop_labels=["Not sure", "Skip"],
        skip_bad=True,
    )
    assert not [p for p in validate_table(table.root) if p.severity == "error"]
    stats = label_stats(table)
    assert "Not sure" not in stats.labels and "Blouse" in stats.labels and stats.num_labels == 25
    assert report.dropped_labels == {"Not sure": 228, "Skip": 12}
    counts = dict(zip(stats.labels, stats.counts, strict=True))
    assert counts["upper body"] >= counts["T-Shirt"] > counts["Blouse"] > 0
