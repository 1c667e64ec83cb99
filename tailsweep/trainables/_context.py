"""Where a worker runs: its rank, device, checkpoints and reports.

The recipe (``worker.py``) talks to a context, never to ``ray.train`` directly. ``RayTrainContext`` is the
real one, inside a Ray Train worker group. ``LocalContext`` is a stand-in with torch alone (one process, or a
``torch.distributed`` group the caller made): the GPU check runs the worker loop with it on machines that have
no Ray (``benchmarks/gpu_check.py``), and unit tests drive the recipe with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist

# TEST ONLY: "1" runs a Train worker on the CPU, its process group on gloo, where Ray gave it a GPU -- a fake one
# declared by Ray's fake multi-node autoscaler (tests/integration/test_gpu_cluster.py), on machines without CUDA.
# Each such worker logs the CUDA_VISIBLE_DEVICES and Ray GPU ids it was given, and appends them as a JSON line to
# the file named by FAKE_GPU_LOG_ENV when that is set. Never set it for real training: nothing runs on the GPU.
FAKE_GPU_ENV = "TAILSWEEP_TEST_FAKE_GPU"
FAKE_GPU_LOG_ENV = "TAILSWEEP_TEST_FAKE_GPU_LOG"
log = logging.getLogger(__name__)


def fake_gpu() -> bool:
    """Whether the test-only switch :data:`FAKE_GPU_ENV` is on in this process."""
    return os.environ.get(FAKE_GPU_ENV) == "1"


class RayTrainContext:
    """The worker's ``ray.train`` context (Train V2)."""

    def __init__(self, trial: str = ""):
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        self.rank, self.world = ctx.get_world_rank(), ctx.get_world_size()
        self.fake_gpu = fake_gpu()
        self.device = torch.device("cpu") if self.fake_gpu else ray.train.torch.get_device()
        if self.fake_gpu:
            self._note_fake_gpu(ctx, trial)

    def _note_fake_gpu(self, ctx, trial: str) -> None:
        import ray

        seen = {
            "trial": trial,
            "rank": self.rank,
            "local_rank": ctx.get_local_rank(),
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "start": time.time(),
        }
        log.warning("%s=1 (test only): worker on CPU/gloo, given GPU(s) %s", FAKE_GPU_ENV, json.dumps(seen))
        if path := os.environ.get(FAKE_GPU_LOG_ENV):
            with open(path, "a") as f:
                f.write(json.dumps(seen) + "\n")
        self._seen, self._log = seen, path

    def finished(self) -> None:
        """The run's end, for the fake-GPU log (test only): when this worker let its GPU go."""
        if getattr(self, "_log", None):
            with open(self._log, "a") as f:
                f.write(json.dumps({**self._seen, "end": time.time()}) + "\n")

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        import ray.train.torch

        if self.fake_gpu:  # Ray's prepare_model would move it to the (fake) CUDA device
            model = model.to(self.device)
            return torch.nn.parallel.DistributedDataParallel(model) if self.world > 1 else model
        return ray.train.torch.prepare_model(model)

    @contextlib.contextmanager
    def restored(self) -> Iterator[Path | None]:
        """The directory of the checkpoint to resume from (a worker restart, a sweep restore), or None."""
        import ray.train

        ckpt = ray.train.get_checkpoint()
        if not ckpt:
            yield None
            return
        with ckpt.as_directory() as d:
            yield Path(d)

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir is not None else None
        ray.train.report(metrics, checkpoint=checkpoint)


class LocalContext:
    """A stand-in for Ray Train's context with torch alone: rank and world from an initialised
    ``torch.distributed`` group (else 0 of 1), DDP when the world is larger than one, every report kept in
    ``reports`` and the last checkpoint copied under ``root``."""

    def __init__(self, device: torch.device | str | None = None, root: str | Path | None = None):
        initialised = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if initialised else 0
        self.world = dist.get_world_size() if initialised else 1
        if device is None:
            device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="tailsweep-local-"))
        self.reports: list[dict] = []
        self.checkpoint: Path | None = None

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    @contextlib.contextmanager
    def restored(self) -> Iterator[Path | None]:
        yield self.checkpoint

    def report(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        self.reports.append(dict(metrics))
        if checkpoint_dir is not None:
            dest = self.root / f"checkpoint-{len(self.reports):06d}"
            shutil.copytree(checkpoint_dir, dest)
            if self.checkpoint is not None:
                shutil.rmtree(self.checkpoint, ignore_errors=True)
            self.checkpoint = dest
