"""``launch data import-images``: a CSV of image rows + an image folder (+ a taxonomy) -> a label table.

The CSV has one row per image: a path column (relative to the image folder), and labels either in one
column (several labels joined by ``label_sep``) or as attribute columns (truthy cell -> the column's
name is a label), or both. An optional taxonomy YAML maps parent -> children (nested mappings for deeper
levels); labels not in it are top-level. Labels are stored as given; the table format closes them
upward (a child implies its parents).

Splits are made here: seeded, stratified on the rarest labels and, with ``group_col``, grouped (every
row of a group lands in one split, so one contributor's photos never straddle train and test).
The encoded image bytes go into the Parquet files as they are (or re-encoded to ``max_side``), in small
row groups so a reader can stream them.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from ..inputs import InputError, read_bytes_text, read_yaml
from ._format import Manifest, TableError, write_table

IMAGE_ROW_GROUP = 128  # rows per Parquet row group for image tables (~4 MB at 224 px JPEG)
TRUTHY = {"1", "true", "yes", "y", "t"}
FALSY = {"0", "false", "no", "n", "f", ""}


@dataclass
class ImportReport:
    rows: int
    skipped: list[str]
    dropped_labels: Counter
    split_rows: dict[str, int]
    split_groups: dict[str, int]
    unused_taxonomy: list[str] = field(default_factory=list)  # "name (tax.yaml:3)": entries no CSV row reached


def read_taxonomy(path: str | Path) -> dict[str, list[str]]:
    """Parent -> children from YAML (``upper body: [T-Shirt, Shirt]``; nested mappings for deeper levels).
    Returns child -> parents."""
    path = Path(path)
    try:
        doc = read_yaml(path, "taxonomy")
    except InputError as exc:
        raise TableError(f"taxonomy {exc}") from None
    if not isinstance(doc, Mapping):
        raise TableError(f"taxonomy {path}: expected a mapping of parent: [children], got {type(doc).__name__}")
    parents: dict[str, list[str]] = defaultdict(list)

    def walk(node: Mapping, where: str) -> None:
        for parent, children in node.items():
            parent = str(parent)
            parents.setdefault(parent, [])
            if children is None:
                continue
            if isinstance(children, Mapping):
                kids = [str(k) for k in children]
                walk(children, f"{where}{parent}/")
            elif isinstance(children, list) and all(isinstance(c, str | int | float) for c in children):
                kids = [str(c) for c in children]
            else:
                raise TableError(
                    f"taxonomy {path}: children of '{where}{parent}' must be a list of names or a "
                    f"mapping, got {children!r}"
                )
            for kid in kids:
                if parent not in parents[kid]:
                    parents[kid].append(parent)

    walk(doc, "")
    return dict(parents)


def taxonomy_lines(path: str | Path) -> dict[str, int]:
    """The (first) line of each name in a taxonomy YAML, 1-based, for error messages."""
    lines: dict[str, int] = {}

    def walk(node) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(key)
                walk(value)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item)
        elif isinstance(node, yaml.ScalarNode) and node.value:
            lines.setdefault(str(node.value), node.start_mark.line + 1)

    with contextlib.suppress(OSError, yaml.YAMLError):
        walk(yaml.compose(Path(path).read_text()))
    return lines


def check_against_taxonomy(
    records: list[dict], names: set[str], taxonomy: Path, csv_path: Path, labels_col: str, attributes: set[str]
) -> None:
    """Refuse labels of the labels column that the taxonomy does not name (a misspelling on either side would
    otherwise turn the garment into a top-level label), naming the CSV rows, the close taxonomy names and their
    lines."""
    import difflib

    unknown: dict[str, list[int]] = defaultdict(list)
    for rec in records:
        for x in rec["labels"]:
            if x not in names and x not in attributes:
                unknown[x].append(rec["row"])
    if not unknown:
        return
    lines = taxonomy_lines(taxonomy)
    parts = []
    for label, rows in sorted(unknown.items()):
        close = difflib.get_close_matches(label, names, n=2, cutoff=0.6)
        hint = (
            " (did you mean " + " or ".join(f"'{c}' at {taxonomy.name}:{lines.get(c, '?')}" for c in close) + "?)"
            if close
            else ""
        )
        shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        parts.append(f"'{label}' ({csv_path.name} column '{labels_col}', row(s) {shown}){hint}")
    raise TableError(
        f"{len(unknown)} label(s) of the CSV are not in the taxonomy {taxonomy}: "
        + "; ".join(parts)
        + "; add them to the taxonomy, fix the spelling on either side, or drop them with --drop-labels"
    )


def _truthy(value: str, col: str, row: int, csv_path: Path) -> bool:
    v = value.strip().lower()
    if v in TRUTHY:
        return True
    if v in FALSY:
        return False
    raise TableError(
        f"{csv_path}: row {row}, column '{col}': {value!r} is not a yes/no value "
        f"(use one of {sorted(TRUTHY | FALSY - {''})})"
    )


def _read_image(path: Path, max_side: int | None) -> bytes:
    """The file's bytes after checking Pillow can decode them; re-encoded (JPEG, quality 90) when
    ``max_side`` is set and the shorter side is larger."""
    from PIL import Image

    blob = path.read_bytes()
    with Image.open(io.BytesIO(blob)) as im:
        im.load()
        if max_side and min(im.size) > max_side:
            scale = max_side / min(im.size)
            im = im.convert("RGB").resize(
                (max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.BILINEAR
            )
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=90)
            blob = buf.getvalue()
    return blob


def split_groups(
    group_labels: Mapping[str, Sequence[list[str]]], fractions: Sequence[float], seed: int
) -> dict[str, int]:
    """Assign each group to a split index, stratified on rare labels.

    Greedy (in the spirit of iterative stratification, Sechidis et al. 2011): groups are taken in
    order of the rarest label they carry (rarest first, larger groups first, seeded shuffle within
    ties); each goes to the split that most lacks that label relative to its target fraction (ties:
    the split furthest below its target row count).
    """
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    for rows in group_labels.values():
        for labels in rows:
            counts.update(set(labels))
    fr = np.asarray(fractions, dtype=np.float64) / np.sum(fractions)
    total = sum(len(r) for r in group_labels.values())
    names = list(group_labels)
    order = rng.permutation(len(names))

    def key(i: int):
        rows = group_labels[names[i]]
        labels = {x for r in rows for x in r}
        rarest = min((counts[x] for x in labels), default=total + 1)
        return (rarest, -len(rows))

    have_label: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(fr)))
    have_rows = np.zeros(len(fr))
    out = {}
    for i in sorted(order, key=key):
        rows = group_labels[names[i]]
        labels = {x for r in rows for x in r}
        row_deficit = fr * total - have_rows
        if labels:
            rare = min(labels, key=lambda x: (counts[x], x))
            deficit = fr * counts[rare] - have_label[rare]
            best = max(range(len(fr)), key=lambda s: (round(deficit[s], 9), row_deficit[s]))
        else:
            best = int(np.argmax(row_deficit))
        out[names[i]] = best
        have_rows[best] += len(rows)
        for r in rows:
            for x in set(r):
                have_label[x][best] += 1
    return out


@dataclass
class _CsvRows:
    """The usable rows of an import CSV: records (path, labels, group, row), and the drop-list's count."""

    records: list[dict]
    dropped: Counter


