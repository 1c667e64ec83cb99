"""Shared fixtures: tiny label tables written with the real format; the session's own HOME."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tailsweep.datasets import Manifest, write_table

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

LABELS = [
    {"label": "a", "parents": []},
    {"label": "a/x", "parents": ["a"]},
    {"label": "a/y", "parents": ["a"]},
    {"label": "b", "parents": []},
]


def features_split(n: int, dim: int, rng: np.random.Generator, label_fn=None) -> pa.Table:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    labels = []
    for row in x:
        ls = []
        if row[0] > 0:
            ls.append("a/x" if row[1] > 0 else "a/y")
        if row[2] > 0.5:
            ls.append("b")
        labels.append(ls)
    feats = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel(), pa.float32()), dim)
    return pa.table(
        {
            "id": pa.array([f"r{i}" for i in range(n)]),
            "labels": pa.array(labels, pa.list_(pa.string())),
            "features": feats,
        }
    )


def make_features_table(root: Path, n=(120, 40, 40), dim=8, seed=0):
    rng = np.random.default_rng(seed)
    splits = {s: features_split(k, dim, rng) for s, k in zip(("train", "val", "test"), n, strict=True)}
    return write_table(root, Manifest(name="tiny-features", input="features"), LABELS, splits)


def png_bytes(colour=(255, 0, 0), size=8) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


def make_image_table(root: Path, n=(16, 8, 8)):
    splits = {}
    for s, k in zip(("train", "val", "test"), n, strict=True):
        labels = [["a/x"] if i % 2 else ["b"] for i in range(k)]
        imgs = [png_bytes((255, 0, 0) if i % 2 else (0, 0, 255)) for i in range(k)]
        splits[s] = pa.table(
            {
                "id": pa.array([f"{s}{i}" for i in range(k)]),
                "labels": pa.array(labels, pa.list_(pa.string())),
                "image": pa.array(imgs, pa.binary()),
            }
        )
    return write_table(root, Manifest(name="tiny-images", input="image"), LABELS, splits)


@pytest.fixture
def features_table(tmp_path):
    return make_features_table(tmp_path / "feat")


@pytest.fixture
def image_table(tmp_path):
    return make_image_table(tmp_path / "img")


# --- the session's own HOME -----------------------------------------------------------------------
# Tests touch nothing outside their temporary dirs. Tools write under HOME on their own: a local ray.init()
# turns Ray's token authentication on and saves ~/.ray/auth_token (Ray 2.60; a later `ray start` on that
# machine then demands the token), MLflow writes ~/.config/mlflow, matplotlib its font cache, and MLflow's
# clients read ~/.mlflow/credentials. So the whole session, and every process it starts, runs with a temporary
# HOME, and the real one is checked at the end: what the suite could write there, unchanged.
WATCHED = (".ray", ".mlflow", ".config/mlflow", ".config/matplotlib", ".cache/matplotlib", ".cache/torch")
_REAL_HOME = pytest.StashKey[Path]()
_SNAPSHOT = pytest.StashKey[dict]()
_TEST_HOME = pytest.StashKey[Path]()


def home_snapshot(home: Path) -> dict[str, tuple]:
    """HOME's top-level names, and every file under the WATCHED folders with its size and modification time."""
    snap: dict[str, tuple] = {name: () for name in os.listdir(home)} if home.is_dir() else {}
    for rel in WATCHED:
        for root, _, files in os.walk(home / rel):
            for f in files:
                path = Path(root) / f
                try:
                    st = path.lstat()
                except OSError:
                    continue
                snap[str(path.relative_to(home))] = (st.st_size, st.st_mtime_ns)
    return snap


def home_changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """What differs between two snapshots, one line per path."""
    lines = [f"created {k}" for k in sorted(after.keys() - before.keys())]
    lines += [f"removed {k}" for k in sorted(before.keys() - after.keys())]
    lines += [f"changed {k}" for k in sorted(before.keys() & after.keys()) if before[k] != after[k]]
    return lines


def pytest_configure(config):
    real = Path.home()
    config.stash[_REAL_HOME] = real
    config.stash[_SNAPSHOT] = home_snapshot(real)
    config.stash[_TEST_HOME] = Path(tempfile.mkdtemp(prefix="tailsweep-test-home-"))
    os.environ["HOME"] = str(config.stash[_TEST_HOME])


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if _REAL_HOME not in config.stash:
        return
    changes = home_changes(config.stash[_SNAPSHOT], home_snapshot(config.stash[_REAL_HOME]))
    if changes:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        text = f"the test session changed the real HOME ({config.stash[_REAL_HOME]}):\n  " + "\n  ".join(changes)
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_sep("=", "HOME changed", red=True)
            reporter.write_line(text)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config):
    if _REAL_HOME in config.stash:
        os.environ["HOME"] = str(config.stash[_REAL_HOME])
        shutil.rmtree(config.stash[_TEST_HOME], ignore_errors=True)


@pytest.fixture(scope="session")
def real_home(pytestconfig) -> Path:
    """The HOME the session started with (tests run with a temporary one)."""
    return pytestconfig.stash[_REAL_HOME]
