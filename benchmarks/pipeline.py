"""Image input: tailsweep's stream pipeline into the step against a bare torch DataLoader, and input wait.

1. **Into the step.** Both sides do the same work per image -- Pillow decode, then torchvision transforms v2
   (RandomResizedCrop to 224 + horizontal flip, float, normalise) -- in the same number of loader processes,
   same batch size, over ``--epochs`` full passes over the same ``--images`` images (the split's first rows, its
   row groups kept):

   - ``tailsweep``: what a trial's step receives (``trainables/_stream.py: StreamInput`` through
     ``_input.TimedBatches``): each loader process reads its own row groups of the split's Parquet file, the
     processes persist across epochs;
   - ``bare DataLoader``: ``torch.utils.data.DataLoader`` over the same photos as JPEG files
     (``_stream.JpegFiles``, map-style, ``shuffle=True``), with its defaults otherwise (processes restarted
     every epoch, prefetch factor 2).

   Interleaved round by round (who goes first alternating) after one uncounted warm-up pass of each, median
   images/s; the ratio tailsweep / bare is the figure (target >= 0.95).

2. **Input wait.** resnet18 training steps (forward, backward, AdamW; one torch thread, as a worker holding
   ``cpus_per_worker: 2`` has, beside its one loader process) fed by the stream pipeline at 64 and 224 px:
   ``train/input_wait_frac`` as the worker logs it, and the step rate.

Data: the clothing table (``make clothing-data``) and its source JPEGs when present, else generated JPEGs.

Usage: ``python benchmarks/pipeline.py [--images 1024] [--epochs 2] [--rounds 5] [--out docs/benchmarks.md]``
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
from tailsweep.trainables._input import TimedBatches
from tailsweep.trainables._stream import JpegFiles, ParquetImageStream, StreamInput
from tailsweep.trainables._torchvision_compat import import_torchvision

BEGIN, END = "<!-- pipeline:begin -->", "<!-- pipeline:end -->"
ROOT = Path(__file__).resolve().parents[1]
CLOTHING_TABLE = ROOT / "tailsweep-runs" / "data" / "clothing"
CLOTHING_JPEGS = ROOT.parent / "shared" / "data" / "clothing_dataset_full" / "images"
CPU = torch.device("cpu")


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
    split = (  # noqa: E731
        lambda k: pa.table(
            {
                "id": [f"{i}" for i in range(k)],
                "labels": [["a"]] * k,
                "image": pa.array(blobs[:k], pa.binary()),
            }
        )
    )
    table = write_table(
        tmp / "table",
        Manifest(name="generated-jpegs", input="image"),
        [{"label": "a", "parents": []}],
        {"train": split(n), "val": split(4), "test": split(4)},
        row_group_size=128,
    )
    return table, files


def subset(table, n: int, tmp: Path) -> Path:
    """The first ``n`` rows of the training split as a Parquet file, in row groups of the split's own size."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(table.path("train"))
    path = tmp / "train-subset.parquet"
    pq.write_table(f.read().slice(0, n), path, row_group_size=f.metadata.row_group(0).num_rows)
    return path


