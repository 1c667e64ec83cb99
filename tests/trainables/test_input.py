"""Input at GPU speed (issue 29): per-rank decoding, device-side augmentation without host syncs, timed batches."""

from __future__ import annotations

import io
import math
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tailsweep.datasets import Manifest, write_table
from tailsweep.trainables import _data
from tailsweep.trainables._data import (
    eval_shard,
    load_split,
    normalize_images,
    prepare_batch,
    shard_indices,
    train_shard,
    unshard,
)
from tailsweep.trainables._decode import resolve_decode
from tailsweep.trainables._input import TimedBatches, to_device
from tailsweep.trainables.worker import memory_batches
from tests.conftest import LABELS, png_bytes

CPU = torch.device("cpu")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _old_prepare_batch(x, is_image, device, augment=False, generator=None):
    """The implementation before issue 29 (boolean-mask flips, constants moved per batch): the reference."""
    if not is_image:
        return x.to(device, non_blocking=True)
    x = x.to(device, non_blocking=True).float().div_(255)
    if augment:
        flip = torch.rand(x.shape[0], generator=generator) < 0.5
        if flip.any():
            x[flip.to(device)] = x[flip.to(device)].flip(-1)
    return (x - _MEAN.to(device)) / _STD.to(device)


def _batches(cfg, train, stream, epoch, steps, device, gen):
    """The worker's memory batches, called as the loop calls them (``stream`` is None on this path)."""
    assert stream is None
    return memory_batches(train, cfg.batch_size, cfg.augment, steps, device, gen)


def _old_memory_batches(train, steps, batch_size, augment, rank, world, gen):
    """The memory pipeline's batches before issue 29: one permutation of every row, rank r takes perm[r::world]."""
    per_rank = math.ceil(len(train) / world)
    perm = torch.randperm(len(train), generator=gen)
    if len(perm) < per_rank * world:
        perm = torch.cat([perm, perm[: per_rank * world - len(perm)]])
    mine = perm[rank::world]
    for s in range(steps):
        b = mine[s * batch_size : (s + 1) * batch_size]
        yield _old_prepare_batch(train.inputs[b], True, CPU, augment=augment, generator=gen), train.targets[b]


def _images(n=10, size=6, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


@pytest.mark.parametrize("augment", [False, True])
def test_device_augmentation_equals_the_old_one_bit_for_bit(augment):
    x = _images()
    for seed in range(5):
        old = _old_prepare_batch(x, True, CPU, augment, torch.Generator().manual_seed(seed))
        new = prepare_batch(x, True, CPU, augment, torch.Generator().manual_seed(seed))
        assert torch.equal(old, new)
    feats = torch.randn(4, 3)
    assert torch.equal(prepare_batch(feats, False, CPU), feats)


def _image_table(tmp_path, n=11, size=6, jpeg_every=0):
    def blob(i):
        from PIL import Image

        arr = np.full((size + i % 3, size, 3), (i * 20) % 255, dtype=np.uint8)
        arr[:, : size // 2, 1] = 255 - i  # left half differs from the right: flips are visible
        buf = io.BytesIO()
        fmt = "JPEG" if jpeg_every and i % jpeg_every == 0 else "PNG"
        Image.fromarray(arr).save(buf, format=fmt)
        return buf.getvalue()

    split = pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "labels": [["a/x"] if i % 3 else ["b"] for i in range(n)],
            "image": pa.array([blob(i) for i in range(n)], pa.binary()),
        }
    )
    small = pa.table({"id": ["v"], "labels": [["b"]], "image": pa.array([png_bytes()], pa.binary())})
    return write_table(
        tmp_path / "t", Manifest(name="s", input="image"), LABELS, {"train": split, "val": split, "test": small}
    )


