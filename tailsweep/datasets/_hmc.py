"""Import the hierarchical multi-label (HMC) benchmarks in their ARFF form into label tables.

The format (C-HMCNN's ``HMC_data``, after Vens et al. 2008): a standard ARFF header whose last
attribute is ``class hierarchical <tokens>``. Tree hierarchies (FunCat ``*_FUN``) list full paths
(``01/01/03``: every prefix is a node); DAG hierarchies (Gene Ontology ``*_GO``) list edges
``parent/child`` starting from ``root/<namespace>``. Data rows are dense comma-separated values with
``?`` for missing, the last field being ``@``-separated labels (paths for trees, ids for DAGs),
mostly the most specific ones (the table closes them upward). Generic ARFF readers reject the
``hierarchical`` type, so the header is parsed here and the data section by Arrow's CSV reader (all values as
strings, then cast column by column: no Python loop over rows). Nominal features are one-hot encoded.

Preprocessing (recorded in the manifest):

* ``chmcnn`` (the default, C-HMCNN's own code): each split's missing values are filled with *that split's*
  column means, then every split is standardised with a scaler fitted on the filled train + val rows (on the
  one training file for the ``others`` sets, which have no validation file);
* ``trainval``: the leak-free variant -- the imputer's means and the scaler both fitted on train + val and
  applied to every split (the test split's own statistics are never used; tailsweep's default before);
* ``impute``: mean-impute fitted on train only, no scaling.
"""

from __future__ import annotations

import gzip
import io
import re
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ._format import LabelTable, Manifest, TableError, write_table

SPLIT_FILES = {"train": "train", "val": "valid", "test": "test"}
PUBLIC_URL = "https://raw.githubusercontent.com/EGiunchiglia/C-HMCNN/master/HMC_data/{group}/{name}/{name}.{split}.arff"
PREPROCESS = ("chmcnn", "trainval", "impute")
_ATTR = re.compile(r"^@attribute\s+('(?:[^']|\\')*'|\"[^\"]*\"|\S+)\s+(.+?)\s*$", re.IGNORECASE)


def _read_text(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, OSError) as exc:
        what = (
            "truncated"
            if isinstance(exc, EOFError)
            else "not a valid gzip file"
            if path.suffix == ".gz"
            else "unreadable"
        )
        raise TableError(
            f"{path}: {what} ({exc or type(exc).__name__}); fetch the file again (or gunzip -t it to check)"
        ) from None


@dataclass
class Arff:
    """A parsed ARFF file: the header, and the data section as Arrow arrays (one pass in C, no loop over rows)."""

    names: list[str]
    kinds: list[str | list[str]]  # "numeric" or the nominal categories
    hierarchy: list[str]  # the class tokens
    data: pa.Table  # one string column per feature, values trimmed of blanks and quotes
    labels: pa.ListArray  # list<string> per row, empty entries dropped
    source: str = "<arff>"
    rows: np.ndarray = None  # each row's index among the file's data rows (a subset keeps its rows' numbers)
    _text: str = ""  # the data section, for the file lines of rows named in errors
    _first_line: int = 0  # the file line just before the data section

    def take(self, idx: np.ndarray) -> Arff:
        """The rows ``idx`` (their file lines are kept)."""
        a = pa.array(idx)
        return replace(self, data=self.data.take(a), labels=self.labels.take(a), rows=self.rows[idx])

    def lines(self, idx) -> list[int]:
        """The file line of each of the rows ``idx`` (1-based). Only error paths call it: one scan of the data."""
        data_lines = [
            self._first_line + k + 1
            for k, raw in enumerate(self._text.splitlines())
            if raw.strip() and not raw.strip().startswith("%")
        ]
        return [data_lines[int(self.rows[i])] for i in idx]


_SKIPPED = re.compile(
    r"^[ \t]*(?:%[^\n]*)?(?:\r?\n|\r?\Z)", re.MULTILINE
)  # blank and comment lines of the data section
_TRIM = " \t\r'\""


