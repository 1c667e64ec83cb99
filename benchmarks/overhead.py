"""Trial overhead and in-trial throughput, side by side in one run.

Measures, on the same machine in one process tree:

1. **Fixed Ray overhead per trial** of a real tailsweep sweep (Tune trial -> Ray Train worker group,
   1 worker, trials run one at a time): trial start (Tune launches the trial) -> first training step
   (wall clock taken in the worker) -> first result Tune sees -> trial end.
2. **In-trial steady-state throughput**: training samples/s the worker loop reports for epochs >= 2,
   divided by a bare PyTorch loop on the same model, data, batch and thread count, run in this
   process before and after the sweep (their mean; the spread is reported).

Ratios, not absolute seconds, are the result: these machines are noisy.

Usage: ``python benchmarks/overhead.py [--trials 3] [--epochs 3] [--out docs/benchmarks.md]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from ray import tune

from tailsweep.datasets import LabelTable, label_stats, synth_garments
from tailsweep.losses import build_loss
from tailsweep.orchestrator._sweep import run_sweep
from tailsweep.orchestrator.spec import load_spec
from tailsweep.trainables._data import load_split, prepare_batch
from tailsweep.trainables._models import build_model

BEGIN, END = "<!-- overhead:begin -->", "<!-- overhead:end -->"


class Timeline(tune.Callback):
    """Driver-side timestamps per trial."""

    def __init__(self):
        self.t: dict[str, dict] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.t.setdefault(trial.trial_id, {})["start"] = time.time()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        d = self.t.setdefault(trial.trial_id, {})
        d.setdefault("first_result", time.time())
        d.setdefault("first_step", result.get("time/first_step"))
        d["last_result"] = time.time()
        d.setdefault("rates", []).append((result.get("epoch"), result.get("time/train_samples_per_s")))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.t.setdefault(trial.trial_id, {})["end"] = time.time()


def bare_loop(table: LabelTable, backbone: str, batch: int, steps: int, seed: int = 0) -> float:
    """Samples/s of a plain PyTorch training loop: same model, data, batch, loss, optimiser, 1 thread."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    stats = label_stats(table)
    data = load_split(table, "train")
    model = build_model(backbone, stats.num_labels)
    loss_fn = build_loss("unweighted", stats)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()
    n = len(data)
    dev = torch.device("cpu")
    warmup = 3
    for s in range(warmup + steps):
        if s == warmup:
            t0 = time.perf_counter()
        idx = torch.randint(0, n, (batch,))
        x = prepare_batch(data.inputs[idx], data.is_image, dev)
        loss = loss_fn(model(x), data.targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--n-train", type=int, default=768)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        table = synth_garments(tmp / "data", n_train=args.n_train, n_val=128, n_test=128,
                               image_size=args.image_size, seed=0)
        steps_per_epoch = args.n_train // args.batch
        print(f"bare loop ({args.backbone}, {args.image_size}px, batch {args.batch}) ...", flush=True)
        bare_before = bare_loop(table, args.backbone, args.batch, steps_per_epoch)

        spec = load_spec(None, [
            f"data.path={table.root}", f"model.backbone={args.backbone}", f"tracking.dir={tmp / 'runs'}",
            f"train.epochs={args.epochs}", f"train.batch_size={args.batch}", "train.augment=false",
            "schemes=[unweighted]", f"seeds={list(range(args.trials))}", "resources.max_concurrent_trials=1"])
        timeline = Timeline()
        t_sweep = time.time()
        run_sweep(spec, callbacks=[timeline])
        sweep_wall = time.time() - t_sweep
        bare_after = bare_loop(table, args.backbone, args.batch, steps_per_epoch)

    rows = []
    for d in timeline.t.values():
        rates = [r for e, r in d.get("rates", []) if e and e >= 2 and r]
        rows.append({"to_first_step": d["first_step"] - d["start"], "to_first_result": d["first_result"] - d["start"],
                     "tail": d["end"] - d["last_result"], "total": d["end"] - d["start"],
                     "rate": statistics.mean(rates) if rates else float("nan")})
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    bare = (bare_before + bare_after) / 2
    ratio = med["rate"] / bare
    from importlib.metadata import version

    md = [
        BEGIN,
        "## Trial overhead and in-trial throughput (`make bench`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on this machine "
        f"({_cpu()}), ray {version('ray')}, torch {torch.__version__}. Command: "
        f"`python benchmarks/overhead.py --trials {args.trials} --epochs {args.epochs}`. "
        f"Workload: {args.backbone} on {args.n_train} generated {args.image_size}px images, batch {args.batch}, "
        "1 worker per trial with 1 CPU and 1 torch thread, trials one at a time.",
        "",
        "| per-trial phase (median of " + str(len(rows)) + " trials) | seconds |",
        "|---|---|",
        f"| trial start -> first training step | {med['to_first_step']:.1f} |",
        f"| trial start -> first result seen by Tune | {med['to_first_result']:.1f} |",
        f"| last result -> trial end (teardown tail) | {med['tail']:.1f} |",
        f"| whole trial ({args.epochs} epochs) | {med['total']:.1f} |",
        f"| sweep wall per trial | {sweep_wall / len(rows):.1f} |",
        "",
        "| in-trial steady state (epochs >= 2) | samples/s |",
        "|---|---|",
        f"| tailsweep worker loop (median over trials) | {med['rate']:.1f} |",
        f"| bare PyTorch loop, same model/data/batch (before / after the sweep) | {bare_before:.1f} / {bare_after:.1f} |",
        f"| **ratio worker / bare** | **{ratio:.3f}** |",
        "",
        END,
    ]
    text = "\n".join(md)
    print(text)
    out = Path(args.out)
    old = out.read_text() if out.is_file() else "# Benchmarks\n\nFigures measured by the project's own benchmark commands.\n\n"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END):]
    else:
        new = old.rstrip() + "\n\n" + text + "\n"
    out.write_text(new)
    print(f"\nwrote {out}", file=sys.stderr)


def _cpu() -> str:
    import os

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    return f"{os.cpu_count()} cores, {model}"


if __name__ == "__main__":
    main()
