"""The tracking server's user name and password inside a cluster job, without them ever being in Ray's records.

``launch sweep --cluster`` writes them to a mode-0600 file in the job's working directory (MLflow's
``~/.mlflow/credentials`` format) and names the file, never its content, in the job's runtime env
(``TAILSWEEP_MLFLOW_CREDENTIALS``, a path relative to the working directory). Ray logs a job's runtime env
(``runtime_env_agent.log``) and shows it in the job's record; a password among its ``env_vars`` would land there.
Every process of the job imports ``tailsweep`` before it talks to MLflow -- the driver, the trial actors, the
Train workers -- and :func:`load` (called by ``tailsweep/__init__.py``) sets ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` in that process from the file, as MLflow's clients read them. Standard library only.
"""

from __future__ import annotations

import configparser
import contextlib
import os
from pathlib import Path

ENV = "TAILSWEEP_MLFLOW_CREDENTIALS"  # the file's path, relative to the job's working directory
SECTION = "mlflow"  # MLflow's credentials-file format (mlflow.utils.credentials)
KEYS = {"MLFLOW_TRACKING_USERNAME": "mlflow_tracking_username", "MLFLOW_TRACKING_PASSWORD": "mlflow_tracking_password"}


def write(path: Path, env: dict[str, str]) -> None:
    """The user name and password among ``env`` to a new file at ``path``, readable by its owner only."""
    parser = configparser.ConfigParser(interpolation=None)
    parser[SECTION] = {key: env[var] for var, key in KEYS.items() if env.get(var)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        parser.write(f)


def _find(rel: str) -> Path | None:
    """The file: against the working directory (a job's processes start there), else against the shipped checkout
    this package was imported from (the working directory is on their ``sys.path``)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        if (base / rel).is_file():
            return base / rel
    return None


def load() -> None:
    """In a cluster job's process: the tracking credentials from the file ``TAILSWEEP_MLFLOW_CREDENTIALS`` names
    into this process's environment. Does nothing elsewhere."""
    rel = os.environ.get(ENV)
    if not rel or os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        return
    path = _find(rel)
    if path is None:
        return  # the server then answers 401, and the sweep's check says which credentials it lacks
    with contextlib.suppress(OSError):
        path.chmod(0o600)  # unpacked from the job's package with the default mode
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    if parser.has_section(SECTION):
        for var, key in KEYS.items():
            if value := parser[SECTION].get(key):
                os.environ[var] = value
