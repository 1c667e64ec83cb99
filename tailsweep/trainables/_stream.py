"""Streaming image pipeline: Parquet row groups -> Pillow decode -> torchvision transforms v2, in parallel.

Each Train worker reads its own shard of the split's row groups (row group g goes to rank g % world, then
to DataLoader process g // world % num_workers within it), so nothing is read twice and no process holds
the whole split: memory stays at a few row groups per process whatever the catalogue's size. Every epoch
reshuffles the row-group order and the rows within each group with a seed derived from (seed, epoch).

The loader processes live as long as the trial (``persistent_workers``; the epoch reaches them through shared
memory), batches are pinned when the device is CUDA and copied one batch ahead (``_input.to_device``). On a
GPU the loader processes leave the float conversion and normalisation to the device (a quarter of the bytes
to copy), and with ``decode="gpu"`` they ship the encoded JPEGs, decoded together on the GPU (``_decode.py``)
and cropped there.

The alternative -- a map-style dataset over JPEG files on disk, the usual PyTorch recipe -- is what
``benchmarks/pipeline.py`` measures this against.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from ._decode import decode_on_device, is_jpeg
from ._torchvision_compat import import_torchvision


def image_transform(size: int, augment: bool, normalize: bool = True):
    """uint8 CHW tensor -> normalised float (uint8, cropped, when not ``normalize``): RandomResizedCrop + flip
    when augmenting, else resize."""
    import_torchvision()  # applies the compatibility shim before transforms import
    from torchvision.transforms import v2

    ops = (
        [v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True), v2.RandomHorizontalFlip()]
        if augment
        else [v2.Resize((size, size), antialias=True)]
    )
    if normalize:
        ops += [
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    return v2.Compose(ops)


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
        normalize: yield normalised float images; False: uint8 (normalised on the device, ``_data.normalize_images``).
        decode: "cpu" (Pillow, here) or "gpu": yield each JPEG still encoded (a 1-D uint8 tensor; other formats
            decoded here), for ``decode_batch`` to decode on the GPU.
    """

    def __init__(
        self,
        path,
        encode,
        size: int,
        augment: bool,
        rank: int = 0,
        world: int = 1,
        seed: int = 0,
        normalize: bool = True,
        decode: str = "cpu",
    ):
        self.paths = [str(p) for p in (path if isinstance(path, list | tuple) else [path])]
        self.encode, self.size, self.augment = encode, size, augment
        self.rank, self.world, self.seed = rank, world, seed
        self.normalize, self.decode = normalize and decode == "cpu", decode
        # shared with the loader processes, which outlive an epoch (persistent_workers)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        # (file, row group) -> rows, from the Parquet footers
        self.groups = [
            (f, g, pq.ParquetFile(p).metadata.row_group(g).num_rows)
            for f, p in enumerate(self.paths)
            for g in range(pq.ParquetFile(p).num_row_groups)
        ]
        self.num_groups = len(self.groups)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def _order(self) -> np.ndarray:
        return np.random.default_rng((self.seed, self.epoch)).permutation(self.num_groups)

    def rows_per_rank(self) -> list[int]:
        """Rows each rank streams this epoch (every rank computes the same list)."""
        order = self._order()
        return [sum(self.groups[i][2] for i in order[r :: self.world]) for r in range(self.world)]

    def my_groups(self) -> list[int]:
        mine = self._order()[self.rank :: self.world]
        info = get_worker_info()
        if info is not None:
            mine = mine[info.id :: info.num_workers]
        return [int(g) for g in mine]

    def __iter__(self):
        info = get_worker_info()
        rng = np.random.default_rng((self.seed, self.epoch, self.rank, info.id if info else 0))
        transform = image_transform(self.size, self.augment, self.normalize)
        files = [pq.ParquetFile(p) for p in self.paths]
        for i in self.my_groups():
            f, g, _ = self.groups[i]
            tbl = files[f].read_row_group(g, columns=["image", "labels"])
            targets = torch.from_numpy(self.encode(tbl.column("labels")).astype(np.float32))
            blobs = tbl.column("image").to_pylist()
            for i in rng.permutation(len(blobs)):
                if self.decode == "gpu" and is_jpeg(blobs[i]):
                    yield torch.frombuffer(bytearray(blobs[i]), dtype=torch.uint8), targets[i]
                elif self.decode == "gpu":  # not a JPEG: decoded here, cropped with the batch on the GPU
                    yield decode(blobs[i]), targets[i]
                else:
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


def _collate_encoded(batch: list) -> tuple[list, torch.Tensor]:
    """decode = gpu: images of different sizes (encoded, or decoded but not yet cropped) stay a list."""
    return [x for x, _ in batch], torch.stack([y for _, y in batch])


def stream_loader(
    dataset: ParquetImageStream, batch_size: int, num_workers: int, pin_memory: bool = False
) -> DataLoader:
    """The DataLoader over ``dataset``: its processes persist across epochs (``iter`` again for the next one)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        prefetch_factor=2 if num_workers else None,  # batches per process: what an epoch's early end discards
        pin_memory=pin_memory,
        collate_fn=_collate_encoded if dataset.decode == "gpu" else None,
    )


class StreamInput:
    """One trial's streamed training input: the dataset, its loader (made once, kept for every epoch) and the
    device-side steps (GPU decode and crops, normalisation)."""

    def __init__(self, dataset: ParquetImageStream, batch_size: int, num_workers: int, device: torch.device):
        self.dataset, self.device = dataset, device
        self.loader = stream_loader(dataset, batch_size, num_workers, pin_memory=device.type == "cuda")
        self._gpu_transform = (
            image_transform(dataset.size, dataset.augment, normalize=False) if dataset.decode == "gpu" else None
        )

    def rows_per_rank(self) -> list[int]:
        return self.dataset.rows_per_rank()

    def epoch(self, epoch: int, steps: int):
        """``steps`` batches (x, y) of ``epoch`` on the device, x normalised float."""
        from ._data import normalize_images
        from ._input import to_device

        self.dataset.set_epoch(epoch)  # before iter(): the loader processes start the epoch from it
        batches = itertools.islice(iter(self.loader), steps)
        if self._gpu_transform is not None:
            for items, y in batches:
                x = decode_batch(items, self.device, self._gpu_transform)
                yield normalize_images(x), y.to(self.device, non_blocking=True)
            return
        for x, y in to_device(batches, self.device):
            yield (x if self.dataset.normalize else normalize_images(x)), y


def decode_batch(items: list[torch.Tensor], device: torch.device, transform) -> torch.Tensor:
    """decode = gpu: one batch's images decoded together on ``device``, each cropped and flipped there (the same
    transforms as on the CPU), stacked uint8 (B, 3, size, size)."""
    return torch.stack([transform(img) for img in decode_on_device(items, device)])
