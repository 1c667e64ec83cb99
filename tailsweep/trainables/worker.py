"""The Ray Train worker function: one trial's training, read top to bottom like a recipe.

check -> set up (data, model, loss, optimiser, resume) -> loop (train, evaluate, checkpoint, report)
-> final test evaluation with the best weights -> artifacts. Runs on every worker of the group;
DDP comes from ``ray.train.torch.prepare_model`` (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import csv
import importlib
import json
import math
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..datasets import LabelStats, LabelTable, lpros_copies
from ..losses import SCHEMES, Hierarchy, build_loss, default_k, ensemble_coherent
from ._data import SplitTensors, concat_splits, load_split, prepare_batch, shard_indices
from ._metrics import compute_metrics, threshold_dependent, tune_thresholds
from ._models import build_model
from ._tracking import ARTIFACTS_DIR

CHECKPOINT_FILE = "state.pt"
# Fault injection for tests: "raise@<epoch>[:<scheme>]" raises in the worker at the start of that
# epoch, "exit@<epoch>[:<scheme>]" kills the worker process, "hold@<epoch>[:<scheme>]" blocks it (for
# 10 min: a test kills the sweep's driver meanwhile); only trials of <scheme> when given.
# With FAULT_ONCE_ENV set to a file path, the fault fires once (the file marks it fired).
FAULT_ENV = "TAILSWEEP_FAULT"
FAULT_ONCE_ENV = "TAILSWEEP_FAULT_ONCE"


@dataclass(frozen=True)
class WorkerConfig:
    """Everything one trial's workers need; plain values only (it crosses process boundaries)."""

    data: str
    stats: dict
    scheme: str
    scheme_params: dict = field(default_factory=dict)
    oversample: str = "none"  # "lpros": duplicate rows of minority label paths (hierarchies)
    oversample_budget: float = 0.1
    backbone: str = "resnet18"
    weights: str | None = None  # local state-dict file of a pretrained encoder (bundled backbones need none)
    freeze: bool = False  # keep the pretrained encoder fixed; with augment off, heads train on cached embeddings
    pipeline: str = "memory"  # images: "memory" (decode once, flips) or "stream" (Parquet row groups, transforms v2)
    loader_workers: int = 0  # stream: DataLoader processes per Train worker
    image_size: int | None = None
    hidden: int = 512
    layers: int = 2
    dropout: float = 0.0
    epochs: int = 3
    batch_size: int = 64
    eval_batch_size: int = 256
    optimizer: str = "adamw"
    train_splits: tuple[str, ...] = ("train",)
    final_model: str = "best"
    checkpoint_every_s: float = 10.0
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # cosine | linear | constant (C-HMCNN's protocol: constant)
    warmup_epochs: float = 0.0  # linear warm-up over this many epochs, before the schedule
    weight_decay: float = 1e-4
    momentum: float = 0.9
    augment: bool = True
    seed: int = 0
    select_metric: str = "val/macro_ap"
    threads: int = 1
    precision: str = "auto"  # auto: bf16 autocast on GPU, fp32 on CPU; "bf16" forces it on CPU too
    thresholds: str = "fixed"  # fixed (0.5) | per_label (each label's F1-best threshold on val, also reported)
    prediction_rows: int = 20_000  # test rows whose scores are kept (a seeded subsample past it); 0 = none
    tracking_uri: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


LR_SCHEDULES = ("cosine", "linear", "constant")


