"""The label-table format: a directory of Parquet files plus a small JSON manifest.

::

    DIR/
      manifest.json     name, task, input kind, source, licence, format version
      labels.parquet    label (string), parents (list<string>), name (string), depth (int32)
      train.parquet     id (string), labels (list<string>), and one input column:
      val.parquet         image (binary, encoded PNG/JPEG) | image_path (string)
      test.parquet        | features (fixed_size_list<float32>)
      stats.json        cached LabelStats (written by tailsweep, safe to delete)

Every file is plain Parquet, readable by pyarrow, DuckDB, pandas or Ray Data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..inputs import InputError, read_json, read_parquet

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
INPUT_KINDS = ("image", "image_path", "features")
MANIFEST_FILE = "manifest.json"
LABELS_FILE = "labels.parquet"
ROW_GROUP_SIZE = 1024  # rows per Parquet row group: small enough to stream images


class TableError(InputError):
    """A label table that cannot be read at all (missing manifest or label file...)."""


@dataclass(frozen=True)
class Manifest:
    """Dataset-level metadata stored in ``manifest.json``."""

    name: str
    input: str
    task: str = "multilabel"
    source: str = ""
    licence: str = ""
    format_version: int = FORMAT_VERSION
    extra: Mapping[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def split_file(split: str) -> str:
    return f"{split}.parquet"


def hierarchy_depths(labels: Sequence[str], parents: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Depth of every label: 1 for top-level nodes, else 1 + the deepest parent (longest path).

    Unknown parents and self-edges are ignored here (validation reports them); a node on or below a cycle gets 1 +
    the deepest of its parents that are not. Array-based (``_graph.depths``): no loop over the nodes' paths.
    """
    from ._graph import depths, edges_from_names

    child, parent = edges_from_names(labels, parents)
    return dict(zip(labels, depths(child, parent, len(labels)).tolist(), strict=True))


def ancestor_closure_matrix(labels: Sequence[str], parents: Mapping[str, Sequence[str]]):
    """Sparse C x C matrix A with A[j, k] = 1 iff k is j or an ancestor of j.

    Multiplying a multi-hot row by A and clipping closes it upward. Built with sparse products, one per level.
    """
    from ._graph import ancestor_closure, edges_from_names

    child, parent = edges_from_names(labels, parents)
    return ancestor_closure(child, parent, len(labels))


def not_a_table(root: Path) -> str:
    """Why ``root`` (not a folder) is no label table, with the fix that fits what it is."""
    import shlex

    if not root.exists():
        return (
            f"{root}: no such folder; a label table is a folder of Parquet files (make one with `launch data "
            f"import-images`, `launch data import-hmc`, or the demo one with `launch data synth {shlex.quote(str(root))}`)"
        )
    hint = (
        "; a YAML file is a sweep spec (`launch sweep FILE.yaml`) or a taxonomy (`data import-images --taxonomy`)"
        if root.suffix.lower() in (".yaml", ".yml")
        else ""
    )
    return (
        f"{root}: a file, not a label table (a folder holding manifest.json, labels.parquet and the split "
        f"files); pass the table's folder{hint}"
    )


