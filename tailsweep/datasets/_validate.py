"""Validation of a label table: every problem at once, each with its file, row or label, and a fix."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ._format import (
    INPUT_KINDS,
    LABELS_FILE,
    MANIFEST_FILE,
    SPLITS,
    LabelTable,
    TableError,
    split_file,
)
from ._graph import cycles

MAX_ROWS_SHOWN = 5


@dataclass(frozen=True)
class Problem:
    """One finding. ``severity`` is ``error`` (training refuses the table) or ``warning``."""

    file: str
    where: str
    message: str
    fix: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        loc = f"{self.file}" + (f" [{self.where}]" if self.where else "")
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{self.severity.upper()}: {loc}: {self.message}{fix}"


class TableValidationError(ValueError):
    """Raised when a table has errors; carries every problem found."""

    def __init__(self, root: Path, problems: list[Problem]):
        self.root = root
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        lines = "\n".join(f"  {p}" for p in errors)
        super().__init__(f"label table {root} has {len(errors)} problem(s):\n{lines}")


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_SHOWN])
    more = f" (+{len(rows) - MAX_ROWS_SHOWN} more)" if len(rows) > MAX_ROWS_SHOWN else ""
    return f"row {shown}{more}" if len(rows) == 1 else f"rows {shown}{more}"


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_list_of(t: pa.DataType, pred) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) and pred(t.value_type)


def _check_hierarchy(table: LabelTable) -> list[Problem]:
    """Duplicate or empty ids, unknown parents, self-edges and cycles; Arrow / NumPy work, Python only per problem."""
    problems: list[Problem] = []
    labels = pa.array(table.labels, pa.string())
    first = pc.index_in(labels, value_set=labels).to_numpy(zero_copy_only=False)  # the first row of each id
    for i in np.flatnonzero(first != np.arange(len(labels))).tolist():
        label = table.labels[i]
        problems.append(
            Problem(
                LABELS_FILE, f"row {i}", f"duplicate label '{label}' (also row {first[i]})", "keep one row per label"
            )
        )
    for i in np.flatnonzero(pc.equal(labels, "").to_numpy(zero_copy_only=False)).tolist():
        problems.append(Problem(LABELS_FILE, f"row {i}", "empty label id", "give every label a non-empty id"))
    parents = pa.array([table.parents[label] for label in table.labels], pa.list_(pa.string()))
    flat = pc.list_flatten(parents)
    child = pc.list_parent_indices(parents).to_numpy(zero_copy_only=False)
    parent = pc.index_in(flat, value_set=labels).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    for k in np.flatnonzero(parent < 0).tolist():
        label, p = table.labels[child[k]], flat[k].as_py()
        problems.append(
            Problem(
                LABELS_FILE,
                f"label '{label}'",
                f"parent '{p}' is not a label",
                f"add a row for '{p}' or remove it from the parents of '{label}'",
            )
        )
    for k in np.flatnonzero(parent == child).tolist():
        label = table.labels[child[k]]
        problems.append(Problem(LABELS_FILE, f"label '{label}'", "is its own parent", "remove the self-edge"))
    ok = (parent >= 0) & (parent != child)
    for cyc in cycles(child[ok], parent[ok], len(labels)):
        names = [table.labels[i] for i in cyc]
        problems.append(
            Problem(
                LABELS_FILE,
                f"label '{names[0]}'",
                "cycle in parents: " + " -> ".join(names),
                "a hierarchy must be a tree or a DAG; remove one edge of the cycle",
            )
        )
    return problems


_EXPECTED = {
    "id": "string",
    "labels": "list<string>",
    "image": "binary",
    "image_path": "string",
    "features": "fixed_size_list<float32>",
}


def _check_columns(tbl: pa.Table, fname: str, input_col: str) -> tuple[list[Problem], set[str]]:
    """Required columns and their types: (problems, the columns that are fine)."""
    required = {"id": _is_string, "labels": lambda t: _is_list_of(t, _is_string)}
    if input_col == "image":
        required["image"] = lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)
    elif input_col == "image_path":
        required["image_path"] = _is_string
    elif input_col == "features":
        required["features"] = lambda t: _is_list_of(t, pa.types.is_floating)
    problems, ok_cols = [], set()
    for col, pred in required.items():
        if col not in tbl.schema.names:
            problems.append(
                Problem(
                    fname,
                    f"column '{col}'",
                    f"missing (columns are {tbl.schema.names})",
                    f"add column '{col}' of type {_EXPECTED[col]}",
                )
            )
        elif not pred(tbl.schema.field(col).type):
            problems.append(
                Problem(
                    fname, f"column '{col}'", f"has type {tbl.schema.field(col).type}", f"expected {_EXPECTED[col]}"
                )
            )
        else:
            ok_cols.add(col)
    return problems, ok_cols


def _null_rows(col) -> list[int]:
    return np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False)).tolist()


def _check_ids(ids: pa.ChunkedArray, fname: str) -> list[Problem]:
    problems = []
    if ids.null_count:
        problems.append(Problem(fname, _rows_text(_null_rows(ids)), "null id", "give every example an id"))
    counts = pc.value_counts(ids.combine_chunks())
    dup = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(dup):
        problems.append(
            Problem(
                fname,
                f"id {dup[:MAX_ROWS_SHOWN].to_pylist()}",
                f"{len(dup)} duplicate id(s)",
                "ids must be unique within a split",
            )
        )
    return problems


def _check_labels(table: LabelTable, col: pa.Array, fname: str, ancestors: str):
    """Null or unknown labels, missing ancestors; (problems, the sparse ancestor-closed targets)."""
    problems = []
    if col.null_count:
        problems.append(
            Problem(fname, _rows_text(_null_rows(col)), "labels is null", "use an empty list for no labels")
        )
    flat = pc.list_flatten(col)
    idx = pc.index_in(flat, value_set=pa.array(table.labels, pa.string())).fill_null(-1)
    unknown = np.flatnonzero(idx.to_numpy(zero_copy_only=False) < 0)
    if len(unknown):
        parent_rows = pc.list_parent_indices(col).to_numpy(zero_copy_only=False)
        by_label: dict[str, list[int]] = defaultdict(list)
        for k in unknown.tolist():  # a loop over the unknown entries only
            by_label[flat[k].as_py()].append(int(parent_rows[k]))
        for label, rows in list(by_label.items())[:20]:
            problems.append(
                Problem(
                    fname,
                    _rows_text(rows),
                    f"unknown label '{label}'",
                    f"add '{label}' to {LABELS_FILE} or fix the row",
                )
            )
        if len(by_label) > 20:
            problems.append(Problem(fname, "", f"... and {len(by_label) - 20} more unknown labels"))
    y = table.encode_sparse(col)
    if table.is_hierarchical and ancestors == "error":
        raw = table.encode_sparse(col, close=False)
        missing = np.flatnonzero(np.diff(y.indptr) != np.diff(raw.indptr)).tolist()  # raw is a subset of y
        if missing:
            problems.append(
                Problem(
                    fname,
                    _rows_text(missing),
                    "labels miss ancestors of listed labels",
                    "list every ancestor, or validate with ancestors='close'",
                )
            )
    return problems, y


def _check_features(feats: pa.Array, fname: str) -> list[Problem]:
    problems = []
    if feats.null_count:
        problems.append(Problem(fname, _rows_text(_null_rows(feats)), "features is null", "fill every row's features"))
    valid_rows = np.flatnonzero(pc.is_valid(feats).to_numpy(zero_copy_only=False))
    lengths = np.unique(pc.list_value_length(feats.filter(pc.is_valid(feats))).to_numpy(zero_copy_only=False))
    if len(lengths) > 1:
        return problems + [
            Problem(
                fname,
                "column 'features'",
                f"rows have different lengths {lengths[:5].tolist()}",
                "every row needs the same number of features",
            )
        ]
    values = pc.list_flatten(feats).to_numpy(zero_copy_only=False)
    if len(values) and len(lengths) and lengths[0]:
        bad = ~np.isfinite(values.reshape(-1, int(lengths[0]))).all(axis=1)
        rows = valid_rows[bad].tolist()
        if rows:
            problems.append(
                Problem(
                    fname,
                    _rows_text(rows),
                    "NaN or infinite feature values",
                    "impute missing values (e.g. the training mean) before import",
                )
            )
    return problems


def _check_image_paths(table: LabelTable, col: pa.ChunkedArray, fname: str) -> list[Problem]:
    problems, rows, files = [], [], {}
    for i, p in enumerate(col.to_pylist()):
        full = Path(p) if p and Path(p).is_absolute() else table.root / (p or "")
        if not p or not full.is_file():
            rows.append(i)
        else:
            files[i] = full
    if rows:
        problems.append(
            Problem(
                fname,
                _rows_text(rows),
                "image_path does not exist",
                "paths are relative to the table directory; fix or drop the rows",
            )
        )
    bad = [i for i, ok in zip(files, _decodable(files.values()), strict=True) if not ok]
    if bad:  # checked as image tables are: the file must decode as an image
        problems.append(
            Problem(
                fname,
                _rows_text(bad),
                "image_path names a file that is not a decodable image",
                "point the rows at PNG/JPEG files, re-encode those files, or drop the rows",
            )
        )
    return problems


def _check_split(table: LabelTable, split: str, ancestors: str) -> tuple[list[Problem], object | None]:
    """A split's problems and its sparse ancestor-closed targets (None when they cannot be read)."""
    fname = split_file(split)
    path = table.path(split)
    if not path.is_file():
        fix = f"write {fname} with columns id, labels and '{table.input_kind}'"
        return [Problem(fname, "", f"split '{split}' is missing", fix)], None
    try:
        tbl = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        return [Problem(fname, "", f"not readable as Parquet ({exc})", "rewrite the file")], None
    problems: list[Problem] = []
    if tbl.num_rows == 0:
        problems.append(Problem(fname, "", f"split '{split}' is empty", "put at least one example in every split"))
    found, ok_cols = _check_columns(tbl, fname, table.input_kind)
    problems += found
    if tbl.num_rows == 0:
        return problems, None
    if "id" in ok_cols:
        problems += _check_ids(tbl.column("id"), fname)
    y = None
    if "labels" in ok_cols:
        found, y = _check_labels(table, tbl.column("labels").combine_chunks(), fname, ancestors)
        problems += found
    if "features" in ok_cols and table.input_kind == "features":
        problems += _check_features(tbl.column("features").combine_chunks(), fname)
    if "image" in ok_cols and table.input_kind == "image":
        rows = _undecodable_images(tbl.column("image"))
        if rows:
            problems.append(
                Problem(
                    fname,
                    _rows_text(rows),
                    "image bytes cannot be decoded",
                    "re-encode those images as PNG/JPEG or drop the rows",
                )
            )
    if "image_path" in ok_cols and table.input_kind == "image_path":
        problems += _check_image_paths(table, tbl.column("image_path"), fname)
    return problems, y