def lr_factor(schedule: str, total_steps: int, warmup_steps: int = 0):
    """The learning rate's multiplier at optimiser step t (``LambdaLR``): a linear warm-up from 1/(W+1) to 1
    over the first ``warmup_steps`` W, then ``cosine`` (half a cosine from 1 to 0 over the remaining steps,
    as ``CosineAnnealingLR``), ``linear`` (1 down to 0) or ``constant`` (1 throughout: C-HMCNN's protocol)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
    decay_steps = max(1, total_steps - warmup_steps)

    def factor(t: int) -> float:
        if t < warmup_steps:
            return (t + 1) / (warmup_steps + 1)
        x = min(1.0, (t - warmup_steps) / decay_steps)
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * x))
        if schedule == "linear":
            return 1 - x
        return 1.0

    return factor


def _flush_print(message: str) -> None:
    print(message, flush=True)  # a Ray worker's stdout is a file: unflushed lines would show up late


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


def _maybe_fault(epoch: int, scheme: str) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return
    action, _, rest = spec.partition("@")
    at, _, only = rest.partition(":")
    if at and int(at) == epoch and only in ("", scheme):
        once = os.environ.get(FAULT_ONCE_ENV)
        if once:
            if Path(once).exists():
                return
            Path(once).touch()
        if action == "raise":
            raise RuntimeError(f"{FAULT_ENV}: injected failure at epoch {epoch}")
        if action == "exit":
            os._exit(1)
        if action == "hold":
            time.sleep(600)


def end_process_group() -> None:
    """Run on a Train worker kept for the next trial (``orchestrator/_lean/inline.py: WorkerReuse``) when its run
    ends: destroy the default torch process group. Ray Train destroys it only for groups of more than one
    worker; the next run's set-up would find it initialised and fail ("initialize the default process
    group twice")."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def fresh_checkpoint_upload_pool() -> None:
    """Run on a reused Train worker (``orchestrator/_lean/inline.py: WorkerReuse``) after Ray Train set up its new
    run context: give the context a checkpoint-upload thread pool of its own. Ray 2.60's ``TrainContext``
    declares the pool as a dataclass default, one executor shared by every context of the process, and
    shuts it down when a training function returns; the next run in the same process would fail at its
    first asynchronous checkpoint upload (``checkpoint_upload_mode=ASYNC``; tailsweep's loop reports
    synchronously, a user's own loop may not). Lives here because the worker has imported this module."""
    from concurrent.futures import ThreadPoolExecutor

    from ray.train.v2._internal.execution.context import get_train_context

    ctx = get_train_context()
    ctx.checkpoint_upload_threadpool = ThreadPoolExecutor(max_workers=ctx.checkpoint_upload_threadpool._max_workers)


def _gather(x: np.ndarray, world: int) -> np.ndarray:
    """Concatenate every rank's rows (rank order); no-op on a single worker."""
    if world == 1:
        return x
    parts: list = [None] * world
    dist.all_gather_object(parts, x)
    return np.concatenate(parts, axis=0)


@torch.no_grad()
def predict(model: torch.nn.Module, data: SplitTensors, device: torch.device, batch_size: int, autocast: bool,
            hierarchy: Hierarchy | None = None) -> np.ndarray:
    """Probabilities; MCM-coherent (parent >= child) when the labels form a hierarchy."""
    model.eval()
    out = []
    for i in range(0, len(data), batch_size):
        x = prepare_batch(data.inputs[i:i + batch_size], data.is_image, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        # (B, C), or (M, B, C) from an ensemble: the mean over heads of coherent probabilities
        out.append(ensemble_coherent(logits, hierarchy).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, data.targets.shape[1]), np.float32)


def evaluate(model, data: SplitTensors, stats: LabelStats, device, cfg: WorkerConfig, rank: int, world: int, autocast: bool,
             hierarchy: Hierarchy | None = None):
    """Predict this rank's shard, gather all shards, score the full split (every rank gets it).

    ``model`` is the unwrapped module: a DDP forward would broadcast buffers, a collective that
    hangs when ranks run different numbers of eval batches.
    """
    idx = torch.from_numpy(shard_indices(len(data), rank, world))
    shard = data.select(idx)
    p = _gather(predict(model, shard, device, cfg.eval_batch_size, autocast, hierarchy), world)
    y = _gather(shard.targets.numpy(), world)
    metrics, rows = compute_metrics(y, p, stats)
    return metrics, rows, y, p


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _process_start() -> float:
    """When this process started (wall clock); NaN where psutil is missing (Ray ships it to its workers)."""
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:
        return math.nan


