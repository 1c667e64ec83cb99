"""The Ray Train worker: one trial's training as a recipe of named steps.

    train_loop_per_worker(config)            # Ray Train's entry point: {"trial": TrialConfig dump, "stats": ...}
      recipe = TrialRecipe(cfg, stats, context, hooks)
      recipe.setup()                          # setup_data, setup_model, restore
      recipe.train()                          # per epoch: train_epoch, evaluate, [final_test], save_and_report

Every worker of the group runs it; DDP comes from the context's ``prepare_model`` (gloo on CPU, NCCL on GPU);
the few collectives outside DDP live in ``_collectives.py``. The context (``_context.py``) is Ray Train's, or a
torch-only stand-in. Tests and benchmarks install hooks (``hooks.py``); the loop has no branch of theirs.
"""

from __future__ import annotations

import importlib
import math
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from ..config import TrialConfig
from ..datasets import LabelStats, LabelTable, lpros_copies
from ..losses import SCHEMES, Hierarchy, build_loss, default_k, ensemble_coherent
from . import _collectives as collectives
from . import hooks as worker_hooks
from ._artifacts import ARTIFACTS_DIR, kept_predictions, rare_predictions, write_trial_artifacts
from ._data import SplitTensors, eval_shard, flip_mask, load_split, normalize_images, train_shard, unshard
from ._decode import resolve_decode
from ._input import TimedBatches, to_device
from ._metrics import compute_metrics, threshold_dependent, tune_thresholds
from ._models import build_model
from ._optim import build_optimizer, build_schedule

CHECKPOINT_FILE = "state.pt"


def _flush_print(message: str) -> None:
    print(message, flush=True)  # a Ray worker's stdout is a file: unflushed lines would show up late


def _number(v) -> float:
    return math.nan if v is None else float(v)


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    data: SplitTensors,
    device: torch.device,
    batch_size: int,
    autocast: bool,
    hierarchy: Hierarchy | None = None,
) -> np.ndarray:
    """Probabilities; MCM-coherent (parent >= child) when the labels form a hierarchy."""
    model.eval()
    out = []
    slices = ((data.inputs[i : i + batch_size],) for i in range(0, len(data), batch_size))
    for (x,) in to_device(slices, device):
        x = normalize_images(x) if data.is_image else x
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        # (B, C), or (M, B, C) from an ensemble: the mean over heads of coherent probabilities
        out.append(ensemble_coherent(logits, hierarchy).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, data.targets.shape[1]), np.float32)


