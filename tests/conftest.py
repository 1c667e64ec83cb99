"""Shared fixtures: tiny label tables written with the real format."""

from __future__ import annotations

import io
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
    return pa.table({"id": pa.array([f"r{i}" for i in range(n)]), "labels": pa.array(labels, pa.list_(pa.string())),
                     "features": feats})


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
        splits[s] = pa.table({"id": pa.array([f"{s}{i}" for i in range(k)]),
                              "labels": pa.array(labels, pa.list_(pa.string())), "image": pa.array(imgs, pa.binary())})
    return write_table(root, Manifest(name="tiny-images", input="image"), LABELS, splits)


@pytest.fixture
def features_table(tmp_path):
    return make_features_table(tmp_path / "feat")


@pytest.fixture
def image_table(tmp_path):
    return make_image_table(tmp_path / "img")
