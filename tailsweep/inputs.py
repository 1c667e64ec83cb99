"""Every file and value a user hands over, read in one place: a read error becomes one message that names the
file (and, where known, the line, column, row or key), what is wrong and the fix -- never a traceback.

    table = read_parquet(path, what="label file")      # InputError: "labels.parquet: not readable as Parquet ..."
    doc = read_json(path)                              # InputError: "manifest.json: not UTF-8 text (byte 3) ..."
    doc = read_yaml(path, what="cluster config")       # InputError: "c.yaml: not valid YAML at line 4, column 7 ..."
    why = sqlite_store_problem(db)                     # None, or why db is not an MLflow store to read
    why = writable_dir_problem(path, "tracking.dir")   # None, or why nothing can be written under path

Command-line values get the same checks as the spec's keys (:func:`int_list`, :func:`number`, :func:`port_problem`, :func:`url_problem`).
:class:`InputError` is a ``ValueError``; the CLI turns it into exit code 2 with the message. Imports nothing heavy
at module level (pyarrow and yaml when a file of that kind is read).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

SQLITE_HEADER = b"SQLite format 3\x00"


class InputError(ValueError):
    """A file or value the user handed over cannot be used; the message says which, where, and the fix."""


def read_bytes_text(path: Path, what: str = "file") -> str:
    """A UTF-8 text file's text; InputError naming the file (missing, a folder, unreadable, binary)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: a folder, not a {what}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}) -- a binary or otherwise encoded file, "
            f"not a {what}; write it as UTF-8 text"
        ) from None
    if "\x00" in text:
        raise InputError(f"{path}: holds NUL bytes -- a binary file, not a {what}; write it as UTF-8 text")
    return text


def read_json(path: Path, what: str = "JSON file") -> Any:
    """A JSON document; InputError with the file, line and column of a syntax error."""
    import json

    text = read_bytes_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); fix the {what}"
        ) from None


def read_yaml(path: Path, what: str = "YAML file") -> Any:
    """A YAML document; InputError with the file, line and column of a syntax error."""
    import yaml

    text = read_bytes_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        why = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise InputError(f"{path}: not valid YAML{where} ({why}); fix the {what}") from None


def read_parquet(path: Path, columns=None, what: str = "Parquet file"):
    """A Parquet file as a pyarrow Table; InputError naming the file when it is missing or not Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {'a folder' if path.is_dir() else 'missing'}; expected the {what}")
    try:
        return pq.read_table(path, columns=list(columns) if columns else None)
    except (pa.ArrowException, OSError, ValueError) as exc:  # ArrowInvalid, a truncated file, a missing column
        why = re.sub(r"^Could not open Parquet input source '[^']*': ", "", " ".join(str(exc).split()))
        raise InputError(
            f"{path}: not readable as Parquet ({why}); the {what} is damaged or not Parquet -- write it again"
        ) from None


def sqlite_store_problem(db: Path, option: str = "--dir") -> str | None:
    """None if ``db`` is an MLflow SQLite store that can be read without changing it; else why not (a store to
    *read* must exist, be a SQLite database and hold MLflow's tables -- MLflow would create or upgrade one)."""
    import sqlite3

    db = Path(db)
    if not db.is_file():
        fix = (
            "pass --dir (a sweep's tracking.dir) or --uri"
            if option == "--dir"
            else f"pass {option} of an existing store"
        )
        return f"no MLflow store at {db}; {fix}, or run `launch sweep` first"
    try:
        with db.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"{db}: cannot read the MLflow store ({exc.strerror or exc})"
    if head != SQLITE_HEADER:
        what = "an empty file" if not head else "not a SQLite database"
        return f"{db}: {what}, not an MLflow store; pass the tracking.dir of a sweep (its mlflow.db) or --uri"
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.Error as exc:
        return f"{db}: not readable as a SQLite database ({exc}); pass the tracking.dir of a sweep or --uri"
    if not {"experiments", "runs"} <= tables:
        return f"{db}: a SQLite database, but not an MLflow store (no experiments/runs tables); pass a sweep's store"
    return None


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI (None for other URIs or in-memory stores)."""
    if not uri.startswith("sqlite:"):
        return None
    rest = uri[len("sqlite:") :]
    if not rest.startswith("///"):
        return None
    path = rest[3:].split("?", 1)[0]
    return Path("/" + path.lstrip("/")) if rest.startswith("////") else Path(path)


def writable_dir_problem(path: Path, key: str, value: str | None = None) -> str | None:
    """None if ``path`` is a folder this process can write to, or can be created; else why not (a file in the
    way, a read-only folder), naming ``key`` and its ``value`` (default: the path). Creates nothing."""
    path = Path(path)
    shown = f"{key} = {value or str(path)!r}"
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{shown}: {probe} is a file, not a folder; point {key} at a folder (created if missing)"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{shown}: {probe} is not writable here; pick a folder you can write to, or change its permissions"
    return None


# --- command-line values: the domain checks the spec's keys get -----------------------------------------------
def int_list(text: str, option: str, minimum: int | None = None) -> list[int]:
    """``"0,1,2"`` -> [0, 1, 2]; InputError for a non-integer item, a repeat or an empty list."""
    items = [x.strip() for x in text.split(",")]
    bad = [x for x in items if x and not x.lstrip("-").isdigit()]
    if bad:
        raise InputError(f"{option} {text!r}: {bad[0]!r} is not a whole number; give e.g. {option} 0,1,2")
    values = [int(x) for x in items if x]
    if not values:
        raise InputError(f"{option} {text!r}: no values; give at least one, e.g. {option} 0,1,2")
    if len(set(values)) != len(values):
        raise InputError(f"{option} {text!r}: values must be distinct")
    if minimum is not None and (low := min(values)) < minimum:
        raise InputError(f"{option} {text!r}: {low} is below {minimum}")
    return values


def number(value: float, option: str, low: float | None = None, high: float | None = None, why: str = "") -> float:
    """``value`` if it is a finite number within [low, high]; else InputError naming ``option``."""
    bounds = ([f">= {low:g}"] if low is not None else []) + ([f"<= {high:g}"] if high is not None else [])
    rule = " and ".join(bounds) or "a finite number"
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{option} must be a finite number {rule}{f' ({why})' if why else ''}, got {value:g}")
    return value


def port_problem(port: int | str | None, where: str) -> str | None:
    """None if ``port`` is a TCP port (1-65535); else why not, naming ``where``."""
    try:
        p = int(port)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{where}: port {port!r} is not a number; a TCP port is 1-65535"
    if not 0 < p < 65536:
        return f"{where}: port {p} is out of range; a TCP port is 1-65535"
    return None


def url_problem(url: str, where: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """None if ``url`` is ``SCHEME://HOST[:PORT]`` with a known scheme and a valid port; else why not."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in schemes:
        return f"{where} {url!r}: expected {' or '.join(s + '://' for s in schemes)}HOST:PORT"
    if not parts.hostname:
        return f"{where} {url!r}: no host; expected {parts.scheme}://HOST:PORT"
    try:
        parts.port  # noqa: B018 -- urllib checks the port when it is read
    except ValueError:
        port = parts.netloc.rsplit(":", 1)[-1]
        return port_problem(port, f"{where} {url!r}") or f"{where} {url!r}: bad port {port!r}"
    return None
