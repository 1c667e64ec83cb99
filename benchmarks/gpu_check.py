"""The GPU check: tailsweep's worker loop on a real GPU, with torch alone (no Ray, no MLflow).

The GPU machines lent for checks have torch, torchvision and pyarrow but no Ray or MLflow, so the worker recipe
(``trainables/worker.py: TrialRecipe``) runs under ``trainables/_context.py: LocalContext``, a stand-in for Ray
Train's context. Six parts, each printed and written to one JSON file:

1. kept workers: the loop on NCCL at world size 1, the process group created and destroyed 3 times in one process
   (as a kept Train worker does between trials), a collective on the host-side group each time, CUDA memory
   allocated / reserved after each teardown;
2. resnet18 with bf16 autocast on the memory and stream pipelines: img/s of the worker loop against a bare loop
   with the same model, batch and precision on tensors already on the device (their ratio: what input costs);
3. (issue 29) resnet18 on the stream pipeline with ``train.decode`` cpu against gpu: img/s and input_wait_frac;
4. mcloss and node_imbalance_focal on cellcycle_GO (C-HMCNN's MLP, batch 4): steps/s and test micro AU(PRC)
   after the epochs run (a table made by ``launch data import-hmc cellcycle_GO``; skipped when absent);
5. (issue 29) MCLoss forward + backward at 100,000 nodes (B = 256, benchmarks/hierarchy_scale.py's DAG);
6. host syncs: ``torch.cuda.set_sync_debug_mode("warn")`` over 20 training steps, syncs counted per step.

On a CPU (``--smoke``: tiny sizes, seconds) it checks that every part runs; the GPU-only figures read "n/a".

Usage: ``python benchmarks/gpu_check.py [--smoke] [--hmc-table DIR] [--out FILE.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tailsweep.config import EvalConfig, ModelConfig, TrainConfig, TrialConfig  # noqa: E402
from tailsweep.datasets import LabelTable, label_stats, synth_garments  # noqa: E402
from tailsweep.trainables import TrialRecipe, build_model  # noqa: E402
from tailsweep.trainables._context import LocalContext  # noqa: E402


def trial(table: LabelTable, scheme: str = "unweighted", params: dict | None = None, **train) -> TrialConfig:
    model = train.pop("model", {})
    return TrialConfig(
        data=str(table.root),
        model=ModelConfig(**model),
        train=TrainConfig(**train),
        eval=EvalConfig(prediction_rows=0),
        scheme=scheme,
        variant=scheme,
        scheme_params=params or {},
        group="0:0",
        label=scheme,
    )


def run(cfg: TrialConfig, table: LabelTable, device: torch.device) -> tuple[TrialRecipe, float]:
    recipe = TrialRecipe(cfg, label_stats(table), LocalContext(device))
    t0 = time.perf_counter()
    recipe.setup().train()
    return recipe, time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"allocated_mb": None, "reserved_mb": None}
    return {
        "allocated_mb": round(torch.cuda.memory_allocated(device) / 2**20, 1),
        "reserved_mb": round(torch.cuda.memory_reserved(device) / 2**20, 1),
    }


def kept_workers(table: LabelTable, device: torch.device, epochs: int) -> list[dict]:
    """Three trials in one process, each in a process group of its own (NCCL on a GPU), torn down after."""
    from tailsweep.orchestrator._lean.on_worker import end_process_group
    from tailsweep.trainables import _collectives

    backend = "nccl" if device.type == "cuda" else "gloo"
    out = []
    for i in range(3):
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
        flag = torch.ones(1)
        dist.broadcast(flag, 0, group=_collectives.host_group())  # the host-side group beside NCCL
        recipe, wall = run(trial(table, epochs=epochs, batch_size=32, model={"backbone": "resnet18"}), table, device)
        end_process_group()
        out.append({"cycle": i + 1, "backend": backend, "wall_s": round(wall, 2), "epochs": len(recipe.ctx.reports),
                    "group_destroyed": not dist.is_initialized(), **memory(device)})  # fmt: skip
    return out


def bare_loop(model_name: str, labels: int, batch: int, size: int, steps: int, device: torch.device) -> float:
    """img/s of forward + backward + step on tensors already on the device (same model, batch, precision)."""
    model = build_model(model_name, labels, None, 512, 2, 0.0, None).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, size, size, device=device)
    y = (torch.rand(batch, labels, device=device) > 0.9).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    autocast = device.type == "cuda"
    for i in range(steps + 3):  # 3 warm-up steps
        if i == 3:
            _sync(device)
            t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pipelines(table: LabelTable, device: torch.device, size: int, batch: int, epochs: int) -> list[dict]:
    out = []
    steps = max(1, table.read("train", ["id"]).num_rows // batch)
    bare = bare_loop("resnet18", table.num_labels, batch, size, steps, device)
    for pipeline in ("memory", "stream"):
        cfg = trial(table, epochs=epochs, batch_size=batch, pipeline=pipeline, loader_workers=min(8, os.cpu_count() or 1),
                    model={"backbone": "resnet18", "image_size": size})  # fmt: skip
        recipe, _ = run(cfg, table, device)
        last = recipe.ctx.reports[-1]
        loop = last["time/train_samples_per_s"]
        wait = last.get("train/input_wait_frac")
        out.append({"pipeline": pipeline, "image_px": size, "batch": batch, "loop_img_s": round(loop, 1),
                    "bare_img_s": round(bare, 1), "ratio": round(loop / bare, 3), "input_wait_frac": wait})  # fmt: skip
    return out


def hmc(path: Path | None, device: torch.device, epochs: int) -> list[dict]:
    if path is None or not (path / "labels.parquet").is_file():
        return [{"skipped": f"no cellcycle_GO table at {path} (launch data import-hmc cellcycle_GO --out DIR)"}]
    table = LabelTable(path)
    out = []
    for scheme in ("mcloss", "node_imbalance_focal"):
        cfg = trial(table, scheme, epochs=epochs, batch_size=4, optimizer="adam", lr=1e-4, lr_schedule="constant",
                    weight_decay=1e-5, model={"backbone": "mlp", "hidden": 1000, "layers": 2, "dropout": 0.7})  # fmt: skip
        recipe, wall = run(cfg, table, device)
        last = recipe.ctx.reports[-1]
        out.append({"scheme": scheme, "labels": table.num_labels, "epochs": epochs, "wall_s": round(wall, 1),
                    "steps_per_s": round(recipe.steps_per_epoch * epochs / sum(r["time/train_s"] for r in recipe.ctx.reports), 1),
                    "test_micro_auprc": round(last["test/micro_auprc"], 4)})  # fmt: skip
    return out


def decode(table: LabelTable, device: torch.device, size: int, batch: int, epochs: int) -> list[dict]:
    """Issue 29: resnet18 on the stream pipeline with JPEG decoding in the loader processes (cpu) against batched
    decoding on the GPU (gpu): img/s of the worker loop and the share of each step spent waiting for input."""
    out = []
    for where in ("cpu", "gpu"):
        if where == "gpu" and device.type != "cuda":
            out.append({"decode": where, "skipped": "n/a without CUDA"})
            continue
        cfg = trial(table, epochs=epochs, batch_size=batch, pipeline="stream", decode=where,
                    loader_workers=min(8, os.cpu_count() or 1), model={"backbone": "resnet18", "image_size": size})  # fmt: skip
        recipe, _ = run(cfg, table, device)
        last = recipe.ctx.reports[-1]
        out.append({"decode": where, "image_px": size, "batch": batch,
                    "loop_img_s": round(last["time/train_samples_per_s"], 1),
                    "input_wait_frac": last.get("train/input_wait_frac")})  # fmt: skip
    return out


def mcloss_scale(nodes: int, device: torch.device, batch: int = 256, steps: int = 5) -> dict:
    """Issue 29: MCLoss forward + backward on a synthetic DAG (benchmarks/hierarchy_scale.py's) on the device."""
    from hierarchy_scale import synthetic_dag  # this folder is on sys.path when the check runs as a script

    from tailsweep.losses._hierarchy import Hierarchy, MCLoss

    parents = synthetic_dag(nodes)
    t0 = time.perf_counter()
    h = Hierarchy(parents).to(device)
    build = time.perf_counter() - t0
    loss = MCLoss(h).to(device)
    z = torch.randn(batch, nodes, device=device, requires_grad=True)
    with torch.no_grad():
        y = h.mcm((torch.rand(batch, nodes, device=device) < 0.01).float())
    walls = []
    for i in range(steps + 1):
        _sync(device)
        t = time.perf_counter()
        loss(z, y).backward()
        z.grad = None
        _sync(device)
        if i:  # the first is a warm-up
            walls.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) / 1024**3 if device.type == "cuda" else None
    return {"nodes": nodes, "batch": batch, "build_s": round(build, 3), "fb_s": round(min(walls), 4),
            "peak_gpu_gb": None if peak is None else round(peak, 2)}  # fmt: skip