def _header(text: str, source: str) -> tuple[list[str], list, list[str], int, int]:
    """(names, kinds, hierarchy tokens, offset of the data section, its line number). Loops over header lines."""
    names, kinds, hierarchy = [], [], None
    pos, lineno = 0, 0
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line, pos, lineno = text[pos:end].strip(), end + 1, lineno + 1
        if not line or line.startswith("%") or line.lower().startswith("@relation"):
            continue
        if line.lower().startswith("@data"):
            if hierarchy is None:
                raise TableError(f"{source}: no '@ATTRIBUTE class hierarchical ...' before @DATA")
            return names, kinds, hierarchy, pos, lineno
        m = _ATTR.match(line)
        if not m:
            raise TableError(f"{source}:{lineno}: cannot parse header line {line[:80]!r}")
        name, typ = m.group(1).strip("'\""), m.group(2).strip()
        if typ.lower().startswith("hierarchical"):
            tokens = typ.split(None, 1)[1] if " " in typ or "\t" in typ else ""
            hierarchy = list(dict.fromkeys(t.strip() for t in tokens.split(",") if t.strip()))  # dedupe
        elif typ.startswith("{"):
            names.append(name)
            kinds.append([c.strip().strip("'\"") for c in typ.strip("{}").split(",")])
        elif typ.lower() in ("numeric", "real", "integer"):
            names.append(name)
            kinds.append("numeric")
        else:
            raise TableError(f"{source}:{lineno}: attribute {name!r} has unsupported type {typ!r}")
    raise TableError(f"{source}: no @DATA section")


def _wrong_width(text: str, first_line: int, width: int, source: str) -> TableError:
    for k, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if line and not line.startswith("%") and len(line.split(",")) != width:
            return TableError(
                f"{source}:{first_line + k + 1}: {len(line.split(','))} fields, expected {width} "
                f"({width - 1} features + labels)"
            )
    return TableError(f"{source}: rows of different widths; every row needs {width} comma-separated fields")


def parse_arff(text: str, source: str = "<arff>") -> Arff:
    names, kinds, hierarchy, offset, first_line = _header(text, source)
    raw = text[offset:]
    width = len(names) + 1
    columns = [f"f{j}" for j in range(width)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(_SKIPPED.sub("", raw).encode()),
            read_options=pacsv.ReadOptions(column_names=columns),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid:
        raise _wrong_width(raw, first_line, width, source) from None
    trimmed = [pc.utf8_trim(table.column(c), _TRIM).combine_chunks() for c in columns]
    parts = pc.split_pattern(trimmed[-1], "@")
    values = pc.utf8_trim_whitespace(pc.list_flatten(parts))
    keep = pc.not_equal(values, "").to_numpy(zero_copy_only=False)
    owner = pc.list_parent_indices(parts).to_numpy(zero_copy_only=False)[keep]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=table.num_rows))]).astype(np.int32)
    labels = pa.ListArray.from_arrays(pa.array(offsets), values.filter(pa.array(keep)))
    data = pa.table(dict(zip(names, trimmed[:-1], strict=True))) if names else pa.table({})
    return Arff(names, kinds, hierarchy, data, labels, source, np.arange(table.num_rows), raw, first_line)


def hierarchy_nodes(tokens: list[str]) -> tuple[str, dict[str, list[str]], set[str]]:
    """(kind, parents, dropped): kind is 'tree' or 'dag'; dropped are artificial roots."""
    if tokens and tokens[0].startswith("root/"):
        parents: dict[str, list[str]] = {}
        for t in tokens:
            p, _, c = t.partition("/")
            parents.setdefault(c, [])
            if p not in parents[c]:
                parents[c].append(p)
        # GO: drop the artificial root and the three namespace roots below it (C-HMCNN's outputs)
        dropped = {"root"} | {c for c, ps in parents.items() if ps == ["root"]}
        clean = {c: [p for p in ps if p not in dropped] for c, ps in parents.items() if c not in dropped}
        return "dag", clean, dropped
    parents = {}
    for t in tokens:  # a node and any missing prefix above it, top down: each node is made once (O(nodes) in all)
        chain, node = [], t
        while node and node not in parents:
            chain.append(node)
            node = node.rpartition("/")[0]
        for node in reversed(chain):
            up = node.rpartition("/")[0]
            parents[node] = [up] if up else []
    return "tree", parents, set()