def test_one_worker_trains_on_the_same_batches_as_before(tmp_path):
    table = _image_table(tmp_path)
    full = load_split(table, "train", 6)
    shard = train_shard(table, ["train"], 6, 0, 1)
    assert torch.equal(shard.inputs, full.inputs) and shard.per_rank == len(full)
    cfg = SimpleNamespace(batch_size=4, augment=True)
    steps = math.ceil(len(full) / 4)
    for epoch in range(2):
        old = list(_old_memory_batches(full, steps, 4, True, 0, 1, torch.Generator().manual_seed(epoch)))
        new = list(_batches(cfg, shard, None, epoch, steps, CPU, torch.Generator().manual_seed(epoch)))
        assert len(old) == len(new) == steps
        for (xo, yo), (xn, yn) in zip(old, new, strict=True):
            assert torch.equal(xo, xn) and torch.equal(yo, yn)


def test_each_rank_decodes_only_its_own_rows(tmp_path, monkeypatch):
    table = _image_table(tmp_path)
    full = load_split(table, "train", 6)
    decoded = []
    real = _data.pillow_decode
    monkeypatch.setattr(_data, "pillow_decode", lambda b, size: decoded.append(b) or real(b, size))
    shards = [train_shard(table, ["train"], 6, r, 3) for r in range(3)]
    assert len(decoded) == len(full)  # every image once, over all three ranks
    for r, shard in enumerate(shards):
        assert torch.equal(shard.inputs, full.inputs[r::3]) and torch.equal(shard.targets, full.targets[r::3])
        assert shard.per_rank == 4  # 11 items over 3 ranks: every rank steps through 4 (DDP: equal steps)
    decoded.clear()
    val = [eval_shard(table, "val", 6, r, 2) for r in range(2)]
    assert len(decoded) == len(full)
    gathered = np.concatenate([v.targets.numpy() for v in val])  # what gather_rows hands every rank
    assert np.array_equal(unshard(gathered, 2), full.targets.numpy())  # back in the table's row order


def test_unshard_restores_row_order():
    for n, world in ((7, 3), (8, 2), (2, 4)):
        gathered = np.concatenate([shard_indices(n, r, world) for r in range(world)])
        assert np.array_equal(unshard(gathered, world), np.arange(n))


def test_ranks_shuffle_their_own_items_each_epoch(tmp_path):
    table = _image_table(tmp_path)
    cfg = SimpleNamespace(batch_size=2, augment=False)
    shard = train_shard(table, ["train"], 6, 1, 2)  # 5 items, padded to 6 per epoch
    seen = []
    for epoch in range(2):
        batches = list(_batches(cfg, shard, None, epoch, 3, CPU, torch.Generator().manual_seed(epoch)))
        x = torch.cat([b[0] for b in batches])
        assert len(x) == shard.per_rank == 6
        ref = normalize_images(shard.inputs)
        rows = {j for xi in x for j in range(len(shard)) if torch.equal(ref[j], xi)}
        assert rows == set(range(len(shard)))  # every item of this rank, each epoch
        seen.append(x)
    assert not torch.equal(seen[0], seen[1])


# Ops that make a CUDA host wait for the device: reading a value back (.item(), bool(), .any() in an if) and
# boolean-mask indexing (its output size depends on the mask's values).
_SYNCING = {"_local_scalar_dense", "item", "is_nonzero", "nonzero", "masked_select", "unique"}


