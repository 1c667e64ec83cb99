"""What the lean path's kept Train workers run between trials (orchestrator/_lean/on_worker.py), called directly.

The process groups are real (gloo, world size 1, in this process); the Train context is Ray Train's own
``TrainContext`` dataclass, set as the process's context without a Ray cluster."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch.distributed as dist

from tailsweep.orchestrator._lean import on_worker
from tailsweep.trainables import _collectives


@pytest.fixture
def no_group():
    """Every test starts and ends with torch.distributed uninitialised (a leak would break later tests)."""
    assert not dist.is_initialized()
    yield
    if dist.is_initialized():
        dist.destroy_process_group()
    _collectives._side["default"] = _collectives._side["group"] = None


def _init(store, backend: str) -> None:
    dist.init_process_group(backend=backend, init_method=f"file://{store}", rank=0, world_size=1)


def test_a_kept_worker_ends_its_group_and_side_group_and_can_start_the_next(tmp_path, no_group):
    """Three runs in one process, each on a group shaped like NCCL's (its gloo side group made by a collective):
    without end_process_group the second init_process_group fails ("initialize the default process group twice")."""
    for run in range(3):
        _init(tmp_path / f"store{run}", "cuda:gloo")
        side = _collectives.host_group()  # no CPU backend on the default group: a gloo side group
        assert side is not None and _collectives._side["group"] is side
        on_worker.end_process_group()
        assert not dist.is_initialized()
        assert _collectives._side == {"default": None, "group": None}  # the next run makes its own side group


def test_ending_a_group_that_was_never_started_does_nothing(no_group):
    on_worker.end_process_group()
    on_worker.end_process_group()  # twice: a worker whose run failed before its set-up
    assert not dist.is_initialized()


def test_the_second_init_fails_without_it(tmp_path, no_group):
    """The failure end_process_group exists for (so the test above tests something)."""
    _init(tmp_path / "a", "gloo")
    with pytest.raises((RuntimeError, ValueError), match="twice"):
        _init(tmp_path / "b", "gloo")


def test_a_reused_worker_gets_an_upload_pool_of_its_own():
    from ray.train.v2._internal.execution import context as train_context

    def make_context(pool=None):
        fields = dict.fromkeys(
            (
                "train_run_context",
                "distributed_context",
                "execution_context",
                "storage_context",
                "preemption_context",
                "controller_actor",
                "dataset_shard_provider",
            )
        )
        return train_context.TrainContext(**fields, **({"checkpoint_upload_threadpool": pool} if pool else {}))

    # Ray's reason for the fix: every context of a process shares one default pool
    assert make_context().checkpoint_upload_threadpool is make_context().checkpoint_upload_threadpool
    ended = ThreadPoolExecutor(max_workers=3)
    ended.shutdown()  # what Ray Train does to the pool when a training function returns
    with pytest.raises(RuntimeError, match="shutdown"):
        ended.submit(int)
    ctx = make_context(ended)
    previous = train_context._train_context
    train_context.set_train_context(ctx)
    try:
        on_worker.fresh_checkpoint_upload_pool()
    finally:
        train_context.set_train_context(previous)
    pool = ctx.checkpoint_upload_threadpool
    assert pool is not ended and pool._max_workers == 3  # a new pool, as wide as the old one
    assert pool.submit(lambda: 41 + 1).result(timeout=5) == 42  # the next run's async uploads can start
    pool.shutdown()


def test_importing_it_loads_neither_ray_nor_torch():
    """A Train worker imports it by reference: loading it must cost nothing before a function is called."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tailsweep.orchestrator._lean.on_worker; print('ray' in sys.modules, 'torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