def _numeric(arff: Arff, j: int) -> np.ndarray:
    col = arff.data.column(j).combine_chunks()
    col = pc.if_else(pc.equal(col, "?"), pa.scalar(None, pa.string()), col)
    try:
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    bad = []  # error path only: find the rows that do not parse
    for i, v in enumerate(col.to_pylist()):
        try:
            float(v) if v is not None else None
        except ValueError:
            bad.append(i)
            if len(bad) == 5:
                break
    shown = ", ".join(f"line {line}: {col[i].as_py()!r}" for i, line in zip(bad, arff.lines(bad), strict=True))
    raise TableError(
        f"{arff.source}:{arff.lines(bad[:1])[0]}: attribute {arff.names[j]!r} is numeric but has a value that is not "
        f"a number ({shown}); write the number, or '?' for a missing value"
    )


def _features(arff: Arff) -> np.ndarray:
    n = len(arff.labels)
    cols = []
    for j, kind in enumerate(arff.kinds):
        if kind == "numeric":
            cols.append(_numeric(arff, j)[:, None])
            continue
        idx = pc.index_in(arff.data.column(j), value_set=pa.array(kind, pa.string()))
        idx = idx.fill_null(-1).to_numpy(zero_copy_only=False)  # '?' and unlisted categories: all zeros
        onehot = np.zeros((n, len(kind)))
        rows = np.flatnonzero(idx >= 0)
        onehot[rows, idx[rows]] = 1.0
        cols.append(onehot)
    return np.concatenate(cols, axis=1) if cols else np.zeros((n, 0))


def _fill(f: np.ndarray, mean: np.ndarray) -> None:
    mean = np.where(np.isnan(mean), 0.0, mean)  # a column missing everywhere -> 0
    f[np.isnan(f)] = np.take(mean, np.nonzero(np.isnan(f))[1])


def preprocess_features(feats: dict[str, np.ndarray], preprocess: str) -> None:
    """Impute (and standardise) the splits' feature matrices in place, as ``preprocess`` says (module doc)."""
    fit_splits = [s for s in ("train", "val") if s in feats]
    with np.errstate(all="ignore"):
        if preprocess == "chmcnn":
            for f in feats.values():
                _fill(f, np.nanmean(f, axis=0))
        else:
            fit = np.concatenate([feats[s] for s in (fit_splits if preprocess == "trainval" else ["train"])])
            mean = np.nanmean(fit, axis=0)
            for f in feats.values():
                _fill(f, mean)
    if preprocess in ("chmcnn", "trainval"):
        filled = np.concatenate([feats[s] for s in fit_splits])
        mu, sd = filled.mean(axis=0), filled.std(axis=0)
        sd = np.where(sd == 0, 1.0, sd)  # as sklearn's StandardScaler
        for split in feats:
            feats[split] = (feats[split] - mu) / sd


# The ``others`` sets (docs/methods.md section 4): C-HMCNN's ``HMC_data/others/`` holds, side by side, a train or
# trainvalid file and a test file per set, with capitalised names and no validation file.
OTHERS = {
    "diatoms_others": "Diatoms",
    "enron_others": "Enron_corr",
    "imclef07a_others": "ImCLEF07A",
    "imclef07d_others": "ImCLEF07D",
}
OTHERS_URL = "https://raw.githubusercontent.com/EGiunchiglia/C-HMCNN/master/HMC_data/others/{file}"
OTHERS_FILES = {
    "diatoms_others": ("Diatoms_train.arff", "Diatoms_test.arff"),
    "enron_others": ("Enron_corr_trainvalid.arff", "Enron_corr_test.arff"),
    "imclef07a_others": ("ImCLEF07A_Train.arff", "ImCLEF07A_Test.arff"),
    "imclef07d_others": ("ImCLEF07D_Train.arff", "ImCLEF07D_Test.arff"),
}
VAL_FROM_TRAIN = 0.1  # share of an ``others`` training file carved out as the validation split


