"""Ray Data's streaming split against tailsweep's stream pipeline, on one node: does it pay for a trial?

Both sides read the same Parquet split and do the same work per image -- Pillow decode, then transforms v2
(RandomResizedCrop 224, flip, float, normalise) -- for ``--epochs`` epochs of ``--images`` images each, with the
same CPUs for that work (1, then 2):

- ``tailsweep``: ``trainables/_stream.py: StreamInput`` (loader processes kept for the trial, row groups
  dealt to processes), as a trial's step receives its batches;
- ``Ray Data``: ``ray.data.read_parquet`` -> ``map_batches`` (the same transforms, fused with the read into Ray
  tasks, limited to that many CPUs by ``ExecutionOptions.resource_limits``) -> ``streaming_split(1)`` -> ``iter_torch_batches``:
  what a Train worker's ``get_dataset_shard`` iterates (the split's coordinator actor included).

Measured: images/s over all epochs (start-up included), and the time to the first batch. A local Ray with
2 CPUs is started for the run (and shut down after it). A measurement that has not finished after
``--limit-s`` is reported as hung (nan) and ends the run.

Usage: ``python benchmarks/raydata.py [--images 384] [--epochs 2] [--rounds 2] [--out docs/benchmarks.md]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch
from _docs import update_section

from tailsweep.datasets import LabelTable
from tailsweep.trainables._stream import ParquetImageStream, StreamInput, decode, image_transform
from tailsweep.trainables._torchvision_compat import import_torchvision

BEGIN, END = "<!-- raydata:begin -->", "<!-- raydata:end -->"
ROOT = Path(__file__).resolve().parents[1]
CLOTHING_TABLE = ROOT / "tailsweep-runs" / "data" / "clothing"
CPU = torch.device("cpu")


def tailsweep_run(table, cpus: int, batch: int, steps: int, epochs: int) -> tuple[float, float, float]:
    """(images/s, seconds to the first batch, images/s after the first batch)."""
    t0, seen, first = time.perf_counter(), 0, None
    stream = StreamInput(ParquetImageStream(table.path("train"), table.encode, 224, True, seed=0), batch, cpus, CPU)
    for epoch in range(epochs):
        for x, _ in stream.epoch(epoch, steps):
            first = first or time.perf_counter() - t0
            seen += len(x)
    total = time.perf_counter() - t0
    del stream
    return seen / total, first, (seen - batch) / (total - first)


_WORKER_SIDE: dict = {}  # per Ray worker process: the table and the transforms, made at its first batch


def _transform(batch, root: str):
    """map_batches: a batch of Parquet rows -> normalised images and targets (the same work as a loader process)."""
    if root not in _WORKER_SIDE:
        import_torchvision()
        _WORKER_SIDE[root] = LabelTable(root), image_transform(224, True)
    table, transform = _WORKER_SIDE[root]
    x = torch.stack([transform(decode(b)) for b in batch.column("image").to_pylist()])
    return {"x": x.numpy(), "y": table.encode(batch.column("labels")).astype(np.float32)}


def ray_data_run(table, cpus: int, batch: int, steps: int, epochs: int) -> tuple[float, float, float]:
    """(images/s, seconds to the first batch, images/s after it) through Ray Data's streaming split: read and
    transform fused into
    Ray tasks of 1 CPU, at most ``cpus`` CPUs of them at a time."""
    import ray.data
    from ray.data import ExecutionResources

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.resource_limits = ExecutionResources(cpu=cpus)
    t0, seen, first = time.perf_counter(), 0, None
    ds = (
        ray.data.read_parquet(str(table.path("train")))
        .select_columns(["image", "labels"])
        .map_batches(_transform, fn_kwargs={"root": str(table.root)}, batch_size=batch, batch_format="pyarrow")
    )
    (split,) = ds.streaming_split(1)
    for _ in range(epochs):
        for i, b in enumerate(split.iter_torch_batches(batch_size=batch)):
            first = first or time.perf_counter() - t0
            seen += len(b["y"])
            if i + 1 >= steps:
                break
    total = time.perf_counter() - t0
    return seen / total, first, (seen - batch) / (total - first)


def _bounded(run, *args, limit_s: float):
    """run(*args) in a thread; nans when it has not returned within ``limit_s`` (a hang, reported)."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(run(*args)), daemon=True)
    t.start()
    t.join(limit_s)
    return out[0] if out else (math.nan, math.nan, math.nan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=384, help="images per epoch")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--limit-s", type=float, default=300, help="a measurement not done by then is reported hung")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import ray

    if not (CLOTHING_TABLE / "train.parquet").is_file():
        raise SystemExit(f"{CLOTHING_TABLE} missing: run `make clothing-data` first")
    torch.set_num_threads(1)
    import_torchvision()
    table = LabelTable(CLOTHING_TABLE)
    steps = args.images // args.batch_size
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    results: dict = {}
    hung = False
    try:
        for _ in range(args.rounds):
            for cpus in (1, 2):
                for name, run in (("tailsweep", tailsweep_run), ("Ray Data", ray_data_run)):
                    got = _bounded(run, table, cpus, args.batch_size, steps, args.epochs, limit_s=args.limit_s)
                    results.setdefault((cpus, name), []).append(got)
                    print(cpus, name, got, flush=True)
                    if math.isnan(got[0]):
                        hung = True
                        break
                if hung:
                    break
            if hung:
                break
    finally:
        ray.shutdown()
    rows = []
    for cpus in (1, 2):
        if not results.get((cpus, "Ray Data")):
            continue
        t = [statistics.median(v) for v in zip(*results[(cpus, "tailsweep")], strict=True)]
        runs = results[(cpus, "Ray Data")]
        r = [math.nan, math.nan, math.nan]
        if not any(math.isnan(x[0]) for x in runs):
            r = [statistics.median(v) for v in zip(*runs, strict=True)]
        rows.append((cpus, t, r))
        print(
            f"{cpus} CPU(s): tailsweep {t[0]:.1f} img/s (first batch {t[1]:.1f} s, then {t[2]:.1f}), Ray Data "
            f"{r[0]:.1f} img/s (first batch {r[1]:.1f} s, then {r[2]:.1f}), ratio {r[0] / t[0]:.2f}"
        )
    text = "\n".join(
        [
            BEGIN,
            f"Measured {time.strftime('%Y-%m-%d')} with `python benchmarks/raydata.py --images {args.images} --epochs "
            f"{args.epochs} --rounds {args.rounds} --limit-s {args.limit_s:g}` on the clothing table's train split: Pillow decode + transforms v2 "
            f"(RandomResizedCrop 224, flip, normalise), batch {args.batch_size}, {args.epochs} epochs of {steps} "
            f"batches, start-up included, median of {args.rounds} interleaved rounds, a local Ray of 2 CPUs.",
            "",
            "| CPUs for decoding | tailsweep stream img/s | Ray Data streaming split img/s | Ray Data / tailsweep "
            "| first batch: tailsweep / Ray Data | after the first batch, img/s: tailsweep / Ray Data |",
            "|---|---|---|---|---|---|",
            *[
                f"| {c} | {t[0]:.1f} | {r[0]:.1f} | **{r[0] / t[0]:.2f}** | {t[1]:.1f} s / {r[1]:.1f} s "
                f"| {t[2]:.1f} / {r[2]:.1f} |"
                if not math.isnan(r[0])
                else f"| {c} | {t[0]:.1f} | hung (no batches after {args.limit_s:.0f} s) | - | {t[1]:.1f} s / - | - |"
                for c, t, r in rows
            ],
            END,
        ]
    )
    if args.out:
        update_section(args.out, BEGIN, END, "Ray Data's streaming split (`python benchmarks/raydata.py`)", text)


if __name__ == "__main__":
    main()
