"""The frozen-encoder cache: embeddings computed once per (table, encoder, image size), reused by every trial.

With a frozen pretrained encoder and no augmentation, the encoder's output for an image never changes,
so a sweep of many trials needs one encoder pass: the first trial that needs it writes the embeddings as a
*features* label table under ``<table>/embeddings/<key>/`` (same labels, splits and ids), and every later
trial trains its head from that table. A file lock makes concurrent trials wait for one pass instead of
each computing it; the cache records the source table's digest and is rebuilt if the table changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from ..datasets import LabelTable, Manifest, TableError, write_table
from ._data import load_split, prepare_batch

CACHE_DIR = "embeddings"


def cache_key(backbone: str, image_size: int | None, weights: str | None) -> str:
    w = "bundled" if weights is None else hashlib.sha256(Path(weights).expanduser().read_bytes()).hexdigest()[:12]
    return f"{backbone}-{image_size or 'native'}px-{w}"


def cached_table(table: LabelTable, backbone: str, image_size: int | None, weights: str | None) -> LabelTable | None:
    """The cached embeddings table if it exists and matches the table's current content, else None."""
    path = table.root / CACHE_DIR / cache_key(backbone, image_size, weights)
    if not (path / "manifest.json").is_file():
        return None
    cached = LabelTable(path)
    return cached if cached.manifest.extra.get("source_digest") == table.digest() else None


@torch.no_grad()
def _encode(
    encoder: torch.nn.Module,
    table: LabelTable,
    split: str,
    image_size: int | None,
    device: torch.device,
    batch_size: int,
    log,
) -> np.ndarray:
    data = load_split(table, split, image_size)
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(data), batch_size):
        x = prepare_batch(data.inputs[i : i + batch_size], True, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(encoder(x).float().flatten(1).cpu())
        if log is not None and (i // batch_size) % 20 == 0:
            log(
                f"embedding {split}: {min(i + batch_size, len(data))}/{len(data)} images "
                f"({(i + batch_size) / max(time.perf_counter() - t0, 1e-9):.0f}/s)"
            )
    return torch.cat(out).numpy() if out else np.zeros((0, 1), np.float32)


def embedding_table(
    table: LabelTable,
    backbone: str,
    image_size: int | None,
    weights: str | None,
    device: torch.device,
    batch_size: int = 64,
    log=print,
) -> tuple[LabelTable, bool]:
    """The embeddings of ``table``'s images under the frozen pretrained ``backbone``; (table, built now)."""
    from ._models import pretrained_encoder

    if (hit := cached_table(table, backbone, image_size, weights)) is not None:
        return hit, False
    root = table.root / CACHE_DIR
    root.mkdir(exist_ok=True)
    key = cache_key(backbone, image_size, weights)
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one encoder pass; the others wait, then read it
        try:
            if (hit := cached_table(table, backbone, image_size, weights)) is not None:
                return hit, False
            shutil.rmtree(root / key, ignore_errors=True)  # stale (the table changed)
            encoder, width = pretrained_encoder(backbone, weights)
            encoder.eval().to(device)
            splits = {}
            for split in ("train", "val", "test"):
                feats = _encode(encoder, table, split, image_size, device, batch_size, log)
                src = table.read(split, ["id", "labels"])
                splits[split] = pa.table(
                    {
                        "id": src.column("id"),
                        "labels": src.column("labels"),
                        "features": pa.FixedSizeListArray.from_arrays(
                            pa.array(feats.astype(np.float32).ravel()), width
                        ),
                    }
                )
            labels = [{"label": x, "parents": list(table.parents[x]), "name": table.names[x]} for x in table.labels]
            manifest = Manifest(
                name=f"{table.name} [{key}]",
                input="features",
                source=table.name,
                extra={
                    "source_digest": table.digest(),
                    "encoder": backbone,
                    "image_size": image_size,
                    "weights": weights or "bundled",
                    "width": width,
                },
            )
            try:
                return write_table(root / key, manifest, labels, splits), True
            except TableError:
                if (hit := cached_table(table, backbone, image_size, weights)) is not None:
                    return hit, False
                raise
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
