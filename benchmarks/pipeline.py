"""Image pipeline: streaming from the Parquet label table against reading JPEG files from disk.

Both sides do the same work per image -- Pillow decode, then torchvision transforms v2 (RandomResizedCrop
to 224 + horizontal flip, float, normalise) -- through a PyTorch DataLoader with the same batch size:

- ``parquet``: :class:`tailsweep.trainables._stream.ParquetImageStream`, each loader process reading its own
  row groups of the split's Parquet file (the bytes stored inside the table);
- ``jpeg files``: a map-style dataset over the same images as JPEG files in a folder (the usual recipe).

Measured "per core" (one loader process) and "with all cores" (one per core), interleaved round by round,
median images/s reported; the ratio parquet / files is the figure (target >= 1.0). Data: the clothing table
(``make clothing-data``) and its source JPEGs when present, else generated JPEGs.

Usage: ``python benchmarks/pipeline.py [--images 768] [--rounds 3] [--out docs/benchmarks.md]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _docs import update_section

from tailsweep.datasets import LabelTable
from tailsweep.trainables._stream import JpegFiles, ParquetImageStream, stream_loader

BEGIN, END = "<!-- pipeline:begin -->", "<!-- pipeline:end -->"
ROOT = Path(__file__).resolve().parents[1]
CLOTHING_TABLE = ROOT / "tailsweep-runs" / "data" / "clothing"
CLOTHING_JPEGS = ROOT.parent / "shared" / "data" / "clothing_dataset_full" / "images"


def generated(tmp: Path, n: int):
    """n JPEGs (400 x 533) as files and as a label table."""
    import io

    import pyarrow as pa
    from PIL import Image

    from tailsweep.datasets import Manifest, write_table

    rng = np.random.default_rng(0)
    files, blobs = [], []
    (tmp / "jpg").mkdir()
    for i in range(n):
        arr = (rng.random((533, 400, 3)) * 40 + np.linspace(0, 200, 400)[None, :, None]).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=90)
        blobs.append(buf.getvalue())
        (tmp / "jpg" / f"{i}.jpg").write_bytes(blobs[-1])
        files.append(tmp / "jpg" / f"{i}.jpg")
    split = lambda k: pa.table({"id": [f"{i}" for i in range(k)], "labels": [["a"]] * k,  # noqa: E731
                                "image": pa.array(blobs[:k], pa.binary())})
    table = write_table(tmp / "table", Manifest(name="generated-jpegs", input="image"), [{"label": "a", "parents": []}],
                        {"train": split(n), "val": split(4), "test": split(4)}, row_group_size=128)
    return table, files


def throughput(loader, images: int) -> float:
    seen, t0 = 0, time.perf_counter()
    for x, _ in loader:
        seen += len(x)
        if seen >= images:
            break
    return seen / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=768, help="images per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        if (CLOTHING_TABLE / "train.parquet").is_file() and CLOTHING_JPEGS.is_dir():
            table = LabelTable(CLOTHING_TABLE)
            ids = table.read("train", ["id"]).column("id").to_pylist()
            files = [CLOTHING_JPEGS / f"{i}.jpg" for i in ids]
            source = f"the clothing table's train split ({len(ids)} photos, 224 px on the shorter side)"
        else:
            table, files = generated(Path(tmp), max(args.images, 256))
            source = f"{len(files)} generated 400 x 533 JPEGs"
        targets = torch.from_numpy(table.targets("train").astype(np.float32))
        results: dict = {}
        for _ in range(args.rounds):
            for workers, label in ((1, "per core (1 loader process)"), (cores, f"all cores ({cores} loader processes)")):
                stream = ParquetImageStream(table.path("train"), table.encode, 224, True, seed=len(results))
                pq_loader = stream_loader(stream, args.batch_size, workers)
                file_loader = torch.utils.data.DataLoader(JpegFiles(files, targets, 224, True), batch_size=args.batch_size,
                                                          shuffle=True, num_workers=workers, prefetch_factor=4)
                results.setdefault((label, "parquet"), []).append(throughput(pq_loader, args.images))
                results.setdefault((label, "files"), []).append(throughput(file_loader, args.images))
                del pq_loader, file_loader
        rows = []
        for label in dict.fromkeys(k[0] for k in results):
            p, f = statistics.median(results[(label, "parquet")]), statistics.median(results[(label, "files")])
            rows.append((label, p, f, p / f))
            print(f"{label}: parquet stream {p:.1f} img/s, jpeg files {f:.1f} img/s, ratio {p / f:.2f}", flush=True)
    text = "\n".join([
        BEGIN,
        f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/pipeline.py --images {args.images} --rounds "
        f"{args.rounds}` on {source}: Pillow decode + transforms v2 (RandomResizedCrop 224, flip, normalise), "
        f"batch {args.batch_size}, median of {args.rounds} interleaved rounds. Target (issue 9): parquet / files >= 1.0.",
        "", "| loader processes | Parquet stream img/s | JPEG files img/s | ratio |", "|---|---|---|---|",
        *[f"| {label} | {p:.1f} | {f:.1f} | **{r:.2f}** |" for label, p, f, r in rows], END])
    if args.out:
        update_section(args.out, BEGIN, END, "Image pipeline (`python benchmarks/pipeline.py`)", text)


if __name__ == "__main__":
    main()
