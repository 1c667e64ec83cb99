"""Streaming image pipeline: Parquet row groups -> Pillow decode -> torchvision transforms v2, in parallel.

Each Train worker reads its own shard of the split's row groups (row group g goes to rank g % world, then
to DataLoader process g // world % num_workers within it), so nothing is read twice and no process holds
the whole split: memory stays at a few row groups per process whatever the catalogue's size. Every epoch
reshuffles the row-group order and the rows within each group with a seed derived from (seed, epoch).

The alternative -- a map-style dataset over JPEG files on disk, the usual PyTorch recipe -- is what
``benchmarks/pipeline.py`` measures this against.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from ._torchvision_compat import import_torchvision


def image_transform(size: int, augment: bool):
    """uint8 CHW tensor -> normalised float: RandomResizedCrop + flip when augmenting, else resize."""
    import_torchvision()  # applies the compatibility shim before transforms import
    from torchvision.transforms import v2
    ops = [v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True), v2.RandomHorizontalFlip()] if augment else [
        v2.Resize((size, size), antialias=True)]
    return v2.Compose([*ops, v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])


def decode(blob: bytes) -> torch.Tensor:
    """Image bytes -> uint8 CHW tensor (Pillow; torchvision's decoders are unavailable on this torch)."""
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


class ParquetImageStream(IterableDataset):
    """(image, target) pairs streamed from Parquet split files, sharded by row group.

    Args:
        path: a split's Parquet file (columns ``image`` and ``labels``), or a list of them (train + val).
        encode: list<string> labels column -> (N, C) targets (``LabelTable.encode``).
        rank, world: this Train worker's shard.
    """

    def __init__(self, path, encode, size: int, augment: bool, rank: int = 0, world: int = 1, seed: int = 0):
        self.paths = [str(p) for p in (path if isinstance(path, list | tuple) else [path])]
        self.encode, self.size, self.augment = encode, size, augment
        self.rank, self.world, self.seed, self.epoch = rank, world, seed, 0
        # (file, row group) -> rows, from the Parquet footers
        self.groups = [(f, g, pq.ParquetFile(p).metadata.row_group(g).num_rows)
                       for f, p in enumerate(self.paths) for g in range(pq.ParquetFile(p).num_row_groups)]
        self.num_groups = len(self.groups)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        return np.random.default_rng((self.seed, self.epoch)).permutation(self.num_groups)

    def rows_per_rank(self) -> list[int]:
        """Rows each rank streams this epoch (every rank computes the same list)."""
        order = self._order()
        return [sum(self.groups[i][2] for i in order[r::self.world]) for r in range(self.world)]

    def my_groups(self) -> list[int]:
        mine = self._order()[self.rank::self.world]
        info = get_worker_info()
        if info is not None:
            mine = mine[info.id::info.num_workers]
        return [int(g) for g in mine]

    def __iter__(self):
        info = get_worker_info()
        rng = np.random.default_rng((self.seed, self.epoch, self.rank, info.id if info else 0))
        transform = image_transform(self.size, self.augment)
        files = [pq.ParquetFile(p) for p in self.paths]
        for i in self.my_groups():
            f, g, _ = self.groups[i]
            tbl = files[f].read_row_group(g, columns=["image", "labels"])
            targets = torch.from_numpy(self.encode(tbl.column("labels")).astype(np.float32))
            blobs = tbl.column("image").to_pylist()
            for i in rng.permutation(len(blobs)):
                yield transform(decode(blobs[i])), targets[i]


class JpegFiles(Dataset):
    """The usual recipe, for comparison: one JPEG file per item, decoded and transformed on access."""

    def __init__(self, files: list, targets: torch.Tensor, size: int, augment: bool):
        self.files, self.targets = files, targets
        self.transform = image_transform(size, augment)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        with open(self.files[i], "rb") as f:
            return self.transform(decode(f.read())), self.targets[i]


def stream_loader(dataset: ParquetImageStream, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, persistent_workers=False,
                      prefetch_factor=4 if num_workers else None)