def tailsweep_rate(path: Path, table, workers: int, batch: int, epochs: int, seed: int) -> float:
    """Images/s into the step over ``epochs`` epochs, the loader made once (as in a trial)."""
    t0, seen = time.perf_counter(), 0
    dataset = ParquetImageStream(path, table.encode, 224, True, seed=seed)
    stream = StreamInput(dataset, batch, workers, CPU)
    steps = -(-dataset.rows_per_rank()[0] // batch)  # every row, the last batch partial (as the bare loader)
    for epoch in range(epochs):
        for x, _ in TimedBatches(stream.epoch(epoch, steps), CPU):
            seen += len(x)
    rate = seen / (time.perf_counter() - t0)
    del stream
    return rate


def bare_rate(files, targets, workers: int, batch: int, epochs: int) -> float:
    """Images/s out of a plain DataLoader over the JPEG files (its processes restart every epoch, its default)."""
    t0, seen = time.perf_counter(), 0
    loader = torch.utils.data.DataLoader(
        JpegFiles(files, targets, 224, True), batch_size=batch, shuffle=True, num_workers=workers
    )
    for _ in range(epochs):
        for x, _ in loader:
            seen += len(x)
    return seen / (time.perf_counter() - t0)


def input_wait(table, size: int, batch: int, steps: int, num_labels: int) -> tuple[float, float]:
    """(train/input_wait_frac, images/s) of resnet18 steps fed by the stream pipeline (one loader process)."""
    import_torchvision()
    from torchvision.models import resnet18

    model = resnet18(num_classes=num_labels)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    stream = StreamInput(ParquetImageStream(table.path("train"), table.encode, size, True, seed=size), batch, 1, CPU)
    for x, y in stream.epoch(0, 1):  # warm-up: the loader process starts, first allocations
        loss_fn(model(x), y).backward()
    timed = TimedBatches(stream.epoch(1, steps), CPU)
    t0, seen = time.perf_counter(), 0
    for x, y in timed:
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(x)
    rate = seen / (time.perf_counter() - t0)
    del stream
    return timed.wait_frac(), rate


def _data(tmp: Path, images: int):
    if (CLOTHING_TABLE / "train.parquet").is_file() and CLOTHING_JPEGS.is_dir():
        table = LabelTable(CLOTHING_TABLE)
        ids = table.read("train", ["id"]).column("id").to_pylist()
        files = [CLOTHING_JPEGS / f"{i}.jpg" for i in ids]
        return table, files, f"the clothing table's train split ({len(ids)} photos)"
    table, files = generated(tmp, max(images, 256))
    return table, files, f"{len(files)} generated 400 x 533 JPEGs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1024, help="images per epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--wait-steps", type=int, default=6, help="resnet18 steps per input-wait measurement")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    import_torchvision()  # a trial's worker has it imported (its model) before its loader processes start
    with tempfile.TemporaryDirectory() as tmp:
        table, files, source = _data(Path(tmp), args.images)
        path, files = subset(table, args.images, Path(tmp)), files[: args.images]
        targets = torch.from_numpy(table.targets("train").astype(np.float32))[: args.images]
        results: dict = {}
        sides = {
            "tailsweep": lambda w, r: tailsweep_rate(path, table, w, args.batch_size, args.epochs, seed=r),
            "bare": lambda w, r: bare_rate(files, targets, w, args.batch_size, args.epochs),
        }
        for name in sides:  # warm-up, not counted: both data sets read once (page cache), first forks
            sides[name](1, 0)
        for r in range(args.rounds):
            for workers in (1, 2):
                for name in sorted(sides, reverse=r % 2 == 1):  # who goes first alternates round by round
                    results.setdefault((workers, name), []).append(sides[name](workers, r))
        rows = []
        for workers in (1, 2):
            p, f = statistics.median(results[(workers, "tailsweep")]), statistics.median(results[(workers, "bare")])
            rows.append((workers, p, f, p / f))
            print(f"{workers} loader process(es): tailsweep {p:.1f} img/s, bare DataLoader {f:.1f}, ratio {p / f:.2f}")
        waits = []
        for size, batch in ((64, args.batch_size), (224, args.batch_size // 2)):
            frac, rate = input_wait(table, size, batch, args.wait_steps, table.num_labels)
            waits.append((size, batch, frac, rate))
            print(f"resnet18 at {size} px, batch {batch}: input_wait_frac {frac:.3f}, {rate:.1f} img/s", flush=True)
    text = "\n".join(
        [
            BEGIN,
            f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/pipeline.py --images {args.images} --epochs "
            f"{args.epochs} --rounds {args.rounds}` on {source}, {os.cpu_count()} cores shared with other work: Pillow "
            f"decode + transforms v2 (RandomResizedCrop 224, flip, normalise), batch {args.batch_size}, {args.epochs} "
            f"full epochs over its first {args.images} photos (start-up included), median of {args.rounds} interleaved "
            "rounds after a warm-up. Target (issue 29): tailsweep / bare >= 0.95.",
            "",
            "| loader processes | tailsweep stream into the step, img/s | bare DataLoader over the JPEG files, img/s "
            "| ratio |",
            "|---|---|---|---|",
            *[f"| {w} | {p:.1f} | {f:.1f} | **{r:.2f}** |" for w, p, f, r in rows],
            "",
            f"Input wait of resnet18 training steps on the CPU (one torch thread, one loader process, stream pipeline, "
            f"{args.wait_steps} steps after a warm-up epoch):",
            "",
            "| image size | batch | `train/input_wait_frac` | img/s through the step |",
            "|---|---|---|---|",
            *[f"| {s} px | {b} | **{w:.3f}** | {r:.1f} |" for s, b, w, r in waits],
            END,
        ]
    )
    if args.out:
        update_section(args.out, BEGIN, END, "Image pipeline (`python benchmarks/pipeline.py`)", text)


if __name__ == "__main__":
    main()