def host_syncs(table: LabelTable, device: torch.device, size: int, batch: int) -> dict:
    """Syncs per step over one epoch of 20 steps of the worker loop (memory pipeline, resnet18)."""
    if device.type != "cuda":
        return {"syncs_per_step": None, "note": "n/a on CPU (set_sync_debug_mode is CUDA's)"}
    cfg = trial(table, epochs=1, batch_size=batch, model={"backbone": "resnet18", "image_size": size})
    recipe = TrialRecipe(cfg, label_stats(table), LocalContext(device)).setup()
    gen = torch.Generator().manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            recipe.train_epoch(0, gen)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    where = sorted({f"{Path(w.filename).name}:{w.lineno}" for w in syncs})
    return {"steps": recipe.steps_per_epoch, "syncs_per_step": round(len(syncs) / recipe.steps_per_epoch, 2),
            "where": where[:20]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every part runs (CPU, seconds)")
    ap.add_argument("--hmc-table", type=Path, default=None, help="the cellcycle_GO label table (import-hmc)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures here (JSON)")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size, batch, n, epochs = (32, 8, 48, 1) if args.smoke else (224, 64, 20 * 64, 2)
    figures: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                     "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        table = synth_garments(Path(tmp) / "garments", n, max(8, n // 8), max(8, n // 8), size, 0)
        small = synth_garments(Path(tmp) / "small", 64, 16, 16, 32, 0)
        steps = [
            ("kept_workers", lambda: kept_workers(small, device, 1)),
            ("pipelines", lambda: pipelines(table, device, size, batch, epochs)),
            ("decode", lambda: decode(table, device, size, batch, epochs)),
            ("hmc", lambda: hmc(args.hmc_table, device, 1 if args.smoke else 3)),
            ("mcloss_scale", lambda: mcloss_scale(2_000 if args.smoke else 100_000, device, 32 if args.smoke else 256)),
            ("host_syncs", lambda: host_syncs(table, device, size, batch)),
        ]
        for name, step in steps:
            t0 = time.perf_counter()
            figures[name] = step()
            print(f"{name} ({time.perf_counter() - t0:.1f} s): {json.dumps(figures[name], indent=1)}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