class _SyncOps(TorchDispatchMode):
    """Records the aten ops run inside it that would synchronise a CUDA device with the host."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name.split("::")[-1]
        indices = args[1] if name.startswith("index") and len(args) > 1 else None
        if name in _SYNCING or (
            isinstance(indices, list | tuple)
            and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices)
        ):
            self.found.append(name)
        return func(*args, **(kwargs or {}))


def test_the_augmentation_path_has_no_boolean_indexing_or_item():
    x, flip = _images(), torch.tensor([True, False] * 5)
    with _SyncOps() as old:
        _old_prepare_batch(x, True, CPU, augment=True, generator=torch.Generator().manual_seed(1))
    assert old.found, "the detector must see the old path's syncs"  # it would fail to catch anything otherwise
    with _SyncOps() as new:
        normalize_images(x, flip)
        prepare_batch(x, True, CPU, augment=True, generator=torch.Generator().manual_seed(1))
    assert new.found == []


def test_the_memory_pipelines_batches_have_no_host_sync(tmp_path):
    table = _image_table(tmp_path)
    shard = train_shard(table, ["train"], 6, 0, 1)
    cfg = SimpleNamespace(batch_size=4, augment=True)
    with _SyncOps() as ops:
        batches = list(_batches(cfg, shard, None, 0, 3, CPU, torch.Generator().manual_seed(0)))
    assert len(batches) == 3 and ops.found == []


def test_timed_batches_measure_the_wait_for_each_batch():
    now = [0.0]

    def source():
        for i in range(4):
            now[0] += 3.0  # the batch takes 3 s to arrive
            yield i

    timed = TimedBatches(source(), CPU, clock=lambda: now[0])
    for _ in timed:
        now[0] += 1.0  # the step takes 1 s
    assert timed.steps == 4 and timed.wait_s == 12.0 and timed.total_s == 0.0  # read by wait_frac
    assert timed.wait_frac() == pytest.approx(0.75)
    assert TimedBatches([], CPU).wait_frac() == 0.0


def test_to_device_on_cpu_hands_batches_through():
    batches = [(torch.ones(2), None), (torch.zeros(3), torch.ones(1))]
    out = list(to_device(iter(batches), CPU))
    assert len(out) == 2 and out[0][0] is batches[0][0] and out[0][1] is None and out[1][1] is batches[1][1]


def test_decode_choice_on_a_cpu_worker():
    assert resolve_decode("cpu", CPU) == "cpu" and resolve_decode("auto", CPU) == "cpu"
    with pytest.raises(ValueError, match="train.decode = gpu decodes JPEGs on the GPU, but this worker runs on cpu"):
        resolve_decode("gpu", CPU)
    with pytest.raises(ValueError, match="train.decode must be one of cpu, gpu, auto"):
        resolve_decode("nvjpeg", CPU)


# --- on a GPU ---------------------------------------------------------------------------------------------------
@pytest.mark.gpu
@cuda
def test_memory_batches_and_their_timing_make_no_host_sync_on_cuda(tmp_path):
    device = torch.device("cuda")
    table = _image_table(tmp_path)
    shard = train_shard(table, ["train"], 6, 0, 1)
    cfg = SimpleNamespace(batch_size=4, augment=True)
    normalize_images(torch.zeros(1, 3, 2, 2, dtype=torch.uint8, device=device))  # constants moved once, before
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        timed = TimedBatches(_batches(cfg, shard, None, 0, 3, device, torch.Generator().manual_seed(0)), device)
        out = [x.sum() for x, _ in timed]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(out) == 3 and 0.0 <= timed.wait_frac() <= 1.0
    cpu = list(_batches(cfg, shard, None, 0, 3, CPU, torch.Generator().manual_seed(0)))
    gpu = list(_batches(cfg, shard, None, 0, 3, device, torch.Generator().manual_seed(0)))
    for (a, ya), (b, yb) in zip(cpu, gpu, strict=True):
        assert torch.allclose(a, b.cpu(), atol=1e-6) and torch.equal(ya, yb.cpu())


@pytest.mark.gpu
@cuda
def test_gpu_decode_is_close_to_pillow(tmp_path):
    device = torch.device("cuda")
    table = _image_table(tmp_path, jpeg_every=2)  # JPEGs decoded on the GPU, PNGs with Pillow
    assert resolve_decode("gpu", device) == "gpu"
    cpu = load_split(table, "train", 6)
    gpu = load_split(table, "train", 6, decode="gpu", device=device)
    assert gpu.inputs.shape == cpu.inputs.shape and gpu.inputs.dtype == torch.uint8
    assert (gpu.inputs.float() - cpu.inputs.float()).abs().mean() < 8  # different resize kernels, same images