def _read_csv_text(csv_path: Path) -> str:
    try:
        return read_bytes_text(csv_path, "CSV")
    except InputError as exc:
        raise TableError(str(exc)) from None


def _listed(problems: list[str], limit: int = 50) -> str:
    return "\n  ".join(problems[:limit]) + ("\n  ..." if len(problems) > limit else "")


def _csv_row(row: dict, row_no: int, csv_path: Path, cols: dict, drop: set[str]) -> dict | None:
    """One CSV row as a record; None when only dropped labels remain. Raises TableError for a bad attribute."""
    path = (row.get(cols["image"]) or "").strip()
    labels: list[str] = []
    if cols["labels"]:
        labels += [x.strip() for x in (row.get(cols["labels"]) or "").split(cols["sep"]) if x.strip()]
    labels += [c for c in cols["attributes"] if _truthy(row.get(c) or "", c, row_no, csv_path)]
    kept = [x for x in dict.fromkeys(labels) if x not in drop]
    if labels and not kept:  # only dropped labels (e.g. "Not sure"): the row carries no usable label
        return {"path": path, "labels": [], "all": labels, "skip": True}
    group = (row.get(cols["group"]) or "").strip() if cols["group"] else path
    return {"path": path, "labels": kept, "all": labels, "group": group or f"row{row_no}", "row": row_no}