def train_loop_per_worker(config: dict) -> None:
    import ray.train
    import ray.train.torch

    loop_entered, process_started = time.time(), _process_start()
    # --- check ---------------------------------------------------------------------------------
    cfg = WorkerConfig(**config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, cfg.threads))
    _seed_everything(cfg.seed)
    device = ray.train.torch.get_device()
    autocast = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")

    # --- set up ----------------------------------------------------------------------------------
    # The first optimiser (or DDP) construction imports torch._dynamo (~1-1.5 s); import it in the
    # background while the data loads.
    warmup = threading.Thread(target=importlib.import_module, args=("torch._dynamo",), daemon=True)
    warmup.start()
    table = LabelTable(cfg.data)
    stats = LabelStats.from_dict(cfg.stats)
    backbone, embed_s, images = cfg.backbone, 0.0, table.input_kind != "features"
    if images and cfg.freeze and not cfg.augment:
        # A frozen encoder without augmentation gives every image the same embedding in every trial:
        # one encoder pass per (table, encoder, image size), cached beside the table; the head trains on it.
        from ._embed import embedding_table

        t = time.perf_counter()
        table, _ = embedding_table(table, cfg.backbone, cfg.image_size, cfg.weights, device,
                                   log=_flush_print if rank == 0 else None)
        backbone, embed_s = "mlp", time.perf_counter() - t
    stream = None
    if cfg.pipeline == "stream" and table.input_kind == "image":
        from ._stream import ParquetImageStream

        if cfg.oversample != "none" or cfg.image_size is None:
            raise ValueError("train.pipeline = stream needs model.image_size and no oversampling (it streams the "
                             "split files as they are)")
        stream = ParquetImageStream([table.path(s) for s in cfg.train_splits], table.encode, cfg.image_size,
                                    cfg.augment, rank, world, cfg.seed)
        train = load_split(table, cfg.train_splits[0], cfg.image_size, rows=np.arange(1))  # shapes only
    else:
        train = concat_splits([load_split(table, s, cfg.image_size) for s in cfg.train_splits])
    if cfg.oversample == "lpros":  # the same copies on every rank (seeded)
        train = _with_lpros_copies(table, train, cfg)
    val = load_split(table, "val", cfg.image_size)
    in_features = None if train.is_image else int(train.inputs.shape[1])
    scheme_params = dict(cfg.scheme_params)
    heads = None
    if SCHEMES[cfg.scheme].needs_ensemble:
        heads = int(scheme_params.get("heads", SCHEMES[cfg.scheme].params["heads"].default))
        if scheme_params.get("k") is None:
            scheme_params["k"] = default_k(images)
    _seed_everything(cfg.seed)  # the head's initial weights do not depend on what ran before (e.g. an embedding pass)
    model = build_model(backbone, stats.num_labels, in_features, cfg.hidden, cfg.layers, cfg.dropout, heads,
                        weights=cfg.weights if backbone != "mlp" else None, freeze=cfg.freeze and backbone != "mlp")
    if train.is_image and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    warmup.join()
    model = ray.train.torch.prepare_model(model)
    loss_fn = build_loss(cfg.scheme, stats, **scheme_params).to(device)
    set_progress = getattr(loss_fn, "set_progress", None)  # weight schedules follow the minibatch index
    # Evaluation reports MCM-coherent probabilities on a hierarchy, whatever the scheme.
    hierarchy = getattr(loss_fn, "hierarchy", None)
    if hierarchy is None and any(stats.parents):
        hierarchy = Hierarchy.from_label_stats(stats).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":  # fused: one kernel for the whole step (2x faster at C-HMCNN's batch 4)
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if stream is None:
        steps_per_epoch = max(1, math.ceil(math.ceil(len(train) / world) / cfg.batch_size))
    else:  # every rank runs the same number of steps (DDP): as many full batches as the smallest shard has
        steps_per_epoch = max(1, min(stream.rows_per_rank()) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_factor(cfg.lr_schedule, cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch)))
    raw_model = model.module if hasattr(model, "module") else model

    start_epoch, best_score, best_state = 0, -math.inf, None
    ckpt = ray.train.get_checkpoint()
    if ckpt:  # resume after a worker failure or a sweep restore
        with ckpt.as_directory() as d:
            state = torch.load(Path(d) / CHECKPOINT_FILE, map_location=device, weights_only=True)
        if "model" in state:  # the final checkpoint holds only the best weights
            raw_model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
        start_epoch, best_score, best_state = state["epoch"], state["best_score"], state["best_model"]

    # --- loop ------------------------------------------------------------------------------------
    gen = torch.Generator().manual_seed(cfg.seed)
    first_step_time = None
    last_checkpoint = time.monotonic()
    for epoch in range(start_epoch, cfg.epochs):
        _maybe_fault(epoch + 1, cfg.scheme)
        model.train()
        gen.manual_seed(cfg.seed * 1000 + epoch)  # same permutation on every rank
        t0 = time.perf_counter()
        total_loss, seen = torch.zeros((), device=device), 0
        for s, (x, y) in enumerate(_batches(cfg, train, stream, epoch, steps_per_epoch, rank, world, device, gen)):
            if set_progress is not None:
                set_progress(s, steps_per_epoch)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if first_step_time is None:
                first_step_time = time.time()
            total_loss += loss.detach() * len(y)
            seen += len(y)
        train_time = time.perf_counter() - t0

        t1 = time.perf_counter()
        val_metrics, *_ = evaluate(raw_model, val, stats, device, cfg, rank, world, autocast, hierarchy)
        metrics = {f"val/{k}": v for k, v in val_metrics.items()}
        metrics.update({
            "epoch": epoch + 1,
            "train/loss": float(total_loss) / max(seen, 1),
            "train/lr": sched.get_last_lr()[0],
            "time/train_s": train_time,
            "time/eval_s": time.perf_counter() - t1,
            "time/train_samples_per_s": seen * world / train_time if train_time > 0 else 0.0,
            # Wall-clock timestamps of this worker's start (benchmarks/overhead.py splits a trial's
            # start-up with them): its process started, its training function entered, its first step.
            "time/worker_process_start": process_started,
            "time/loop_entered": loop_entered,
            "time/first_step": first_step_time or 0.0,
            "time/embed_s": embed_s,
        })
        score = metrics.get(cfg.select_metric, -math.inf)
        score = -math.inf if score is None or (isinstance(score, float) and math.isnan(score)) else score
        if cfg.final_model == "last" or score > best_score or best_state is None:
            best_score = score
            best_state = {k: v.detach().clone() for k, v in raw_model.state_dict().items()}
        metrics["val/best"] = best_score

        last = epoch + 1 == cfg.epochs
        if last:  # test with the best weights, in the same (final) report
            raw_model.load_state_dict(best_state)  # training is over: the final checkpoint keeps only these
            test = load_split(table, "test", cfg.image_size)
            test_metrics, test_rows, test_y, test_p = evaluate(raw_model, test, stats, device, cfg, rank, world,
                                                               autocast, hierarchy)
            _, val_rows, val_y, val_p = evaluate(raw_model, val, stats, device, cfg, rank, world, autocast, hierarchy)
            metrics.update({f"test/{k}": v for k, v in test_metrics.items()})
            thresholds = None
            if cfg.thresholds == "per_label":  # chosen on val, applied to test (predictions closed upward)
                thresholds = tune_thresholds(val_y, val_p)
                tuned, tuned_rows = compute_metrics(test_y, test_p, stats, thresholds,
                                                    table.closure if table.is_hierarchical else None)
                metrics.update({f"test/tuned_{k}": v for k, v in threshold_dependent(tuned).items()})
                for row, t, tr in zip(test_rows, thresholds, tuned_rows, strict=True):
                    row.update({"threshold": float(t), **{f"tuned_{k}": tr[k] for k in ("precision", "recall", "f1")}})
            tables = (val_rows, test_rows, rare_predictions(stats, test_y, test_p),
                      kept_predictions(test_y, test_p, thresholds, cfg.prediction_rows)) if rank == 0 else None

        # --- checkpoint + report (checkpoint from rank 0 only) ----------------------------------
        # Checkpoints are written at most every checkpoint_every_s (and after the last epoch): with
        # short epochs (C-HMCNN's: ~2 s) a save + upload per epoch would cost a large share of the
        # run. The price is redoing at most that much work after a failure; the MLflow callback skips
        # epochs it has already logged, so a redone epoch is never logged twice.
        due = last or time.monotonic() - last_checkpoint >= cfg.checkpoint_every_s
        if world > 1:  # every rank must agree (rank 0 decides)
            flag = torch.tensor([int(due)])
            dist.broadcast(flag, 0)
            due = bool(flag.item())
        with tempfile.TemporaryDirectory() as d:
            checkpoint = None
            if rank == 0 and due:
                last_checkpoint = time.monotonic()
                if last:  # training is over: keep only the best weights (no optimiser state to resume)
                    state = {"epoch": epoch + 1, "best_score": best_score, "best_model": best_state}
                else:
                    state = {"model": raw_model.state_dict(), "optimizer": opt.state_dict(),
                             "scheduler": sched.state_dict(), "epoch": epoch + 1, "best_score": best_score,
                             "best_model": best_state}
                torch.save(state, Path(d) / CHECKPOINT_FILE)
                if last:  # logged to MLflow by the metrics callback where the controller runs (no mlflow here)
                    _write_trial_artifacts(Path(d) / ARTIFACTS_DIR, cfg, loss_fn, stats, *tables)
                checkpoint = ray.train.Checkpoint.from_directory(d)
            ray.train.report(metrics, checkpoint=checkpoint)


