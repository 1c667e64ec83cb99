"""The frozen-encoder cache (trainables/_embed.py), called directly on a tiny image table and a random-weight
ShuffleNet V2 x0.5 (1.4 M parameters) saved as a local state dict (the ``model.weights`` route, at 16 px).

tests/trainables/test_worker.py checks that a trial with the bundled encoder makes the cache once and a second
trial reuses it; here: what the cache holds, how it is keyed, when it is rebuilt, and one build under concurrency."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest
import torch

from tailsweep.datasets import LabelTable
from tailsweep.trainables._data import load_split, prepare_batch
from tailsweep.trainables._embed import CACHE_DIR, cache_key, cached_table, embedding_table
from tailsweep.trainables._models import pretrained_encoder
from tailsweep.trainables._torchvision_compat import import_torchvision

from ..conftest import LABELS, make_image_table, png_bytes

CPU = torch.device("cpu")
SIZE = 16
BACKBONE = "shufflenet_v2_x0_5"
WIDTH = 1024  # its classifier's input


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy 2-core machine torch's second thread makes a tiny forward 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A state dict of the backbone with random weights (two files: same content, another content)."""
    tv = import_torchvision()
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("weights")
    torch.save(tv.models.get_model(BACKBONE, weights=None).state_dict(), root / "a.pt")
    shutil.copy(root / "a.pt", root / "a-copy.pt")
    torch.manual_seed(1)
    torch.save(tv.models.get_model(BACKBONE, weights=None).state_dict(), root / "b.pt")
    return root


def _table(root):
    """make_image_table with an image of its own per row (the conftest's alternates two colours), so that a
    feature row that went to another row's id shows."""
    import pyarrow as pa

    from tailsweep.datasets import Manifest, write_table

    splits = {}
    for s, k in zip(("train", "val", "test"), (6, 3, 3), strict=True):
        splits[s] = pa.table(
            {
                "id": [f"{s}{i}" for i in range(k)],
                "labels": pa.array([["a/x"] if i % 2 else ["b"] for i in range(k)], pa.list_(pa.string())),
                "image": pa.array([png_bytes((40 * i, 255 - 30 * i, 90), SIZE) for i in range(k)], pa.binary()),
            }
        )
    return write_table(root, Manifest(name="distinct", input="image"), LABELS, splits)


def _features(table, split="train") -> np.ndarray:
    return np.asarray(table.read(split, ["features"]).column(0).to_pylist(), np.float32)


def embed(table, weights, size=SIZE, logs=None):
    return embedding_table(
        table, BACKBONE, size, str(weights), CPU, batch_size=4, log=logs.append if logs is not None else None
    )


def test_the_key_names_the_encoder_the_size_and_the_weights_content(weights):
    a = cache_key(BACKBONE, 16, str(weights / "a.pt"))
    assert a.startswith("shufflenet_v2_x0_5-16px-") and a == cache_key(BACKBONE, 16, str(weights / "a-copy.pt"))
    assert a != cache_key(BACKBONE, 16, str(weights / "b.pt"))  # other weights: other embeddings
    assert a != cache_key(BACKBONE, 32, str(weights / "a.pt"))
    assert cache_key("efficientnet_lite0", None, None) == "efficientnet_lite0-nativepx-bundled"


def test_the_cache_is_a_features_table_of_the_encoders_outputs_row_for_row(tmp_path, weights):
    table = _table(tmp_path / "t")
    assert cached_table(table, BACKBONE, SIZE, str(weights / "a.pt")) is None
    emb, built = embed(table, weights / "a.pt")
    assert built and emb.root == table.root / CACHE_DIR / cache_key(BACKBONE, SIZE, str(weights / "a.pt"))
    assert emb.input_kind == "features" and emb.labels == table.labels
    extra = emb.manifest.extra
    assert extra["source_digest"] == table.digest() and extra["width"] == WIDTH and extra["image_size"] == SIZE
    encoder, _ = pretrained_encoder(BACKBONE, str(weights / "a.pt"))
    encoder.eval()
    for split in ("train", "val", "test"):
        got = emb.read(split, ["id", "labels", "features"]).to_pydict()
        src = table.read(split, ["id", "labels"]).to_pydict()
        assert got["id"] == src["id"] and got["labels"] == src["labels"]
        with torch.no_grad():
            want = encoder(prepare_batch(load_split(table, split, SIZE).inputs, True, CPU)).numpy()
        feats = np.asarray(got["features"], np.float32)
        assert feats.shape == (len(src["id"]), WIDTH)
        np.testing.assert_allclose(feats, want, rtol=1e-4, atol=1e-5)  # same rows, same order


def test_a_second_call_reads_the_cache_without_encoding(tmp_path, weights):
    table = _table(tmp_path / "t")
    first_logs, second_logs = [], []
    first, built = embed(table, weights / "a.pt", logs=first_logs)
    stamp = (first.root / "train.parquet").stat().st_mtime_ns
    again, built_again = embed(LabelTable(table.root), weights / "a.pt", logs=second_logs)  # another trial's handle
    assert built and not built_again and again.root == first.root
    assert any(m.startswith("embedding train") for m in first_logs) and second_logs == []
    assert (again.root / "train.parquet").stat().st_mtime_ns == stamp  # not rewritten


def test_other_weights_or_size_get_their_own_cache_beside_the_first(tmp_path, weights):
    table = _table(tmp_path / "t")
    a, _ = embed(table, weights / "a.pt")
    b, built_b = embed(table, weights / "b.pt")
    small, built_small = embed(table, weights / "a.pt", size=8)
    assert built_b and built_small and len({a.root, b.root, small.root}) == 3
    assert not np.allclose(_features(a), _features(b))
    assert cached_table(table, BACKBONE, SIZE, str(weights / "a.pt")).root == a.root  # the first one is kept
    _, copy_built = embed(table, weights / "a-copy.pt")  # same weights under another name: the same cache
    assert not copy_built


def test_a_changed_table_makes_the_cache_stale_and_it_is_rebuilt(tmp_path, weights):
    table = _table(tmp_path / "t")
    old, _ = embed(table, weights / "a.pt")
    old_train = _features(old)
    other = make_image_table(tmp_path / "other", n=(6, 3, 3))  # other images, same ids and splits
    shutil.copy(other.path("train"), table.path("train"))  # the table rewritten in place
    changed = LabelTable(table.root)
    assert changed.digest() != table.digest()
    assert cached_table(changed, BACKBONE, SIZE, str(weights / "a.pt")) is None
    new, built = embed(changed, weights / "a.pt")
    assert built and new.root == old.root and new.manifest.extra["source_digest"] == changed.digest()
    new_train = _features(new)
    assert new_train.shape == old_train.shape and not np.allclose(new_train, old_train)
    assert [p.name for p in (table.root / CACHE_DIR).iterdir() if p.is_dir()] == [new.root.name]  # no stale copy


def test_concurrent_trials_wait_for_one_encoder_pass(tmp_path, weights):
    table = _table(tmp_path / "t")
    start = threading.Barrier(3)
    results, errors, logs = [], [], []

    def trial():
        start.wait()
        try:
            emb, built = embed(LabelTable(table.root), weights / "a.pt", logs=logs)
            results.append((emb.root, built))
        except Exception as exc:  # noqa: BLE001 -- reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=trial) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(results) == 3
    assert sum(built for _, built in results) == 1 and len({root for root, _ in results}) == 1
    assert sum(m.startswith("embedding train") for m in logs) == 1  # one encoder pass, not one per trial