def _read_csv_rows(csv_path: Path, cols: dict, drop: set[str]) -> _CsvRows:
    """Every usable CSV row; every problem (file, row, column) reported at once before any image is read."""
    with io.StringIO(_read_csv_text(csv_path), newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        wanted = [cols["image"], cols["labels"], *cols["attributes"], cols["group"]]
        missing = [c for c in wanted if c and c not in columns]
        if missing:
            raise TableError(f"{csv_path}: column(s) {missing} not found; the header has {columns}")
        records, problems, dropped = [], [], Counter()
        seen_ids: dict[str, int] = {}
        for row_no, row in enumerate(reader, start=2):  # row 1 is the header
            path = (row.get(cols["image"]) or "").strip()
            if not path:
                problems.append(f"{csv_path}: row {row_no}, column '{cols['image']}': empty")
                continue
            if path in seen_ids:
                problems.append(f"{csv_path}: row {row_no}: image '{path}' already listed on row {seen_ids[path]}")
                continue
            seen_ids[path] = row_no
            try:
                rec = _csv_row(row, row_no, csv_path, cols, drop)
            except TableError as exc:
                problems.append(str(exc))
                continue
            dropped.update(x for x in rec.pop("all") if x in drop)
            if not rec.pop("skip", False):
                records.append(rec)
    if problems:
        raise TableError(f"{len(problems)} problem(s) in {csv_path}:\n  " + _listed(problems))
    if not records:
        raise TableError(f"{csv_path}: no rows with labels left (dropped: {dict(dropped)})")
    return _CsvRows(records, dropped)


def _read_images(records: list[dict], image_dir: Path, ext: str, max_side: int | None, skip_bad: bool, progress):
    """(blobs by path, problems): every image read once; refused unless ``skip_bad`` when any is bad."""
    blobs, bad = {}, []
    for i, rec in enumerate(records):
        file = image_dir / (rec["path"] + ext)
        try:
            blobs[rec["path"]] = _read_image(file, max_side)
        except FileNotFoundError:
            bad.append(f"{file.name} (row {rec['row']}): file not found")
        except Exception as exc:  # noqa: BLE001 -- Pillow raises many types for corrupt files
            bad.append(f"{file.name} (row {rec['row']}): cannot decode ({type(exc).__name__}: {exc})")
        if progress is not None:
            progress(i + 1, len(records))
    if bad and not skip_bad:
        raise TableError(
            f"{len(bad)} image(s) missing or unreadable under {image_dir}:\n  "
            + _listed(bad)
            + "\nfix them, or pass --skip-bad to leave those rows out"
        )
    return blobs, bad


class _Closure:
    """Ancestors of each label under a taxonomy (``parent: [children]`` read as child -> parents)."""

    def __init__(self, parents: dict[str, list[str]], taxonomy) -> None:
        self.parents, self.taxonomy, self.memo = parents, taxonomy, {}

    def __call__(self, x: str, trail=()) -> list[str]:
        if x in trail:
            raise TableError(f"taxonomy {self.taxonomy}: cycle through '{x}'")
        if x not in self.memo:
            out = []
            for p in self.parents.get(x, []):
                out += [p, *self(p, (*trail, x))]
            self.memo[x] = list(dict.fromkeys(out))
        return self.memo[x]


def _split_tables(records, blobs, parents, taxonomy, fractions, seed):
    """(label rows, tables by split, group assignment): splits stratified on the closed label sets."""
    ancestors = _Closure(parents, taxonomy)
    used = Counter(x for r in records for x in r["labels"])
    nodes = list(dict.fromkeys([a for x in used for a in ancestors(x)] + list(used)))
    label_rows = [{"label": x, "parents": [p for p in parents.get(x, []) if p in nodes]} for x in nodes]
    by_group: dict[str, list[list[str]]] = defaultdict(list)
    for r in records:  # stratify on the closed label sets (rare leaves drive the assignment)
        by_group[r["group"]].append(list(dict.fromkeys(r["labels"] + [a for x in r["labels"] for a in ancestors(x)])))
    assignment = split_groups(by_group, fractions, seed)
    tables = {}
    for s, split in enumerate(SPLIT_NAMES):
        rows = [r for r in records if assignment[r["group"]] == s]
        tables[split] = pa.table(
            {
                "id": pa.array([r["path"] for r in rows], pa.string()),
                "labels": pa.array([r["labels"] for r in rows], pa.list_(pa.string())),
                "image": pa.array([blobs[r["path"]] for r in rows], pa.binary()),
                "group": pa.array([r["group"] for r in rows], pa.string()),
            }
        )
    return label_rows, tables, assignment


SPLIT_NAMES = ("train", "val", "test")


def _check_import_args(csv_path: Path, image_dir: Path, fractions, labels_col, attribute_cols) -> None:
    if not csv_path.is_file():
        raise TableError(f"{csv_path}: CSV not found")
    if not image_dir.is_dir():
        raise TableError(f"{image_dir}: image folder not found")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or min(fractions[:2]) == 0 or fractions[2] == 0:
        raise TableError(f"split fractions must be three positive numbers (train, val, test), got {list(fractions)}")
    if not labels_col and not attribute_cols:
        raise TableError("give a labels column (--labels-col) or attribute columns (--attribute-cols)")


def import_images(
    csv_path: str | Path,
    image_dir: str | Path,
    out: str | Path,
    *,
    image_col: str = "image",
    labels_col: str | None = "labels",
    label_sep: str = ";",
    attribute_cols: Sequence[str] = (),
    group_col: str | None = None,
    taxonomy: str | Path | None = None,
    drop_labels: Sequence[str] = (),
    ext: str = "",
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    max_side: int | None = None,
    skip_bad: bool = False,
    name: str | None = None,
    progress=None,
) -> tuple[object, ImportReport]:
    """Build a label table from a CSV + image folder; see the module docstring. Returns (table, report).

    Every problem found in the CSV is reported at once (file, row, column) before any image is read;
    missing or undecodable images are listed by name and refused unless ``skip_bad``.
    """
    csv_path, image_dir = Path(csv_path), Path(image_dir)
    _check_import_args(csv_path, image_dir, fractions, labels_col, attribute_cols)
    parents = read_taxonomy(taxonomy) if taxonomy else {}
    drop = set(drop_labels)
    cols = {"image": image_col, "labels": labels_col, "sep": label_sep, "attributes": list(attribute_cols)}
    cols["group"] = group_col
    rows = _read_csv_rows(csv_path, cols, drop)
    records = rows.records
    if taxonomy and labels_col:
        names = set(parents) | {p for ps in parents.values() for p in ps}
        check_against_taxonomy(records, names, Path(taxonomy), csv_path, labels_col, set(attribute_cols))
    blobs, bad = _read_images(records, image_dir, ext, max_side, skip_bad, progress)
    records = [r for r in records if r["path"] in blobs]
    label_rows, tables, assignment = _split_tables(records, blobs, parents, taxonomy, fractions, seed)
    manifest = Manifest(
        name=name or Path(out).name,
        input="image",
        source=str(csv_path.name),
        extra={
            "importer": "import-images",
            "image_col": image_col,
            "labels_col": labels_col,
            "attribute_cols": list(attribute_cols),
            "group_col": group_col,
            "taxonomy": Path(taxonomy).name if taxonomy else None,
            "dropped_labels": sorted(drop),
            "split_fractions": list(fractions),
            "split_seed": seed,
            "max_side": max_side,
            "skipped_images": [b.split(" ")[0] for b in bad],
        },
    )
    table = write_table(out, manifest, label_rows, tables, row_group_size=IMAGE_ROW_GROUP)
    report = ImportReport(
        rows=len(records),
        skipped=bad,
        dropped_labels=rows.dropped,
        split_rows={sp: tables[sp].num_rows for sp in SPLIT_NAMES},
        split_groups={sp: len({g for g, s in assignment.items() if s == i}) for i, sp in enumerate(SPLIT_NAMES)},
        unused_taxonomy=unused_taxonomy(parents, label_rows, taxonomy),
    )
    return table, report


def unused_taxonomy(parents: dict[str, list[str]], label_rows: list[dict], taxonomy) -> list[str]:
    """The taxonomy's entries that no CSV label reached (neither a label nor an ancestor of one), with their
    lines: they are not in the table, and the import says so instead of dropping them silently."""
    if not taxonomy:
        return []
    kept = {r["label"] for r in label_rows}
    lines = taxonomy_lines(taxonomy)
    names = dict.fromkeys([*parents, *(p for ps in parents.values() for p in ps)])
    return [f"'{n}' ({Path(taxonomy).name}:{lines.get(n, '?')})" for n in names if n not in kept]
