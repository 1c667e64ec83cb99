"""The MLflow store a command is pointed at, checked before MLflow touches it.

A sweep *writes* its store: ``tracking.dir`` must be a folder it can write, ``tracking.uri`` a scheme MLflow knows
(with a valid port), an existing ``mlflow.db`` a SQLite database (:func:`sweep_store_problems`, one of the
sweep's validation rules). ``launch report`` and ``launch ui`` only *read* one: it must already exist, since
MLflow's SQLite and file stores create (or upgrade) a store they are opened on (:func:`store_to_read`). A report
on a copied store logs its files to the parent run only where that run's artifacts live beside the store
(:func:`foreign_artifacts`); it never writes into the store the copy was made from.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..inputs import SQLITE_HEADER, InputError, sqlite_path, sqlite_store_problem, url_problem, writable_dir_problem

# The URI schemes of MLflow's tracking-store registry (mlflow.tracking._tracking_service.utils; a test compares);
# a URI without "scheme://" is a local folder (MLflow's file store).
MLFLOW_SCHEMES = (
    "",
    "databricks",
    "databricks-uc",
    "file",
    "http",
    "https",
    "mssql",
    "mysql",
    "postgresql",
    "sqlite",
    "uc",
)


def scheme(uri: str) -> str:
    """The URI's scheme ("" for a plain path); ``postgresql+psycopg2`` counts as ``postgresql``."""
    if "://" not in uri and not uri.startswith(("sqlite:", "file:")):
        return ""
    return urlsplit(uri).scheme.split("+", 1)[0].lower()


def uri_problem(uri: str, where: str) -> str | None:
    """None if MLflow knows ``uri``'s scheme (and an http(s) URI has a host and a valid port); else why not."""
    s = scheme(uri)
    if s not in MLFLOW_SCHEMES:
        return (
            f"{where} {uri!r}: unknown scheme '{s}://'; MLflow takes http(s)://HOST:PORT (a tracking server), "
            "sqlite:///PATH, file:///PATH or a folder, postgresql://, mysql://, mssql:// or databricks"
        )
    if s in ("http", "https"):
        return url_problem(uri, where)
    return None


def sweep_store_problems(root: Path, uri: str | None) -> list[str]:
    """What stops a sweep from writing its store: ``root`` (tracking.dir) and ``uri`` (tracking.uri, None = the
    SQLite store in tracking.dir). Creates nothing."""
    problems = []
    if (why := writable_dir_problem(root, "tracking.dir")) is not None:
        problems.append(why)
    if uri is not None and (why := uri_problem(uri, "tracking.uri =")) is not None:
        return problems + [why]
    db = root / "mlflow.db" if uri is None else sqlite_path(uri)
    if db is not None and db.is_file() and db.stat().st_size:
        with db.open("rb") as f:
            if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                problems.append(
                    f"{db}: not a SQLite database, so not an MLflow store; move it away, or point "
                    f"{'tracking.dir' if uri is None else 'tracking.uri'} elsewhere"
                )
    elif db is not None and uri is not None and (why := writable_dir_problem(db.parent, "tracking.uri", uri)):
        problems.append(why)
    return problems


def store_to_read(uri: str | None, runs_dir: Path) -> str:
    """The tracking URI ``launch report`` / ``ui`` read (``uri``, else the SQLite store in ``runs_dir``), checked to
    exist as a store first: InputError naming it otherwise. Creates nothing."""
    if uri is None:
        if (why := sqlite_store_problem(runs_dir / "mlflow.db")) is not None:
            raise InputError(why)
        return f"sqlite:///{runs_dir / 'mlflow.db'}"
    if (why := uri_problem(uri, "--uri")) is not None:
        raise InputError(why)
    s = scheme(uri)
    if s == "sqlite":
        db = sqlite_path(uri)
        if db is None:
            raise InputError(f"--uri {uri!r}: an in-memory store holds no sweeps; pass sqlite:///PATH/mlflow.db")
        if (why := sqlite_store_problem(db, "--uri")) is not None:
            raise InputError(why)
    elif s in ("", "file"):
        folder = Path(unquote(urlsplit(uri).path) if s == "file" else uri).expanduser()
        if not folder.is_dir():
            raise InputError(f"--uri {uri!r}: no MLflow file store at {folder}; pass an existing store")
    elif s in ("http", "https"):
        from ._tracking import tracking_server_problem

        if (why := tracking_server_problem(uri)) is not None:  # a wrong password: one line, not MLflow's traceback
            raise InputError(why.replace("tracking.uri = ", "--uri ", 1))
    return uri


def foreign_artifacts(uri: str, artifact_uri: str) -> str | None:
    """None if a run's artifacts (``artifact_uri``) may be written from a report on the store at ``uri``; else why
    not: a SQLite store whose runs keep their artifacts in a local folder outside the store's own folder -- a copied
    store, whose runs still point at the original's files."""
    db = sqlite_path(uri)
    if db is None or scheme(artifact_uri) not in ("", "file"):
        return None
    folder = Path(unquote(urlsplit(artifact_uri).path) if "://" in artifact_uri else artifact_uri).resolve()
    home = db.resolve().parent
    if folder == home or home in folder.parents:
        return None
    return (
        f"the sweep's runs keep their artifacts at {folder}, outside this store's folder {home} (a copied store?); "
        "writing there would change the original"
    )
