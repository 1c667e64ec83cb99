"""In-memory split loading for the worker: each rank decodes its own rows once, batches sliced from tensors.

Images are decoded (Pillow on CPU threads, or nvJPEG on the GPU: ``_decode.py``) into one uint8 tensor
(N, 3, H, W); normalisation and flips run per batch on the device, so the hot loop never touches Python
objects per image and makes no host-device synchronisation (flips by ``torch.where``, constants moved
once). This suits tables whose share per rank fits in worker memory (the demo: 3,000 images of 64 px =
37 MB); ``_stream.py`` streams larger ones from Parquet row groups.

Which rows a rank holds: training items are dealt out interleaved (item i to rank i % world) once, and each
rank shuffles its own items every epoch; evaluation rows likewise (``shard_indices``), gathered back into
table order after prediction. With one worker this is the single-process order of before, step for step.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from ..datasets import LabelTable
from ._decode import decode_blobs_on_device, pillow_decode

# ImageNet statistics: the usual choice for torchvision backbones.
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@functools.cache
def _constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """mean, std on ``device``: moved there once per process, not once per batch."""
    return _MEAN.to(device), _STD.to(device)


@dataclass
class SplitTensors:
    inputs: torch.Tensor  # uint8 (N, 3, H, W) for images, float32 (N, D) for features
    targets: torch.Tensor  # float32 (N, C)
    is_image: bool
    per_rank: int | None = None  # training shards: items every rank steps through per epoch (its own, padded)

    def __len__(self) -> int:
        return int(self.targets.shape[0])


def split_rows(table: LabelTable, split: str) -> int:
    """Rows of ``split``, from its Parquet footer (nothing decoded)."""
    return pq.ParquetFile(table.path(split)).metadata.num_rows


def _decode_images(
    blobs: list[bytes], size: int | None, decode: str, device: torch.device | None, threads: int
) -> torch.Tensor:
    if decode == "gpu":
        if device is None or device.type != "cuda":
            raise ValueError("decode = gpu needs a CUDA device")
        return decode_blobs_on_device(blobs, size, device)
    if threads > 1:  # Pillow releases the GIL while it decodes and resizes
        with ThreadPoolExecutor(threads) as pool:
            arrays = list(pool.map(pillow_decode, blobs, [size] * len(blobs)))
    else:
        arrays = [pillow_decode(b, size) for b in blobs]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def load_split(
    table: LabelTable,
    split: str,
    image_size: int | None = None,
    rows: np.ndarray | None = None,
    decode: str = "cpu",
    device: torch.device | None = None,
    threads: int = 1,
) -> SplitTensors:
    """Read ``split`` (optionally only ``rows``, in that order: only those are decoded) into tensors.

    ``decode``: "cpu" (Pillow, on ``threads`` threads) or "gpu" (JPEGs on ``device``; the tensor is kept on the CPU).
    """
    kind = table.input_kind
    cols = ["labels", "image" if kind == "image" else "image_path" if kind == "image_path" else "features"]
    tbl = table.read(split, cols)
    if rows is not None:
        tbl = tbl.take(rows)
    targets = torch.from_numpy(table.targets(tbl).astype(np.float32))
    if kind == "features":
        feats = tbl.column("features").combine_chunks()
        flat = feats.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        x = torch.from_numpy(flat.reshape(len(tbl), -1))
        return SplitTensors(x, targets, False)
    if kind == "image":
        blobs = tbl.column("image").to_pylist()
    else:
        blobs = [
            Path(p if Path(p).is_absolute() else table.root / p).read_bytes()
            for p in tbl.column("image_path").to_pylist()
        ]
    if not blobs:
        return SplitTensors(torch.zeros(0, 3, image_size or 1, image_size or 1, dtype=torch.uint8), targets, True)
    return SplitTensors(_decode_images(blobs, image_size, decode, device, threads), targets, True)


def concat_splits(parts: list[SplitTensors]) -> SplitTensors:
    if len(parts) == 1:
        return parts[0]
    return SplitTensors(torch.cat([p.inputs for p in parts]), torch.cat([p.targets for p in parts]), parts[0].is_image)


def shard_indices(n: int, rank: int, world: int) -> np.ndarray:
    """Rows of ``rank``: an interleaved, non-overlapping shard (row i to rank i % world)."""
    return np.arange(rank, n, world)


def unshard(gathered: np.ndarray, world: int) -> np.ndarray:
    """Rows gathered from every rank's ``shard_indices`` (concatenated in rank order) back in row order."""
    if world == 1:
        return gathered
    out = np.empty_like(gathered)
    out[np.concatenate([shard_indices(len(gathered), r, world) for r in range(world)])] = gathered
    return out