class TrialRecipe:
    """One trial on one worker. ``setup()`` then ``train()``; each step a method."""

    def __init__(self, cfg: TrialConfig, stats: LabelStats, context, hooks=()):
        self.cfg, self.stats, self.ctx, self.hooks = cfg, stats, context, list(hooks)
        self.rank, self.world, self.device = context.rank, context.world, context.device
        precision = cfg.train.precision
        self.autocast = precision == "bf16" or (precision == "auto" and self.device.type == "cuda")
        self.embed_s = 0.0
        self.start_epoch, self.best_score, self.best_state = 0, -math.inf, None
        self.best_values: dict[str, float] = {}  # best/<objective>: a multi-objective search's metrics at that epoch
        self.last_checkpoint = time.monotonic()

    # --- set up ------------------------------------------------------------------------------------
    def setup(self) -> TrialRecipe:
        torch.set_num_threads(max(1, self.cfg.train.threads or 1))
        _seed_everything(self.cfg.seed)
        # The first optimiser (or DDP) construction imports torch._dynamo (~1-1.5 s): in the background meanwhile.
        warmup = threading.Thread(target=importlib.import_module, args=("torch._dynamo",), daemon=True)
        warmup.start()
        self.setup_data()
        _seed_everything(self.cfg.seed)  # the head's initial weights do not depend on what ran before
        self.setup_model(warmup)
        self.restore()
        return self

    def setup_data(self) -> None:
        """The table (or its cached embeddings), the training rows (in memory or streamed), validation."""
        cfg, train_cfg = self.cfg, self.cfg.train
        self.table = LabelTable(cfg.data)
        self.backbone, self.images = cfg.model.backbone, self.table.input_kind != "features"
        if self.images and cfg.model.freeze and not train_cfg.augment:
            # A frozen encoder without augmentation gives every image the same embedding in every trial:
            # one encoder pass per (table, encoder, image size), cached beside the table; the head trains on it.
            from ._embed import embedding_table

            t = time.perf_counter()
            log = _flush_print if self.rank == 0 else None
            self.table, _ = embedding_table(
                self.table, cfg.model.backbone, cfg.model.image_size, cfg.model.weights, self.device, log=log
            )
            self.backbone, self.embed_s = "mlp", time.perf_counter() - t
        self.stream = None
        image_input = self.table.input_kind != "features"
        decode = resolve_decode(train_cfg.decode, self.device) if image_input else "cpu"
        # each rank decodes its own rows only
        self.load = {"decode": decode, "device": self.device, "threads": train_cfg.threads or 1}
        size = cfg.model.image_size
        if train_cfg.pipeline == "stream" and self.table.input_kind == "image":
            from ._stream import ParquetImageStream, StreamInput

            dataset = ParquetImageStream(
                [self.table.path(s) for s in train_cfg.train_splits],
                self.table.encode,
                size,
                train_cfg.augment,
                self.rank,
                self.world,
                cfg.seed,
                normalize=self.device.type != "cuda",  # on a GPU, normalised there
                decode=decode,
            )
            # its loader lasts every epoch
            self.stream = StreamInput(dataset, train_cfg.batch_size, train_cfg.loader_workers or 0, self.device)
            first = train_cfg.train_splits[0]
            self.train_data = load_split(self.table, first, size, rows=np.arange(1))  # shapes only
        else:  # oversampled copies are planned from the labels, the same on every rank (seeded)
            copies = _lpros_copies(self.table, cfg) if cfg.oversample == "lpros" else None
            splits = train_cfg.train_splits
            self.train_data = train_shard(self.table, splits, size, self.rank, self.world, copies, **self.load)
        self.val = eval_shard(self.table, "val", size, self.rank, self.world, **self.load)

    def setup_model(self, warmup: threading.Thread | None = None) -> None:
        """Model, loss, optimiser, schedule; the hierarchy evaluation makes coherent."""
        cfg, m = self.cfg, self.cfg.model
        in_features = None if self.train_data.is_image else int(self.train_data.inputs.shape[1])
        scheme_params = dict(cfg.scheme_params)
        heads = None
        if SCHEMES[cfg.scheme].needs_ensemble:
            heads = int(scheme_params.get("heads", SCHEMES[cfg.scheme].params["heads"].default))
            if scheme_params.get("k") is None:
                scheme_params["k"] = default_k(self.images)
        mlp = self.backbone == "mlp"
        model = build_model(
            self.backbone, self.stats.num_labels, in_features, m.hidden, m.layers, m.dropout, heads,
            weights=None if mlp else m.weights, freeze=m.freeze and not mlp,
        )  # fmt: skip
        if self.train_data.is_image and self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        if warmup is not None:
            warmup.join()
        self.model = self.ctx.prepare_model(model)
        self.raw_model = self.model.module if hasattr(self.model, "module") else self.model
        self.loss_fn = build_loss(cfg.scheme, self.stats, **scheme_params).to(self.device)
        self.set_progress = getattr(self.loss_fn, "set_progress", None)  # weight schedules follow the step
        # Evaluation reports MCM-coherent probabilities on a hierarchy, whatever the scheme.
        self.hierarchy = getattr(self.loss_fn, "hierarchy", None)
        if self.hierarchy is None and any(self.stats.parents):
            self.hierarchy = Hierarchy.from_label_stats(self.stats).to(self.device)
        self.opt = build_optimizer([p for p in self.model.parameters() if p.requires_grad], cfg.train)
        self.steps_per_epoch = self._steps_per_epoch()
        self.sched = build_schedule(self.opt, cfg.train, self.steps_per_epoch)

    def _steps_per_epoch(self) -> int:
        batch = self.cfg.train.batch_size
        if self.stream is None:
            return max(1, math.ceil(self.train_data.per_rank / batch))
        # every rank runs the same number of steps (DDP): as many full batches as the smallest shard has
        return max(1, min(self.stream.rows_per_rank()) // batch)

    def restore(self) -> None:
        """Resume after a worker failure or a sweep restore, from the context's checkpoint."""
        with self.ctx.restored() as d:
            if d is None:
                return
            state = torch.load(Path(d) / CHECKPOINT_FILE, map_location=self.device, weights_only=True)
        if "model" in state:  # the final checkpoint holds only the best weights
            self.raw_model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
        self.start_epoch, self.best_score, self.best_state = state["epoch"], state["best_score"], state["best_model"]
        self.best_values = dict(state.get("best_values", {}))

    # --- the loop ----------------------------------------------------------------------------------
    def train(self) -> None:
        gen = torch.Generator().manual_seed(self.cfg.seed)
        for epoch in range(self.start_epoch, self.cfg.train.epochs):
            for hook in self.hooks:
                hook.epoch_start(epoch + 1, self.cfg.scheme)
            metrics = self.train_epoch(epoch, gen)
            metrics |= self.evaluate_epoch()
            last = epoch + 1 == self.cfg.train.epochs
            tables = self.final_test(metrics) if last else None
            for hook in self.hooks:
                metrics |= hook.epoch_metrics()
            self.save_and_report(epoch, metrics, last, tables)

    def train_epoch(self, epoch: int, gen: torch.Generator) -> dict:
        """One pass over this rank's batches; the epoch's training figures."""
        self.model.train()
        gen.manual_seed(self.cfg.seed * 1000 + epoch)  # same permutation on every rank
        t0 = time.perf_counter()
        total_loss, seen = torch.zeros((), device=self.device), 0
        timed = TimedBatches(self.batches(epoch, gen), self.device)
        for s, (x, y) in enumerate(timed):
            if self.set_progress is not None:
                self.set_progress(s, self.steps_per_epoch)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.model(x)
            loss = self.loss_fn(logits.float(), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.sched.step()
            for hook in self.hooks:
                hook.after_step()
            total_loss += loss.detach() * len(y)
            seen += len(y)
        train_time = time.perf_counter() - t0
        return {
            "epoch": epoch + 1,
            "train/loss": float(total_loss) / max(seen, 1),
            "train/lr": self.sched.get_last_lr()[0],
            "time/train_s": train_time,
            "time/train_samples_per_s": seen * self.world / train_time if train_time > 0 else 0.0,
            "time/embed_s": self.embed_s,
            "train/input_wait_frac": timed.wait_frac(),  # step time spent waiting for batches (rank 0's)
        }

    def batches(self, epoch: int, gen: torch.Generator):
        """``steps_per_epoch`` training batches (x, y) of this rank for ``epoch``, on the device.

        memory: this rank's items (``_data.train_shard``) in a new order every epoch (the same generator state on
        every rank; padded with its first items so every rank runs the same number of batches), random flips on the
        device. stream: this rank's row groups through the trial's DataLoader, whose processes decode and augment
        (``train.loader_workers`` of them; 0 = in this process).
        """
        if self.stream is not None:
            yield from self.stream.epoch(epoch, self.steps_per_epoch)
            return
        train_cfg = self.cfg.train
        yield from memory_batches(
            self.train_data, train_cfg.batch_size, train_cfg.augment, self.steps_per_epoch, self.device, gen
        )

    def evaluate(self, data: SplitTensors):
        """Predict this rank's shard (``data``: its rows, ``_data.eval_shard``), gather all shards back into the
        table's row order, score the full split (every rank gets it): metrics, per-label rows, targets,
        probabilities. On the unwrapped module: a DDP forward would broadcast buffers, a collective that hangs when
        ranks run different numbers of eval batches."""
        batch = self.cfg.train.eval_batch_size
        p = predict(self.raw_model, data, self.device, batch, self.autocast, self.hierarchy)
        p = unshard(collectives.gather_rows(p), self.world)
        y = unshard(collectives.gather_rows(data.targets.numpy()), self.world)
        metrics, rows = compute_metrics(y, p, self.stats)
        return metrics, rows, y, p

    def evaluate_epoch(self) -> dict:
        """Validation figures; keeps the best weights by ``select_metric`` (or the last, with final_model last)."""
        t1 = time.perf_counter()
        val_metrics, *_ = self.evaluate(self.val)
        metrics = {f"val/{k}": v for k, v in val_metrics.items()}
        metrics["time/eval_s"] = time.perf_counter() - t1
        score = metrics.get(self.cfg.select_metric, -math.inf)
        score = -math.inf if score is None or (isinstance(score, float) and math.isnan(score)) else score
        if self.cfg.train.final_model == "last" or score > self.best_score or self.best_state is None:
            self.best_score = score
            self.best_state = {k: v.detach().clone() for k, v in self.raw_model.state_dict().items()}
            self.best_values = {f"best/{k}": _number(metrics.get(k)) for k in self.cfg.objectives}
        metrics["val/best"] = self.best_score
        metrics.update(self.best_values)
        return metrics

    def final_test(self, metrics: dict):
        """After the last epoch: test with the best weights (into ``metrics``); per-label thresholds on val when
        asked; the trial's tables (rank 0) for its artifacts."""
        self.raw_model.load_state_dict(self.best_state)  # training is over: the final checkpoint keeps only these
        test = eval_shard(self.table, "test", self.cfg.model.image_size, self.rank, self.world, **self.load)
        test_metrics, test_rows, test_y, test_p = self.evaluate(test)
        _, val_rows, val_y, val_p = self.evaluate(self.val)
        metrics.update({f"test/{k}": v for k, v in test_metrics.items()})
        thresholds = None
        if self.cfg.eval.thresholds == "per_label":  # chosen on val, applied to test (predictions closed upward)
            thresholds = tune_thresholds(val_y, val_p)
            closure = self.table.closure if self.table.is_hierarchical else None
            tuned, tuned_rows = compute_metrics(test_y, test_p, self.stats, thresholds, closure)
            metrics.update({f"test/tuned_{k}": v for k, v in threshold_dependent(tuned).items()})
            for row, t, tr in zip(test_rows, thresholds, tuned_rows, strict=True):
                row.update({"threshold": float(t), **{f"tuned_{k}": tr[k] for k in ("precision", "recall", "f1")}})
        if self.rank != 0:
            return None
        kept = kept_predictions(test_y, test_p, thresholds, self.cfg.eval.prediction_rows, (val_y, val_p), self.stats)
        return val_rows, test_rows, rare_predictions(self.stats, test_y, test_p), kept

    def save_and_report(self, epoch: int, metrics: dict, last: bool, tables) -> None:
        """Report the epoch, with a checkpoint (rank 0) when one is due.

        Checkpoints are written at most every ``train.checkpoint_every_s`` (and after the last epoch): with short
        epochs (C-HMCNN's: ~2 s) a save + upload per epoch would cost a large share of the run. The price is
        redoing at most that much work after a failure; the MLflow callback skips epochs it has already logged.
        """
        due = last or time.monotonic() - self.last_checkpoint >= self.cfg.train.checkpoint_every_s
        due = collectives.agree(due)  # every rank must agree (rank 0 decides)
        with tempfile.TemporaryDirectory() as d:
            if self.rank != 0 or not due:
                self.ctx.report(metrics, None)
                return
            self.last_checkpoint = time.monotonic()
            torch.save(self._state(epoch, last), Path(d) / CHECKPOINT_FILE)
            if last:  # logged to MLflow by the metrics callback where the controller runs (no mlflow here)
                write_trial_artifacts(Path(d) / ARTIFACTS_DIR, self.cfg, self.loss_fn, self.stats, *tables)
            self.ctx.report(metrics, Path(d))

    def _state(self, epoch: int, last: bool) -> dict:
        state = {"epoch": epoch + 1, "best_score": self.best_score, "best_model": self.best_state}
        state["best_values"] = self.best_values
        if last:  # training is over: keep only the best weights (no optimiser state to resume)
            return state
        return {
            "model": self.raw_model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            **state,
        }


def train_loop_per_worker(config: dict) -> None:
    """Ray Train's entry point: ``config`` is ``{"trial": <TrialConfig dump>, "stats": <LabelStats dict>}``."""
    from ._context import RayTrainContext

    hooks = worker_hooks.from_env()  # first: the start-up timestamps hook notes when the loop was entered
    cfg = TrialConfig.of(config)
    context = RayTrainContext(cfg.label)
    recipe = TrialRecipe(cfg, LabelStats.from_dict(config["stats"]), context, hooks)
    recipe.setup().train()
    if context.fake_gpu:
        context.finished()


def memory_batches(train: SplitTensors, batch: int, augment: bool, steps: int, device: torch.device, gen):
    """``steps`` batches of this rank's in-memory items, in a new order every epoch (``gen``'s state, the same on
    every rank), padded with its first items so that every rank runs ``steps``; image flips drawn on the host,
    applied on the device (no host sync)."""
    order = torch.randperm(len(train), generator=gen)
    if len(order) < train.per_rank:  # pad so every rank runs the same number of steps (DDP)
        order = torch.cat([order, order[: train.per_rank - len(order)]])
    flips = train.is_image and augment

    def on_cpu():
        for s in range(steps):
            b = order[s * batch : (s + 1) * batch]
            yield train.inputs[b], train.targets[b], flip_mask(len(b), gen) if flips else None

    for x, y, flip in to_device(on_cpu(), device):
        yield (normalize_images(x, flip) if train.is_image else x), y


def _lpros_copies(table: LabelTable, cfg: TrialConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """LPROS's copies (docs/methods.md section 2) as (rows into the training splits' concatenation, their targets):
    counted on, and copied from, the training split's rows only (never validation rows, also when training on
    train + val); each copy is labelled with its minority node alone, closed upward. None when there are none."""
    splits = cfg.train.train_splits
    if "train" not in splits:
        raise ValueError("oversample: lpros copies rows of the training split; train.train_splits must include train")
    offset = 0
    for split in splits[: splits.index("train")]:
        offset += table.read(split, ["labels"]).num_rows
    listed = table.encode(table.read("train", ["labels"]).column("labels"), close=False)
    closure = table.closure  # the table's own ancestor closure (its label order is the stats' and the targets')
    rows, nodes = lpros_copies(listed, closure, table.depths, cfg.oversample_budget, cfg.seed)
    if len(rows) == 0:
        return None
    return rows + offset, np.asarray(closure[nodes].todense() > 0, dtype=np.float32)