RARE_LABELS = 6  # test predictions of this many rarest labels are kept (PR curves in `launch report`)


def rare_predictions(stats: LabelStats, y: np.ndarray, p: np.ndarray, k: int = RARE_LABELS) -> list[dict]:
    """(row, label, y, p) of the ``k`` rarest labels (by training count) that have a test positive."""
    order = [j for j in np.argsort(stats.counts, kind="stable") if stats.counts[j] > 0 and y[:, j].any()][:k]
    return [{"row": i, "label": stats.labels[j], "train_count": int(stats.counts[j]), "y": int(y[i, j]),
             "p": float(p[i, j])} for j in order for i in range(len(y))]


def _batches(cfg: WorkerConfig, train: SplitTensors, stream, epoch: int, steps: int, rank: int, world: int,
             device: torch.device, gen: torch.Generator):
    """``steps`` training batches (x, y) of this rank for ``epoch``, on ``device``.

    memory: a permutation of the in-memory split (the same on every rank, padded so every rank gets
    ``steps`` batches), random flips. stream: this rank's row groups through a DataLoader whose processes
    decode and augment (``cfg.loader_workers`` of them; 0 = in this process).
    """
    if stream is None:
        per_rank = math.ceil(len(train) / world)
        perm = torch.randperm(len(train), generator=gen)
        if len(perm) < per_rank * world:  # pad so every rank runs the same number of steps (DDP)
            perm = torch.cat([perm, perm[: per_rank * world - len(perm)]])
        mine = perm[rank::world]
        for s in range(steps):
            b = mine[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            yield (prepare_batch(train.inputs[b], train.is_image, device, augment=cfg.augment, generator=gen),
                   train.targets[b].to(device, non_blocking=True))
        return
    from ._stream import stream_loader

    stream.set_epoch(epoch)
    loader = iter(stream_loader(stream, cfg.batch_size, cfg.loader_workers))
    try:
        for _ in range(steps):
            x, y = next(loader)
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    finally:
        del loader  # shuts the loader processes down


def _with_lpros_copies(table: LabelTable, train: SplitTensors, cfg: WorkerConfig) -> SplitTensors:
    """``train`` with LPROS's copies appended (METHODS.md section 2): counted on, and copied from, the training
    split's rows only (never validation rows, also when training on train + val); each copy is labelled with
    its minority node alone, closed upward."""
    if "train" not in cfg.train_splits:
        raise ValueError("oversample: lpros copies rows of the training split; train.train_splits must include train")
    offset = 0
    for split in cfg.train_splits[:cfg.train_splits.index("train")]:
        offset += table.read(split, ["labels"]).num_rows
    listed = table.encode(table.read("train", ["labels"]).column("labels"), close=False)
    closure = table.closure  # the table's own ancestor closure (its label order is the stats' and the targets')
    rows, nodes = lpros_copies(listed, closure, table.depths, cfg.oversample_budget, cfg.seed)
    if len(rows) == 0:
        return train
    targets = torch.from_numpy(np.asarray(closure[nodes].todense() > 0, dtype=np.float32))
    inputs = train.inputs[torch.from_numpy(rows + offset)]
    return SplitTensors(torch.cat([train.inputs, inputs]), torch.cat([train.targets, targets]), train.is_image)


PREDICTIONS_FILE = "test_predictions.npz"


def kept_predictions(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray | None, cap: int) -> dict | None:
    """The test scores kept for ``launch report`` (paired bootstrap, per-label view): every row, or past ``cap``
    rows a seeded subsample (seed 0: the same rows for every trial of a table); float16 scores, boolean targets,
    the test row indices kept, and the per-label thresholds when tuned. None when ``cap`` is 0 (off)."""
    if cap <= 0:
        return None
    rows = np.arange(len(y))
    if len(rows) > cap:
        rows = np.sort(np.random.default_rng(0).choice(len(y), size=cap, replace=False))
    out = {"p": np.asarray(p)[rows].astype(np.float16), "y": np.asarray(y)[rows].astype(bool),
           "rows": rows.astype(np.int32), "n_test": np.int64(len(y))}
    if thresholds is not None:
        out["thresholds"] = np.asarray(thresholds, dtype=np.float32)
    return out


def _write_trial_artifacts(d: Path, cfg: WorkerConfig, loss_fn, stats: LabelStats, val_rows, test_rows,
                           rare_rows, predictions=None) -> None:
    """The trial's tables, into the final checkpoint's ``artifacts/`` (the run's MLflow artifacts)."""
    d.mkdir(parents=True, exist_ok=True)
    if predictions is not None:
        np.savez_compressed(d / PREDICTIONS_FILE, **predictions)
    _write_csv(d / "per_label_val.csv", val_rows)
    _write_csv(d / "per_label_test.csv", test_rows)
    if rare_rows:
        _write_csv(d / "rare_labels_test_predictions.csv", rare_rows)
    table = loss_fn.weight_table() if hasattr(loss_fn, "weight_table") else {}
    weights = {"scheme": cfg.scheme, "params": cfg.scheme_params, "labels": list(stats.labels),
               "train_count": [int(c) for c in stats.counts], **table}
    (d / "weights.json").write_text(json.dumps(weights, indent=1))
    vectors = {k: v for k, v in table.items() if isinstance(v, list) and len(v) == stats.num_labels}
    if vectors and len(vectors) == sum(isinstance(v, list) for v in table.values()):
        rows = [{"label": label, "train_count": int(c), **{k: v[j] for k, v in vectors.items()}}
                for j, (label, c) in enumerate(zip(stats.labels, stats.counts, strict=True))]
        _write_csv(d / "weights.csv", rows)