def _decodable(sources) -> list[bool]:
    """For each image (encoded bytes or a file path): does Pillow decode it?"""
    from PIL import Image

    out = []
    for src in sources:
        try:
            if src is None:
                raise ValueError("null")
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
                im.load()
            out.append(True)
        except Exception:
            out.append(False)
    return out


def _undecodable_images(col: pa.ChunkedArray) -> list[int]:
    return [i for i, ok in enumerate(_decodable(col.to_pylist())) if not ok]


def _training_rows(y_train) -> list[Problem]:
    """Training rows without any label (``y_train``: sparse targets): an error when every row is so (nothing to
    learn), else a warning."""
    empty = np.flatnonzero(np.asarray(y_train.sum(axis=1)).ravel() == 0).tolist()
    if len(empty) == y_train.shape[0]:
        return [
            Problem(
                split_file("train"),
                "column 'labels'",
                f"none of the {len(empty)} training rows has a label: there is nothing to learn",
                "fill the labels column (check the importer's --labels-col / --attribute-cols and --drop-labels)",
            )
        ]
    if empty:
        return [
            Problem(
                split_file("train"),
                _rows_text(empty),
                f"{len(empty)} of {y_train.shape[0]} training rows have no label (negatives for every label)",
                "label them, or drop them if they are unlabelled rather than negative",
                severity="warning",
            )
        ]
    return []


