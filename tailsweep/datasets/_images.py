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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

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


def read_taxonomy(path: str | Path) -> dict[str, list[str]]:
    """Parent -> children from YAML (``upper body: [T-Shirt, Shirt]``; nested mappings for deeper levels).
    Returns child -> parents."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TableError(f"taxonomy {path}: cannot read it ({exc})") from None
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
                raise TableError(f"taxonomy {path}: children of '{where}{parent}' must be a list of names or a "
                                 f"mapping, got {children!r}")
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


def check_against_taxonomy(records: list[dict], names: set[str], taxonomy: Path, csv_path: Path,
                           labels_col: str, attributes: set[str]) -> None:
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
        hint = (" (did you mean " + " or ".join(f"'{c}' at {taxonomy.name}:{lines.get(c, '?')}" for c in close) + "?)"
                if close else "")
        shown = ", ".join(map(str, rows[:5])) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        parts.append(f"'{label}' ({csv_path.name} column '{labels_col}', row(s) {shown}){hint}")
    raise TableError(f"{len(unknown)} label(s) of the CSV are not in the taxonomy {taxonomy}: " + "; ".join(parts)
                     + "; add them to the taxonomy, fix the spelling on either side, or drop them with --drop-labels")


def _truthy(value: str, col: str, row: int, csv_path: Path) -> bool:
    v = value.strip().lower()
    if v in TRUTHY:
        return True
    if v in FALSY:
        return False
    raise TableError(f"{csv_path}: row {row}, column '{col}': {value!r} is not a yes/no value "
                     f"(use one of {sorted(TRUTHY | FALSY - {''})})")


def _read_image(path: Path, max_side: int | None) -> bytes:
    """The file's bytes after checking Pillow can decode them; re-encoded (JPEG, quality 90) when
    ``max_side`` is set and the shorter side is larger."""
    from PIL import Image

    blob = path.read_bytes()
    with Image.open(io.BytesIO(blob)) as im:
        im.load()
        if max_side and min(im.size) > max_side:
            scale = max_side / min(im.size)
            im = im.convert("RGB").resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                                          Image.Resampling.BILINEAR)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=90)
            blob = buf.getvalue()
    return blob


def split_groups(group_labels: Mapping[str, Sequence[list[str]]], fractions: Sequence[float],
                 seed: int) -> dict[str, int]:
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
    if not csv_path.is_file():
        raise TableError(f"{csv_path}: CSV not found")
    if not image_dir.is_dir():
        raise TableError(f"{image_dir}: image folder not found")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or min(fractions[:2]) == 0 or fractions[2] == 0:
        raise TableError(f"split fractions must be three positive numbers (train, val, test), got {list(fractions)}")
    parents = read_taxonomy(taxonomy) if taxonomy else {}
    drop = set(drop_labels)

    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(f"{csv_path}: not a UTF-8 text CSV (byte {exc.start}: {exc.reason}); export it as UTF-8 "
                         "CSV") from None
    if "\x00" in text:
        raise TableError(f"{csv_path}: holds NUL bytes -- a binary file, not a CSV; export it as UTF-8 CSV")
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        wanted = [image_col] + ([labels_col] if labels_col else []) + list(attribute_cols) + ([group_col] if group_col else [])
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise TableError(f"{csv_path}: column(s) {missing} not found; the header has {columns}")
        if not labels_col and not attribute_cols:
            raise TableError("give a labels column (--labels-col) or attribute columns (--attribute-cols)")
        records, problems, dropped = [], [], Counter()
        seen_ids: dict[str, int] = {}
        for row_no, row in enumerate(reader, start=2):  # row 1 is the header
            path = (row.get(image_col) or "").strip()
            if not path:
                problems.append(f"{csv_path}: row {row_no}, column '{image_col}': empty")
                continue
            if path in seen_ids:
                problems.append(f"{csv_path}: row {row_no}: image '{path}' already listed on row {seen_ids[path]}")
                continue
            seen_ids[path] = row_no
            labels: list[str] = []
            if labels_col:
                labels += [x.strip() for x in (row.get(labels_col) or "").split(label_sep) if x.strip()]
            try:
                labels += [c for c in attribute_cols if _truthy(row.get(c) or "", c, row_no, csv_path)]
            except TableError as exc:
                problems.append(str(exc))
                continue
            kept = [x for x in dict.fromkeys(labels) if x not in drop]
            dropped.update(x for x in labels if x in drop)
            if labels and not kept:  # only dropped labels (e.g. "Not sure"): the row carries no usable label
                continue
            group = (row.get(group_col) or "").strip() if group_col else path
            records.append({"path": path, "labels": kept, "group": group or f"row{row_no}", "row": row_no})
    if problems:
        raise TableError(f"{len(problems)} problem(s) in {csv_path}:\n  " + "\n  ".join(problems[:50])
                         + ("\n  ..." if len(problems) > 50 else ""))
    if not records:
        raise TableError(f"{csv_path}: no rows with labels left (dropped: {dict(dropped)})")
    if taxonomy and labels_col:
        names = set(parents) | {p for ps in parents.values() for p in ps}
        check_against_taxonomy(records, names, Path(taxonomy), csv_path, labels_col, set(attribute_cols))

    # --- images ---------------------------------------------------------------------------------
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
        raise TableError(f"{len(bad)} image(s) missing or unreadable under {image_dir}:\n  " + "\n  ".join(bad[:50])
                         + ("\n  ..." if len(bad) > 50 else "") + "\nfix them, or pass --skip-bad to leave those rows out")
    records = [r for r in records if r["path"] in blobs]

    # --- labels and splits ----------------------------------------------------------------------
    used = Counter(x for r in records for x in r["labels"])
    closure: dict[str, list[str]] = {}

    def ancestors(x: str, trail=()) -> list[str]:
        if x in trail:
            raise TableError(f"taxonomy {taxonomy}: cycle through '{x}'")
        if x not in closure:
            out = []
            for p in parents.get(x, []):
                out += [p, *ancestors(p, (*trail, x))]
            closure[x] = list(dict.fromkeys(out))
        return closure[x]

    nodes = list(dict.fromkeys([a for x in used for a in ancestors(x)] + list(used)))
    label_rows = [{"label": x, "parents": [p for p in parents.get(x, []) if p in nodes]} for x in nodes]
    by_group: dict[str, list[list[str]]] = defaultdict(list)
    for r in records:  # stratify on the closed label sets (rare leaves drive the assignment)
        by_group[r["group"]].append(list(dict.fromkeys(r["labels"] + [a for x in r["labels"] for a in ancestors(x)])))
    assignment = split_groups(by_group, fractions, seed)
    split_names = ("train", "val", "test")
    tables = {}
    for s, split in enumerate(split_names):
        rows = [r for r in records if assignment[r["group"]] == s]
        tables[split] = pa.table({
            "id": pa.array([r["path"] for r in rows], pa.string()),
            "labels": pa.array([r["labels"] for r in rows], pa.list_(pa.string())),
            "image": pa.array([blobs[r["path"]] for r in rows], pa.binary()),
            "group": pa.array([r["group"] for r in rows], pa.string()),
        })
    manifest = Manifest(
        name=name or Path(out).name, input="image", source=str(csv_path.name),
        extra={"importer": "import-images", "image_col": image_col, "labels_col": labels_col,
               "attribute_cols": list(attribute_cols), "group_col": group_col,
               "taxonomy": Path(taxonomy).name if taxonomy else None, "dropped_labels": sorted(drop),
               "split_fractions": list(fractions), "split_seed": seed, "max_side": max_side,
               "skipped_images": [b.split(" ")[0] for b in bad]})
    table = write_table(out, manifest, label_rows, tables, row_group_size=IMAGE_ROW_GROUP)
    report = ImportReport(
        rows=len(records), skipped=bad, dropped_labels=dropped,
        split_rows={sp: tables[sp].num_rows for sp in split_names},
        split_groups={sp: len({g for g, s in assignment.items() if s == i}) for i, sp in enumerate(split_names)})
    return table, report
