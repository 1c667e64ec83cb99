"""Where images are decoded: ``train.decode`` = cpu (Pillow) | gpu (``torchvision.io.decode_jpeg`` on CUDA) | auto.

On a GPU worker, JPEG decoding is the input pipeline's largest cost on the CPU (about 410 photos/s per core
at 224 px, issue 29), far below what one GPU trains on. ``decode_jpeg`` takes a list of encoded images and
decodes them together on the GPU (nvJPEG); tailsweep then crops/resizes each image there. Only JPEG goes that
way: any other format (PNG in small test tables) is decoded with Pillow and moved to the device beside them.

``auto`` is ``gpu`` when the worker has CUDA and a one-image trial decode on it works (torchvision's compiled
ops load: they do not with the CPU torch of this project's CI, see ``_torchvision_compat``), else ``cpu``.
"""

from __future__ import annotations

import functools
import io

import numpy as np
import torch

DECODES = ("cpu", "gpu", "auto")
_JPEG_MAGIC = b"\xff\xd8\xff"


def is_jpeg(blob: bytes | memoryview) -> bool:
    return bytes(blob[:3]) == _JPEG_MAGIC


def pillow_decode(blob: bytes, size: int | None = None) -> np.ndarray:
    """Image bytes -> uint8 HWC RGB array, resized to ``size`` x ``size`` (bilinear) when given."""
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        im = im.convert("RGB")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def _tiny_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


@functools.cache
def gpu_decode_works(device: torch.device) -> bool:
    """Whether ``torchvision.io.decode_jpeg`` decodes on ``device`` here (tried once per process and device)."""
    if device.type != "cuda":
        return False
    try:
        out = decode_jpegs([torch.frombuffer(bytearray(_tiny_jpeg()), dtype=torch.uint8)], device)
        return len(out) == 1 and tuple(out[0].shape) == (3, 8, 8)
    except Exception:  # noqa: BLE001 (no compiled torchvision ops, no nvJPEG: decode on the CPU)
        return False


def resolve_decode(choice: str, device: torch.device) -> str:
    """``train.decode`` for this worker: "cpu" or "gpu". Refuses ``gpu`` where it cannot run, saying why."""
    if choice not in DECODES:
        raise ValueError(f"train.decode must be one of {', '.join(DECODES)}, got {choice!r}")
    if choice == "cpu":
        return "cpu"
    works = gpu_decode_works(device)
    if choice == "auto":
        return "gpu" if works else "cpu"
    if device.type != "cuda":
        raise ValueError(
            f"train.decode = gpu decodes JPEGs on the GPU, but this worker runs on {device.type}; set "
            "resources.use_gpu: true on a cluster with GPUs, or train.decode: cpu (or auto)"
        )
    if not works:
        raise ValueError(
            "train.decode = gpu: torchvision.io.decode_jpeg does not decode on this worker's GPU (its compiled ops "
            "do not load with this torch); install the torchvision build that matches torch, or set train.decode: "
            "cpu (or auto)"
        )
    return "gpu"


def decode_jpegs(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Encoded JPEGs (1-D uint8 tensors) -> uint8 CHW RGB tensors on ``device``, decoded together."""
    from ._torchvision_compat import import_torchvision

    import_torchvision()
    from torchvision.io import ImageReadMode, decode_jpeg

    return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))


def decode_on_device(items: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """A batch's images as uint8 CHW tensors on ``device``: 1-D items are encoded JPEGs (decoded there together),
    3-D items were already decoded (formats nvJPEG does not read) and are moved."""
    encoded = [i for i, t in enumerate(items) if t.dim() == 1]
    out: list = [None] * len(items)
    if encoded:
        for i, img in zip(encoded, decode_jpegs([items[i] for i in encoded], device), strict=True):
            out[i] = img
    for i, t in enumerate(items):
        if out[i] is None:
            out[i] = t.to(device, non_blocking=True)
    return out


def decode_blobs_on_device(
    blobs: list[bytes], size: int | None, device: torch.device, chunk: int = 256
) -> torch.Tensor:
    """Image bytes -> one uint8 (N, 3, size, size) tensor on the CPU, JPEGs decoded and resized on ``device``
    (bilinear with antialiasing: close to, not equal to, Pillow's resize)."""
    from ._torchvision_compat import import_torchvision

    import_torchvision()
    from torchvision.transforms.v2 import functional as F

    parts = []
    for start in range(0, len(blobs), chunk):
        items = [
            torch.frombuffer(bytearray(b), dtype=torch.uint8)
            if is_jpeg(b)
            else torch.from_numpy(pillow_decode(b, size)).permute(2, 0, 1).contiguous()
            for b in blobs[start : start + chunk]
        ]
        imgs = decode_on_device(items, device)
        if size is not None:
            imgs = [im if tuple(im.shape[-2:]) == (size, size) else F.resize(im, [size, size]) for im in imgs]
        parts.append(torch.stack(imgs).cpu())
    return torch.cat(parts)