def eval_shard(table: LabelTable, split: str, image_size: int | None, rank: int, world: int, **opts) -> SplitTensors:
    """This rank's rows of an evaluation split (``shard_indices``); the only ones it decodes."""
    rows = None if world == 1 else shard_indices(split_rows(table, split), rank, world)
    return load_split(table, split, image_size, rows=rows, **opts)


def train_shard(
    table: LabelTable,
    splits: tuple[str, ...] | list[str],
    image_size: int | None,
    rank: int,
    world: int,
    copies: tuple[np.ndarray, np.ndarray] | None = None,
    **opts,
) -> SplitTensors:
    """This rank's training items, decoded here and nowhere else.

    The items are the rows of ``splits`` concatenated, then ``copies`` (oversampled items: indices into those
    rows, and each copy's own targets). Item i belongs to rank i % world; ``per_rank`` is the most any rank
    holds (every rank runs that many items per epoch, DDP needs equal steps).
    """
    sizes = [split_rows(table, s) for s in splits]
    n = sum(sizes)
    copy_rows, copy_targets = copies if copies is not None else (np.zeros(0, np.int64), None)
    total = n + len(copy_rows)
    mine = shard_indices(total, rank, world)
    is_copy = mine >= n
    source = mine.copy()
    source[is_copy] = copy_rows[mine[is_copy] - n]
    needed = np.unique(source)
    parts, offset = [], 0
    for split, size in zip(splits, sizes, strict=True):
        rows = needed[(needed >= offset) & (needed < offset + size)] - offset
        if len(rows):
            parts.append(load_split(table, split, image_size, rows=None if len(rows) == size else rows, **opts))
        offset += size
    if not parts:  # more workers than items: this rank holds none
        parts = [load_split(table, splits[0], image_size, rows=np.zeros(0, np.int64), **opts)]
    base = concat_splits(parts)
    if len(needed) == len(source) and np.array_equal(needed, source):
        inputs, targets = base.inputs, base.targets
    else:
        at = torch.from_numpy(np.searchsorted(needed, source))
        inputs, targets = base.inputs[at], base.targets[at].clone()
    if is_copy.any():
        targets[torch.from_numpy(is_copy)] = torch.as_tensor(np.asarray(copy_targets)[mine[is_copy] - n])
    return SplitTensors(inputs, targets, base.is_image, per_rank=-(-total // world))


def flip_mask(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """Which of ``n`` images to flip (bool, on the CPU: the generator's stream, whatever the device)."""
    return torch.rand(n, generator=generator) < 0.5


def normalize_images(x: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 (B, 3, H, W) on its device -> normalised float, the rows of ``flip`` (bool (B,), same device) mirrored.

    No host synchronisation: ``torch.where`` in place of boolean-mask indexing, constants already on the device.
    """
    if flip is not None:
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    mean, std = _constants(x.device)
    return x.float().div_(255).sub_(mean).div_(std)


def prepare_batch(
    x: torch.Tensor,
    is_image: bool,
    device: torch.device,
    augment: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """uint8 images -> normalised float on ``device`` (random horizontal flips when ``augment``); features as is."""
    if not is_image:
        return x.to(device, non_blocking=True)
    flip = flip_mask(x.shape[0], generator).to(device, non_blocking=True) if augment else None
    return normalize_images(x.to(device, non_blocking=True), flip)
