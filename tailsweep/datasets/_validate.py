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
    return (
        pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    ) and pred(t.value_type)


def _check_hierarchy(table: LabelTable) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, label in enumerate(table.labels):
        if label in seen:
            problems.append(Problem(LABELS_FILE, f"row {i}", f"duplicate label '{label}' (also row {seen[label]})",
                                    "keep one row per label"))
        seen.setdefault(label, i)
        if not label:
            problems.append(Problem(LABELS_FILE, f"row {i}", "empty label id", "give every label a non-empty id"))
    known = set(table.labels)
    for label, parents in table.parents.items():
        for p in parents:
            if p not in known:
                problems.append(Problem(LABELS_FILE, f"label '{label}'", f"parent '{p}' is not a label",
                                        f"add a row for '{p}' or remove it from the parents of '{label}'"))
            if p == label:
                problems.append(Problem(LABELS_FILE, f"label '{label}'", "is its own parent", "remove the self-edge"))
    # cycle detection (iterative DFS, colours)
    colour: dict[str, int] = {}
    for start in table.labels:
        if colour.get(start):
            continue
        stack = [(start, iter(table.parents.get(start, ())))]
        colour[start] = 1
        path = [start]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            if nxt not in known or nxt == node:
                continue
            c = colour.get(nxt, 0)
            if c == 1:
                cyc = path[path.index(nxt):] + [nxt]
                problems.append(Problem(LABELS_FILE, f"label '{nxt}'", "cycle in parents: " + " -> ".join(cyc),
                                        "a hierarchy must be a tree or a DAG; remove one edge of the cycle"))
            elif c == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(table.parents.get(nxt, ()))))
                path.append(nxt)
    return problems