def validate_table(root: str | Path, ancestors: str = "close") -> list[Problem]:
    """Check a label table and return every problem found (errors and warnings).

    Args:
        root: the table directory.
        ancestors: ``"close"`` (rows may list only the most specific labels; ancestors are
            added) or ``"error"`` (every ancestor must be listed).
    """
    root = Path(root)
    problems: list[Problem] = []
    try:
        table = LabelTable(root)
    except TableError as exc:  # "<file>: what is wrong": the file as the problem's place
        path, _, why = str(exc).partition(": ")
        name = Path(path).name
        return [Problem(name if name in (MANIFEST_FILE, LABELS_FILE) else str(root), "", why or str(exc))]
    if table.manifest.input not in INPUT_KINDS:
        problems.append(
            Problem(
                MANIFEST_FILE,
                "key 'input'",
                f"unknown input kind '{table.manifest.input}'",
                f"use one of {', '.join(INPUT_KINDS)}",
            )
        )
    if not table.labels:
        problems.append(Problem(LABELS_FILE, "", "no labels", "list at least one label"))
    problems += _check_hierarchy(table)
    targets = {}
    for split in SPLITS:
        found, y = _check_split(table, split, ancestors)
        problems += found
        targets[split] = y
    y_train = targets.get("train")
    if y_train is not None and y_train.shape[0]:
        problems += _training_rows(y_train)
        counts = np.asarray(y_train.sum(axis=0)).ravel()
        zero = [table.labels[j] for j in np.flatnonzero(counts == 0)]
        if zero:
            shown = ", ".join(f"'{x}'" for x in zero[:MAX_ROWS_SHOWN])
            more = f" (+{len(zero) - MAX_ROWS_SHOWN} more)" if len(zero) > MAX_ROWS_SHOWN else ""
            problems.append(
                Problem(
                    split_file("train"),
                    f"labels {shown}{more}",
                    f"{len(zero)} label(s) have no training positives (weight 1, excluded from frequency statistics)",
                    "add examples or drop the labels",
                    severity="warning",
                )
            )
    return problems


def check_table(root: str | Path) -> LabelTable:
    """Open a table after validating it; raise :class:`TableValidationError` listing every error."""
    problems = validate_table(root)
    if any(p.severity == "error" for p in problems):
        raise TableValidationError(Path(root), problems)
    return LabelTable(root)


def problems_to_json(problems: list[Problem]) -> str:
    return json.dumps([p.__dict__ for p in problems], indent=2)
