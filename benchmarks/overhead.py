"""Per-trial overhead, in-trial throughput and concurrency, side by side in one run (`make bench`).

One command measures, on this machine, in this order:

1. the **floor probe**: two fresh Ray actors in series, each importing ``ray.train.torch``, then the
   first optimiser construction (benchmarks/_plain.py);
2. the **plain Train V2 pattern**: a tiny Tune function trainable that builds a ``TorchTrainer`` and
   nothing else, trials one at a time;
3. **tailsweep** on the same kind of tiny trial (small MLP, feature table), trials one at a time,
   with the lean per-trial path on and off, and two at a time;
4. **in-trial throughput**: the worker loop's steady-state samples/s (epochs >= 2, evaluation timed
   separately) against a bare PyTorch loop on the same model, data, batch and thread count (run in
   this process before and after the sweeps);
5. **concurrency**: trials per hour of compute-bound trials two at a time against one at a time.

Per trial: trial start (Tune launches it) -> first training step (wall clock in the worker) -> first
result Tune sees; last result -> trial end. Ratios, not absolute seconds, are the result.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from ray import tune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _plain import floor_probe, plain_sweep  # noqa: E402

from tailsweep.datasets import LabelTable, Manifest, label_stats, synth_garments, write_table  # noqa: E402
from tailsweep.losses import build_loss  # noqa: E402
from tailsweep.orchestrator._sweep import run_sweep  # noqa: E402
from tailsweep.orchestrator.spec import load_spec  # noqa: E402
from tailsweep.trainables.hooks import TIMESTAMPS_ENV  # noqa: E402

os.environ[TIMESTAMPS_ENV] = "1"  # the workers report their start-up timestamps (trainables/hooks.py)
from tailsweep.trainables._data import load_split, prepare_batch  # noqa: E402
from tailsweep.trainables._models import build_model  # noqa: E402

BEGIN, END = "<!-- overhead:begin -->", "<!-- overhead:end -->"


class Timeline(tune.Callback):
    """Driver-side timestamps per trial."""

    def __init__(self):
        self.t: dict[str, dict] = {}
        self.fit = [0.0, 0.0]  # Tuner.fit: first and last callback (same measure for every sweep)

    def setup(self, **info):
        self.fit[0] = time.time()
        self.cpu0 = _busy_cpu_s()

    def on_experiment_end(self, trials, **info):
        self.fit[1] = time.time()
        self.cpu = _busy_cpu_s() - self.cpu0

    def on_trial_start(self, iteration, trials, trial, **info):
        self.t.setdefault(trial.trial_id, {})["start"] = time.time()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        d = self.t.setdefault(trial.trial_id, {})
        d.setdefault("first_result", time.time())
        d.setdefault("first_step", result.get("time/first_step"))
        d.setdefault("worker_process", result.get("time/worker_process_start"))
        d.setdefault("loop_entered", result.get("time/loop_entered"))
        d["last_result"] = time.time()
        d.setdefault("rates", []).append((result.get("epoch"), result.get("time/train_samples_per_s")))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.t.setdefault(trial.trial_id, {})["end"] = time.time()

    def summary(self) -> dict:
        rows = []
        for d in sorted(self.t.values(), key=lambda d: d["start"]):
            rates = [r for e, r in d.get("rates", []) if e and e >= 2 and r]
            rows.append(
                {
                    "worker_process": (d.get("worker_process") or math.nan) - d["start"],
                    "loop_entered": (d.get("loop_entered") or math.nan) - d["start"],
                    "first_step": d["first_step"] - d["start"],
                    "first_result": d["first_result"] - d["start"],
                    "tail": d["end"] - d["last_result"],
                    "total": d["end"] - d["start"],
                    "rate": statistics.mean(rates) if rates else float("nan"),
                }
            )
        # steady state: seconds per trial from the end of the slots-th trial to the last one's, slots = the
        # most trials that ran at once (the first ones started together, on fresh processes: start-up left out)
        ends = sorted(d["end"] for d in self.t.values())
        slots = max(sum(d["start"] <= e["start"] < d["end"] for d in self.t.values()) for e in self.t.values())
        steady = (ends[-1] - ends[slots - 1]) / (len(ends) - slots) if len(ends) > slots else math.nan
        # the sweep's first trial starts on a fresh Train worker; later ones (FIFO) on kept ones
        return {k: statistics.median(r[k] for r in rows) for k in rows[0]} | {
            "first_step_first_trial": rows[0]["first_step"],
            "n": len(rows),
            "fit_wall": self.fit[1] - self.fit[0],
            "cpu_per_trial": self.cpu / len(rows),
            "steady_per_trial": steady,
        }


def _busy_cpu_s() -> float:
    """CPU-seconds the whole machine has spent busy (every process, Ray's included); NaN off Linux."""
    try:
        v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return math.nan
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def _bare_worker(root: str, steps: int, queue) -> None:
    queue.put(bare_loop(LabelTable(root), "resnet18", 64, steps))


def machine_ceiling(table: LabelTable, steps: int) -> tuple[float, float]:
    """Samples/s of one bare loop alone, and of two bare loops in two processes at once (summed):
    how far two concurrent compute-bound trials could go on this machine."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = []
    for n in (1, 2):
        q = ctx.Queue()
        procs = [ctx.Process(target=_bare_worker, args=(str(table.root), steps, q)) for _ in range(n)]
        for p in procs:
            p.start()
        out.append(sum(q.get() for _ in procs))
        for p in procs:
            p.join()
    return out[0], out[1]


def tiny_features_table(root: Path):
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(0)
    labels = [{"label": f"l{j}", "parents": []} for j in range(8)]

    def split(n):
        x = rng.normal(size=(n, 32)).astype(np.float32)
        ys = [[f"l{j}" for j in range(8) if x[i, j] > 0.3] for i in range(n)]
        return pa.table(
            {
                "id": [f"r{i}" for i in range(n)],
                "labels": pa.array(ys, pa.list_(pa.string())),
                "features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 32),
            }
        )

    return write_table(
        root,
        Manifest(name="bench-tiny", input="features"),
        labels,
        {"train": split(512), "val": split(128), "test": split(128)},
    )


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
    perm = torch.randperm(len(data))
    warmup = 3
    for s in range(warmup + steps):
        if s == warmup:
            t0 = time.perf_counter()
        idx = perm[(s * batch) % (len(data) - batch) :][:batch]
        x = prepare_batch(data.inputs[idx], data.is_image, torch.device("cpu"))
        loss = loss_fn(model(x), data.targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def sweep(tmp: Path, name: str, table: LabelTable, overrides: list[str]) -> tuple[dict, float]:
    """Run a tailsweep sweep; returns the timeline summary (with ``fit_wall``) and the whole command's wall."""
    spec = load_spec(
        None,
        [
            f"data.path={table.root}",
            f"tracking.dir={tmp / name}",
            "schemes=[unweighted]",
            "train.augment=false",
            *overrides,
        ],
    )
    timeline = Timeline()
    t0 = time.time()
    run_sweep(spec, callbacks=[timeline])
    return timeline.summary(), time.time() - t0


def one_two(tmp: Path, name: str, table: LabelTable, overrides: list[str]) -> dict:
    """The same sweep one trial at a time and two at a time, in the order one, two, two, one: a machine
    whose speed drifts during the run (other tenants) weighs on both sides alike. Walls are the means."""
    runs = {1: [], 2: []}
    for k, conc in enumerate((1, 2, 2, 1)):
        s, wall = sweep(tmp, f"{name}-{conc}-{k}", table, [*overrides, f"resources.max_concurrent_trials={conc}"])
        runs[conc].append(s | {"cmd": wall})
    one, two = runs[1], runs[2]
    return {
        "one": {
            "rate": statistics.mean(s["rate"] for s in one),
            "cpu_per_trial": statistics.mean(s["cpu_per_trial"] for s in one),
        },
        "wall_one": statistics.mean(s["fit_wall"] for s in one),
        "wall_two": statistics.mean(s["fit_wall"] for s in two),
        "cmd_one": statistics.mean(s["cmd"] for s in one),
        "cmd_two": statistics.mean(s["cmd"] for s in two),
        "steady_one": statistics.mean(s["steady_per_trial"] for s in one),
        "steady_two": statistics.mean(s["steady_per_trial"] for s in two),
        # each half on its own: (first one, first two) and (second two, second one)
        "halves": [one[0]["fit_wall"] / two[0]["fit_wall"], one[1]["fit_wall"] / two[1]["fit_wall"]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="tailsweep trial-overhead benchmark")
    ap.add_argument("--trials", type=int, default=8, help="tiny trials per configuration")
    ap.add_argument("--heavy-trials", type=int, default=16, help="compute-bound trials per concurrency setting")
    ap.add_argument(
        "--long-epochs",
        type=int,
        default=12,
        help="epochs of the longer compute-bound trials (the concurrency speed-up as trials grow)",
    )
    ap.add_argument("--long-trials", type=int, default=4, help="longer compute-bound trials per concurrency setting")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"))
    args = ap.parse_args()
    n, epochs = args.trials, 2
    seeds = f"seeds={list(range(n))}"
    res: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tiny = tiny_features_table(tmp / "tiny")
        images = synth_garments(tmp / "img", n_train=640, n_val=128, n_test=128, image_size=32, seed=0)

        print("floor probe ...", flush=True)
        res["floor"] = floor_probe()
        print("plain pattern, one at a time ...", flush=True)
        plain_tl = Timeline()
        plain_wall = plain_sweep(n, epochs, str(tmp / "plain"), 1, [plain_tl])
        res["plain"] = plain_tl.summary()
        res["plain"] |= {"wall_per_trial": res["plain"]["fit_wall"] / n, "cmd_per_trial": plain_wall / n}
        tiny_args = ["model.backbone=mlp", "model.hidden=64", f"train.epochs={epochs}", seeds]
        for label, extra in (("lean", []), ("default", ["resources.lean=false"])):
            print(f"tailsweep ({label}), one at a time ...", flush=True)
            s, wall = sweep(tmp, f"tiny-{label}", tiny, [*tiny_args, "resources.max_concurrent_trials=1", *extra])
            res[label] = s | {"wall_per_trial": s["fit_wall"] / n, "cmd_per_trial": wall / n}
        print("tailsweep (lean), two at a time ...", flush=True)
        s, wall = sweep(tmp, "tiny-concurrent", tiny, [*tiny_args, "resources.max_concurrent_trials=2"])
        res["lean_concurrent"] = s | {"wall_per_trial": s["fit_wall"] / n, "cmd_per_trial": wall / n}

        heavy = [
            "model.backbone=resnet18",
            "train.epochs=3",
            "train.batch_size=64",
            f"seeds={list(range(args.heavy_trials))}",
        ]
        steps = 640 // 64
        print("bare loop, then compute-bound trials one and two at a time (one, two, two, one) ...", flush=True)
        bare_before = bare_loop(images, "resnet18", 64, steps)
        res["heavy"] = one_two(tmp, "heavy", images, heavy)
        bare_after = bare_loop(images, "resnet18", 64, steps)
        res["heavy"] |= {"bare_before": bare_before, "bare_after": bare_after}
        print("machine ceiling: one bare loop, then two at once ...", flush=True)
        res["ceiling"] = machine_ceiling(images, 3 * steps)
        print(f"longer compute-bound trials ({args.long_epochs} epochs), one and two at a time ...", flush=True)
        long = [
            f"train.epochs={args.long_epochs}"
            if a.startswith("train.epochs=")
            else f"seeds={list(range(args.long_trials))}"
            if a.startswith("seeds=")
            else a
            for a in heavy
        ]
        res["long"] = one_two(tmp, "long", images, long)
    write_report(res, args, Path(args.out))


def write_report(res: dict, args, out: Path) -> None:
    from importlib.metadata import version

    floor, plain, lean, default, conc, h = (
        res[k] for k in ("floor", "plain", "lean", "default", "lean_concurrent", "heavy")
    )
    bare = (h["bare_before"] + h["bare_after"]) / 2
    ceiling, lg = res["ceiling"], res["long"]
    ratio = h["one"]["rate"] / bare
    speedup = h["wall_one"] / h["wall_two"]

    def row(label, d):
        return (
            f"| {label} | {d['first_step']:.1f} | {d['first_result']:.1f} | {d['tail']:.1f} | "
            f"{d['wall_per_trial']:.1f} | {d['cmd_per_trial']:.1f} |"
        )

    md = [
        BEGIN,
        "## Trial overhead, in-trial throughput, concurrency (`make bench`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on this machine ({_cpu()}), ray {version('ray')}, torch "
        f"{torch.__version__}, by `python benchmarks/overhead.py --trials {args.trials} --heavy-trials "
        f"{args.heavy_trials} --long-epochs {args.long_epochs} --long-trials {args.long_trials}` (one run, every figure below from it). Tiny trials: a small MLP on a 512-row "
        "feature table, 2 epochs, 1 worker with 1 CPU; medians over trials.",
        "",
        "Sweep wall per trial is `Tuner.fit`'s wall (its first to its last Tune callback) over the number of "
        "trials, the same measure for every row; the last column adds everything around it (Ray start, MLflow "
        "parent run, data check, the report; the plain pattern's: its `ray.init`).",
        "",
        "| tiny trial, seconds (median) | start -> first step | start -> first result | last result -> end | sweep wall per trial | whole command per trial |",
        "|---|---|---|---|---|---|",
        f"| floor probe (2 fresh actors in series + first optimiser) | {floor:.1f} | | | | |",
        row("plain Train V2 pattern, one at a time", plain),
        row("tailsweep, lean path off (`resources.lean=false`), one at a time", default),
        row("**tailsweep, lean path (default), one at a time**", lean),
        row("tailsweep, lean path, two at a time", conc),
        "",
        f"- first step / floor probe: **{lean['first_step'] / floor:.2f}x** median (target <= 1.1x; later trials "
        f"start on the Train worker their trial process kept), **{lean['first_step_first_trial'] / floor:.2f}x** for "
        "the sweep's first trial (a fresh worker process)",
        f"- sweep wall per tiny trial / plain pattern: **{lean['wall_per_trial'] / plain['wall_per_trial']:.2f}x** "
        f"one at a time (target <= 0.5x), **{conc['wall_per_trial'] / plain['wall_per_trial']:.2f}x** two at a time "
        f"(target: below one at a time; two at a time / one at a time = {conc['wall_per_trial'] / lean['wall_per_trial']:.2f}x)",
        "",
        f"Compute-bound trials: resnet18 on 640 generated 32 px images, batch 64, 3 epochs, {args.heavy_trials} trials.",
        "",
        "| in-trial steady state (epochs >= 2, eval excluded) | samples/s |",
        "|---|---|",
        f"| tailsweep worker loop (median over trials, one at a time) | {h['one']['rate']:.1f} |",
        f"| bare PyTorch loop, same model/data/batch/threads (before / after the sweeps) | {h['bare_before']:.1f} / {h['bare_after']:.1f} |",
        f"| **worker / bare** (target >= 0.95) | **{ratio:.3f}** |",
        "",
        "| concurrency | sweep wall (`Tuner.fit`) | trials per hour | whole command |",
        "|---|---|---|---|",
        f"| one at a time | {h['wall_one']:.0f} s | {3600 * args.heavy_trials / h['wall_one']:.0f} | {h['cmd_one']:.0f} s |",
        f"| two at a time | {h['wall_two']:.0f} s | {3600 * args.heavy_trials / h['wall_two']:.0f} | {h['cmd_two']:.0f} s |",
        f"| **speed-up** (target >= 1.7x) | | **{speedup:.2f}x** | {h['cmd_one'] / h['cmd_two']:.2f}x |",
        "",
        "Trials per hour after the sweep's start (from the end of the first trial -- of the first two, two at a "
        "time -- to the last one's: the sweep's one-time start of its trial processes and Train workers, one set "
        "per concurrent trial, left out, as it is in a long sweep): one at a time "
        f"{3600 / h['steady_one']:.0f}, two at a time {3600 / h['steady_two']:.0f}, "
        f"**{h['steady_one'] / h['steady_two']:.2f}x**.",
        "",
        "Each side ran twice, in the order one, two, two, one (walls above are the means), so that a drift of "
        f"the machine's speed during the run weighs on both; the two halves alone: {_halves(h)}.",
        "",
        f"The machine's ceiling, two bare loops in two processes at once against one, is "
        f"**{ceiling[1] / ceiling[0]:.2f}x** ({ceiling[0]:.0f} -> {ceiling[1]:.0f} samples/s). A trial also spends "
        f"CPU outside its training loop -- its Train worker's start (a process importing Ray, torch and torchvision: "
        f"once per trial process, as later trials start on the kept worker), the data and model set-up, per-epoch "
        f"evaluation, checkpoints, the trial's "
        f"controller and MLflow logging: {h['one']['cpu_per_trial']:.1f} CPU-seconds per 3-epoch trial in all "
        f"(machine busy time during `Tuner.fit` / trials, one at a time) against about {3 * 640 / bare:.1f} s of "
        "training. One at a time, that work runs beside the training on the idle second core; two at a time, it "
        "takes CPU from the other trial's training. So the speed-up grows with the trial's length:",
        "",
        "| trial length | trials | one at a time, s per trial | two at a time, s per trial | CPU-s per trial | "
        "speed-up (target >= 1.7x; halves) |",
        "|---|---|---|---|---|---|",
        f"| 3 epochs (above) | {args.heavy_trials} | {h['wall_one'] / args.heavy_trials:.1f} | "
        f"{h['wall_two'] / args.heavy_trials:.1f} | {h['one']['cpu_per_trial']:.1f} | **{speedup:.2f}x** ({_halves(h)}) |",
        f"| {args.long_epochs} epochs | {args.long_trials} | {lg['wall_one'] / args.long_trials:.1f} | "
        f"{lg['wall_two'] / args.long_trials:.1f} | {lg['one']['cpu_per_trial']:.1f} | "
        f"**{lg['wall_one'] / lg['wall_two']:.2f}x** ({_halves(lg)}) |",
        "",
        END,
    ]
    text = "\n".join(md)
    print(text)
    old = (
        out.read_text()
        if out.is_file()
        else "# Benchmarks\n\nFigures measured by the project's own benchmark commands.\n\n"
    )
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip() + "\n\n" + text + "\n"
    out.write_text(new)
    print(f"\nwrote {out}", file=sys.stderr)


def _halves(d: dict) -> str:
    return " and ".join(f"{x:.2f}x" for x in d["halves"])


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
