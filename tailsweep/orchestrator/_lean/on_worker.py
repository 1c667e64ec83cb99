"""Functions the lean path runs on its kept Train workers (``inline.py: WorkerReuse``), by reference: a worker
process imports this module, which imports nothing of Ray at load time."""

from __future__ import annotations


def end_process_group() -> None:
    """When a kept worker's run ends: destroy the torch process groups (the default one and the side group of
    ``trainables/_collectives.py``), then free what the run left on the GPU. Ray Train destroys the group only for
    groups of more than one worker; the next run's set-up would find it initialised and fail ("initialize the
    default process group twice"), and an NCCL communicator must not outlive its run."""
    import gc

    import torch

    from ...trainables import _collectives

    _collectives.end()
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def fresh_checkpoint_upload_pool() -> None:
    """After Ray Train set up a reused worker's new run context: give the context a checkpoint-upload thread pool
    of its own. Ray 2.60's ``TrainContext`` declares the pool as a dataclass default, one executor shared by every
    context of the process, and shuts it down when a training function returns; the next run in the same process
    would fail at its first asynchronous checkpoint upload (``checkpoint_upload_mode=ASYNC``; tailsweep's loop
    reports synchronously, a user's own loop may not)."""
    from concurrent.futures import ThreadPoolExecutor

    from ray.train.v2._internal.execution.context import get_train_context

    ctx = get_train_context()
    ctx.checkpoint_upload_threadpool = ThreadPoolExecutor(max_workers=ctx.checkpoint_upload_threadpool._max_workers)