def _find_others(name: str, data_dir: Path) -> dict[str, Path]:
    prefix = OTHERS[name].lower()
    folders = [d for d in (data_dir / name, data_dir / "others", data_dir) if d.is_dir()]
    found: dict[str, Path] = {}
    for folder in folders:
        for f in sorted(folder.iterdir()):
            low = f.name.lower()
            for ext in (".arff.gz", ".arff"):
                if not low.endswith(ext) or not low.startswith(prefix + "_"):
                    continue
                part = low[len(prefix) + 1 : -len(ext)]
                split = {"train": "train", "trainvalid": "train", "test": "test"}.get(part)
                if split and split not in found:
                    found[split] = f
        if found:
            break
    where = ", ".join(str(d) for d in folders) or str(data_dir)
    train_name, test_name = OTHERS_FILES[name]
    missing = [
        label
        for split, label in (("train", f"{train_name} (or {OTHERS[name]}_trainvalid.arff)"), ("test", test_name))
        if split not in found
    ]
    if missing:
        raise TableError(
            f"dataset '{name}': missing {' and '.join(missing)} (.arff or .arff.gz) in {where}; an "
            f"'others' set needs its train (or trainvalid) file and its test file side by side "
            f"(C-HMCNN's HMC_data/others layout; --download fetches them where the network allows)"
        )
    return found


def find_files(name: str, data_dir: Path) -> dict[str, Path]:
    """The ARFF file of each split: ``train``/``val``/``test`` for the FUN and GO sets, ``train``/``test`` for
    the ``others`` sets (their layout: see OTHERS)."""
    if name in OTHERS:
        return _find_others(name, data_dir)
    folder = data_dir / name
    files = {}
    missing = []
    for split, suffix in SPLIT_FILES.items():
        candidates = [folder / f"{name}.{suffix}.arff.gz", folder / f"{name}.{suffix}.arff"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            missing.append(candidates[0])
        files[split] = found
    if missing:
        raise TableError(
            f"dataset '{name}': missing {', '.join(str(m) for m in missing)}; every HMC dataset needs "
            f"its train, valid and test ARFF files (download them with --download where the network "
            f"allows, or pick another dataset)"
        )
    return files


def download_hmc(name: str, dest: Path) -> Path:
    """Fetch the ARFF files of ``name`` from C-HMCNN's public repository into ``dest/name``."""
    folder = dest / name
    folder.mkdir(parents=True, exist_ok=True)
    if name in OTHERS:
        targets = {f: OTHERS_URL.format(file=f) for f in OTHERS_FILES[name]}
    else:
        group = "datasets_GO" if name.endswith("_GO") else "datasets_FUN"
        targets = {
            f"{name}.{suffix}.arff": PUBLIC_URL.format(group=group, name=name, split=suffix)
            for suffix in SPLIT_FILES.values()
        }
    for file, url in targets.items():
        target = folder / file
        if not target.exists():
            with urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 (fixed https URL)
                target.write_bytes(r.read())
    return folder


def _check_labels(name: str, parsed: dict[str, Arff], known: pa.Array, dropped: pa.Array) -> None:
    """Every label of every row must be a node of the header's hierarchy (or an artificial root)."""
    unknown = []
    for a in parsed.values():
        flat = pc.list_flatten(a.labels)
        bad = pc.and_(pc.invert(pc.is_in(flat, value_set=known)), pc.invert(pc.is_in(flat, value_set=dropped)))
        where = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
        if len(where):
            rows = pc.list_parent_indices(a.labels).to_numpy(zero_copy_only=False)[where[:10]]
            lines = a.lines(rows)
            unknown += [
                (Path(a.source).name, line, flat[int(k)].as_py()) for k, line in zip(where, lines, strict=False)
            ]
            unknown += [None] * (len(where) - len(lines))
    if unknown:
        shown = "; ".join(f"{f}:{line}: {label!r}" for f, line, label in [u for u in unknown if u][:10])
        more = f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""
        raise TableError(
            f"dataset '{name}': {len(unknown)} label(s) not in the header's hierarchy -- {shown}{more}; "
            "every label of a row must be a node of '@ATTRIBUTE class hierarchical ...' (fix the row or "
            "add the node to the header)"
        )


def _split_table(split: str, a: Arff, feats: np.ndarray, known: pa.Array) -> pa.Table:
    """A split's Arrow table: ids, the labels that are nodes (artificial roots dropped), float32 features."""
    flat = pc.list_flatten(a.labels)
    keep = pc.is_in(flat, value_set=known)
    owner = pc.list_parent_indices(a.labels).to_numpy(zero_copy_only=False)[keep.to_numpy(zero_copy_only=False)]
    n = len(a.labels)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))]).astype(np.int32)
    labels = pa.ListArray.from_arrays(pa.array(offsets), flat.filter(keep))
    ids = pc.binary_join_element_wise(pa.scalar(split), pa.array(np.arange(n)).cast(pa.string()), "")
    f = feats.astype(np.float32)
    return pa.table(
        {
            "id": ids,
            "labels": labels,
            "features": pa.FixedSizeListArray.from_arrays(pa.array(f.ravel(), pa.float32()), f.shape[1]),
        }
    )