class LabelTable:
    """Read access to a label-table directory.

    Opening reads only the manifest and ``labels.parquet``; splits are read on demand.
    Use :func:`tailsweep.datasets.validate_table` for a full check before training.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest_path = self.root / MANIFEST_FILE
        labels_path = self.root / LABELS_FILE
        if not self.root.is_dir():
            raise TableError(not_a_table(self.root))
        if not manifest_path.is_file():
            raise TableError(
                f"{manifest_path}: missing; every label table needs a manifest.json "
                f"with at least 'name' and 'input' ({'|'.join(INPUT_KINDS)})"
            )
        try:
            raw = read_json(manifest_path, "manifest")
            self.manifest = Manifest(**raw)
        except InputError as exc:
            raise TableError(str(exc)) from None
        except TypeError as exc:
            raise TableError(
                f"{manifest_path}: unreadable manifest ({exc}); expected JSON with keys "
                f"name, input, task, source, licence, format_version, extra"
            ) from None
        if not labels_path.is_file():
            raise TableError(f"{labels_path}: missing; it lists one row per label (label, parents, name)")
        try:
            tbl = read_parquet(labels_path, what="label file (label, parents, name)")
        except InputError as exc:
            raise TableError(str(exc)) from None
        for col in ("label", "parents"):
            if col not in tbl.column_names:
                raise TableError(f"{labels_path}: column '{col}' missing (has {tbl.column_names})")
        self.labels: tuple[str, ...] = tuple(str(x) for x in tbl.column("label").to_pylist())
        parents_col = tbl.column("parents").to_pylist()
        self.parents: dict[str, tuple[str, ...]] = {
            label: tuple(p or ()) for label, p in zip(self.labels, parents_col, strict=True)
        }
        names = tbl.column("name").to_pylist() if "name" in tbl.column_names else self.labels
        self.names: dict[str, str] = {label: (n if n else label) for label, n in zip(self.labels, names, strict=True)}
        self.index: dict[str, int] = {label: i for i, label in enumerate(self.labels)}

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def input_kind(self) -> str:
        return self.manifest.input

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def is_hierarchical(self) -> bool:
        return any(self.parents.values())

    @cached_property
    def depths(self) -> np.ndarray:
        d = hierarchy_depths(self.labels, self.parents)
        return np.array([d[label] for label in self.labels], dtype=np.int32)

    @cached_property
    def closure(self):
        return ancestor_closure_matrix(self.labels, self.parents)

    def path(self, split: str) -> Path:
        return self.root / split_file(split)

    def read(self, split: str, columns: Sequence[str] | None = None) -> pa.Table:
        path = self.path(split)
        if not path.is_file():
            raise TableError(f"{path}: split '{split}' missing")
        try:
            return read_parquet(path, columns, what=f"'{split}' split")
        except InputError as exc:
            raise TableError(str(exc)) from None

    def targets(self, split: str | pa.Table) -> np.ndarray:
        """Ancestor-closed multi-hot targets, shape (N, C), dtype uint8. Unknown labels are dropped
        (validation reports them)."""
        tbl = self.read(split, ["labels"]) if isinstance(split, str) else split
        return self.encode(tbl.column("labels"))

    def encode(self, labels_column: pa.ChunkedArray | pa.Array, close: bool = True) -> np.ndarray:
        """Multi-hot (N, C) uint8 from a list<string> column; ``close`` adds every ancestor."""
        return self.encode_sparse(labels_column, close).astype(np.uint8).toarray()

    def encode_sparse(self, labels_column: pa.ChunkedArray | pa.Array, close: bool = True):
        """Multi-hot targets as a sparse (N, C) CSR matrix of 0/1 int32 (memory O(positives), not N x C);
        unknown labels are dropped (validation reports them); ``close`` adds every ancestor."""
        import scipy.sparse as sp

        col = labels_column
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks() if col.num_chunks else pa.array([], type=pa.list_(pa.string()))
        n = len(col)
        flat = pc.list_flatten(col)
        rows = pc.list_parent_indices(col).to_numpy(zero_copy_only=False)
        idx = pc.index_in(flat, value_set=pa.array(self.labels, type=pa.string()))
        idx_np = idx.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        keep = idx_np >= 0
        y = sp.csr_matrix((np.ones(int(keep.sum()), np.int32), (rows[keep], idx_np[keep])), shape=(n, self.num_labels))
        if close and self.is_hierarchical:
            y = y @ self.closure
        y.sum_duplicates()
        y.data[:] = 1
        return y

    def digest(self) -> str:
        """Content digest of the label file and the three splits (for MLflow and caches); hashed once per
        ``LabelTable`` (a sweep asks for it several times; tables are not rewritten in place)."""
        if getattr(self, "_digest", None) is None:
            self._digest = files_digest([self.root / LABELS_FILE] + [self.path(s) for s in SPLITS])
        return self._digest


def files_digest(paths: Iterable[Path]) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        if p.is_file():
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def write_table(
    root: str | Path,
    manifest: Manifest,
    labels: Sequence[Mapping[str, object]],
    splits: Mapping[str, pa.Table],
    row_group_size: int = ROW_GROUP_SIZE,
) -> LabelTable:
    """Write a label table atomically-enough: files go to a temporary sibling directory that is
    renamed into place, so an interrupted write never leaves a half-written table.

    Args:
        root: target directory (must not exist, or be empty).
        manifest: dataset metadata.
        labels: one mapping per label with keys ``label``, ``parents`` and optionally ``name``.
        splits: ``{"train": table, "val": table, "test": table}``.
        row_group_size: rows per Parquet row group (smaller for images, so readers can stream).
    """
    import os
    import shutil
    import tempfile

    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise TableError(f"{root}: already exists and is not empty; choose a new directory or delete it")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        label_ids = [str(x["label"]) for x in labels]
        parents = {str(x["label"]): list(x.get("parents") or []) for x in labels}
        depths = hierarchy_depths(label_ids, parents)
        tbl = pa.table(
            {
                "label": pa.array(label_ids, pa.string()),
                "parents": pa.array([parents[x] for x in label_ids], pa.list_(pa.string())),
                "name": pa.array([str(x.get("name") or x["label"]) for x in labels], pa.string()),
                "depth": pa.array([depths[x] for x in label_ids], pa.int32()),
            }
        )
        pq.write_table(tbl, tmp / LABELS_FILE)
        for split, table in splits.items():
            pq.write_table(table, tmp / split_file(split), row_group_size=row_group_size)
        (tmp / MANIFEST_FILE).write_text(manifest.to_json())
        if root.exists():
            root.rmdir()
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return LabelTable(root)