def _check_split(table: LabelTable, split: str, ancestors: str) -> tuple[list[Problem], np.ndarray | None]:
    fname = split_file(split)
    path = table.path(split)
    if not path.is_file():
        return [Problem(fname, "", f"split '{split}' is missing", f"write {fname} with columns id, labels and "
                        f"'{table.input_kind}'")], None
    try:
        tbl = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        return [Problem(fname, "", f"not readable as Parquet ({exc})", "rewrite the file")], None
    problems: list[Problem] = []
    schema = tbl.schema
    if tbl.num_rows == 0:
        problems.append(Problem(fname, "", f"split '{split}' is empty", "put at least one example in every split"))
    required = {"id": _is_string, "labels": lambda t: _is_list_of(t, _is_string)}
    input_col = table.input_kind
    if input_col == "image":
        required["image"] = lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)
    elif input_col == "image_path":
        required["image_path"] = _is_string
    elif input_col == "features":
        required["features"] = lambda t: _is_list_of(t, pa.types.is_floating)
    expected = {"id": "string", "labels": "list<string>", "image": "binary", "image_path": "string",
                "features": "fixed_size_list<float32>"}
    ok_cols = set()
    for col, pred in required.items():
        if col not in schema.names:
            problems.append(Problem(fname, f"column '{col}'", f"missing (columns are {schema.names})",
                                    f"add column '{col}' of type {expected[col]}"))
        elif not pred(schema.field(col).type):
            problems.append(Problem(fname, f"column '{col}'", f"has type {schema.field(col).type}",
                                    f"expected {expected[col]}"))
        else:
            ok_cols.add(col)
    if tbl.num_rows == 0:
        return problems, None

    if "id" in ok_cols:
        ids = tbl.column("id")
        if ids.null_count:
            rows = np.flatnonzero(pc.is_null(ids).to_numpy(zero_copy_only=False)).tolist()
            problems.append(Problem(fname, _rows_text(rows), "null id", "give every example an id"))
        counts = pc.value_counts(ids.combine_chunks())
        dup = [v["values"].as_py() for v in counts if v["counts"].as_py() > 1]
        if dup:
            problems.append(Problem(fname, f"id {dup[:MAX_ROWS_SHOWN]}", f"{len(dup)} duplicate id(s)",
                                    "ids must be unique within a split"))

    y = None
    if "labels" in ok_cols:
        col = tbl.column("labels").combine_chunks()
        if col.null_count:
            rows = np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False)).tolist()
            problems.append(Problem(fname, _rows_text(rows), "labels is null", "use an empty list for no labels"))
        flat = pc.list_flatten(col)
        parent_rows = pc.list_parent_indices(col).to_numpy(zero_copy_only=False)
        idx = pc.index_in(flat, value_set=pa.array(table.labels, pa.string())).fill_null(-1)
        unknown = np.flatnonzero(idx.to_numpy(zero_copy_only=False) < 0)
        if len(unknown):
            by_label: dict[str, list[int]] = defaultdict(list)
            for k in unknown:
                by_label[flat[int(k)].as_py()].append(int(parent_rows[k]))
            for label, rows in list(by_label.items())[:20]:
                problems.append(Problem(fname, _rows_text(rows), f"unknown label '{label}'",
                                        f"add '{label}' to {LABELS_FILE} or fix the row"))
            if len(by_label) > 20:
                problems.append(Problem(fname, "", f"... and {len(by_label) - 20} more unknown labels"))
        y = table.encode(col)
        if table.is_hierarchical:
            raw = table.encode(col, close=False)
            if ancestors == "error":
                missing = np.flatnonzero((y != raw).any(axis=1)).tolist()
                if missing:
                    problems.append(Problem(fname, _rows_text(missing), "labels miss ancestors of listed labels",
                                            "list every ancestor, or validate with ancestors='close'"))

    if input_col == "features" and "features" in ok_cols:
        feats = tbl.column("features").combine_chunks()
        if feats.null_count:
            rows = np.flatnonzero(pc.is_null(feats).to_numpy(zero_copy_only=False)).tolist()
            problems.append(Problem(fname, _rows_text(rows), "features is null", "fill every row's features"))
        lengths = pc.list_value_length(feats).to_numpy(zero_copy_only=False)
        lengths = lengths[~np.isnan(lengths.astype(float))] if feats.null_count else lengths
        if len(set(lengths.tolist())) > 1:
            problems.append(Problem(fname, "column 'features'", f"rows have different lengths {sorted(set(lengths.tolist()))[:5]}",
                                    "every row needs the same number of features"))
        else:
            values = pc.list_flatten(feats).to_numpy(zero_copy_only=False).astype(np.float64)
            if len(values) and len(lengths):
                dim = int(lengths[0])
                bad = ~np.isfinite(values.reshape(-1, dim)).all(axis=1) if dim else np.zeros(0, bool)
                valid_rows = np.flatnonzero(~pc.is_null(feats).to_numpy(zero_copy_only=False))
                rows = valid_rows[bad].tolist()
                if rows:
                    problems.append(Problem(fname, _rows_text(rows), "NaN or infinite feature values",
                                            "impute missing values (e.g. the training mean) before import"))
    if input_col == "image" and "image" in ok_cols:
        rows = _undecodable_images(tbl.column("image"))
        if rows:
            problems.append(Problem(fname, _rows_text(rows), "image bytes cannot be decoded",
                                    "re-encode those images as PNG/JPEG or drop the rows"))
    if input_col == "image_path" and "image_path" in ok_cols:
        rows, files = [], {}
        for i, p in enumerate(tbl.column("image_path").to_pylist()):
            full = Path(p) if p and Path(p).is_absolute() else table.root / (p or "")
            if not p or not full.is_file():
                rows.append(i)
            else:
                files[i] = full
        if rows:
            problems.append(Problem(fname, _rows_text(rows), "image_path does not exist",
                                    "paths are relative to the table directory; fix or drop the rows"))
        bad = [i for i, ok in zip(files, _decodable(files.values()), strict=True) if not ok]
        if bad:  # checked as image tables are: the file must decode as an image
            problems.append(Problem(fname, _rows_text(bad), "image_path names a file that is not a decodable image",
                                    "point the rows at PNG/JPEG files, re-encode those files, or drop the rows"))
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
    except TableError as exc:
        msg = str(exc)
        fname = MANIFEST_FILE if MANIFEST_FILE in msg else LABELS_FILE
        return [Problem(fname, "", msg.split(": ", 1)[-1])]
    if table.manifest.input not in INPUT_KINDS:
        problems.append(Problem(MANIFEST_FILE, "key 'input'", f"unknown input kind '{table.manifest.input}'",
                                f"use one of {', '.join(INPUT_KINDS)}"))
    if not table.labels:
        problems.append(Problem(LABELS_FILE, "", "no labels", "list at least one label"))
    problems += _check_hierarchy(table)
    targets = {}
    for split in SPLITS:
        found, y = _check_split(table, split, ancestors)
        problems += found
        targets[split] = y
    y_train = targets.get("train")
    if y_train is not None and len(y_train):
        counts = y_train.sum(axis=0)
        zero = [table.labels[j] for j in np.flatnonzero(counts == 0)]
        if zero:
            shown = ", ".join(f"'{x}'" for x in zero[:MAX_ROWS_SHOWN])
            more = f" (+{len(zero) - MAX_ROWS_SHOWN} more)" if len(zero) > MAX_ROWS_SHOWN else ""
            problems.append(Problem(split_file("train"), f"labels {shown}{more}",
                                    f"{len(zero)} label(s) have no training positives (weight 1, excluded from "
                                    "frequency statistics)", "add examples or drop the labels", severity="warning"))
    return problems


def check_table(root: str | Path) -> LabelTable:
    """Open a table after validating it; raise :class:`TableValidationError` listing every error."""
    problems = validate_table(root)
    if any(p.severity == "error" for p in problems):
        raise TableValidationError(Path(root), problems)
    return LabelTable(root)


def problems_to_json(problems: list[Problem]) -> str:
    return json.dumps([p.__dict__ for p in problems], indent=2)