def import_hmc(name: str, out: str | Path, data_dir: str | Path, preprocess: str = "chmcnn") -> LabelTable:
    """Read ``data_dir/name/name.{train,valid,test}.arff[.gz]`` and write a features label table."""
    if preprocess not in PREPROCESS:
        raise TableError(f"preprocess {preprocess!r} unknown; use one of {', '.join(PREPROCESS)}")
    files = find_files(name, Path(data_dir))
    parsed = {split: parse_arff(_read_text(p), str(p)) for split, p in files.items()}
    val_from_train = None
    kind, parents, dropped = hierarchy_nodes(parsed["train"].hierarchy)
    feats = {split: _features(a) for split, a in parsed.items()}
    dims = {split: f.shape[1] for split, f in feats.items()}
    if len(set(dims.values())) != 1:
        raise TableError(f"dataset '{name}': splits have different feature dimensions {dims}")
    preprocess_features(feats, preprocess)  # an 'others' set: fitted on its one training file
    if "val" not in parsed:  # no validation file: carve one from the training file, seeded, and say so
        val_from_train = VAL_FROM_TRAIN
        n = len(parsed["train"].labels)
        val_rows = np.sort(np.random.default_rng(0).permutation(n)[: max(1, round(n * val_from_train))])
        keep = np.setdiff1d(np.arange(n), val_rows)
        a = parsed["train"]
        parsed["val"], parsed["train"] = a.take(val_rows), a.take(keep)
        feats["val"], feats["train"] = feats["train"][val_rows], feats["train"][keep]
        parsed = {s: parsed[s] for s in ("train", "val", "test")}
    _check_labels(name, parsed, known := pa.array(list(parents), pa.string()), pa.array(sorted(dropped), pa.string()))
    tables = {split: _split_table(split, a, feats[split], known) for split, a in parsed.items()}
    label_rows = [{"label": node, "parents": ps, "name": node} for node, ps in parents.items()]
    manifest = Manifest(
        name=name,
        input="features",
        source=f"C-HMCNN HMC_data ({name}; Vens et al. 2008)",
        licence="GPL-3.0 (C-HMCNN repository); cite the original data authors",
        extra={
            "hierarchy": kind,
            "preprocess": preprocess,
            "features": int(dims["train"]),
            "layout": "others" if name in OTHERS else "train/valid/test",
            "val_from_train": val_from_train,
            "dropped_roots": sorted(dropped),
            "files": {s: p.name for s, p in files.items()},
        },
    )
    return write_table(out, manifest, label_rows, tables)
