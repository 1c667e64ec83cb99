"""The worker's collectives on a process group shaped like NCCL's: one that carries no CPU backend.

``cuda:gloo`` maps only the cuda device type to a backend, so a CPU tensor in a collective fails exactly as
it does under NCCL on GPUs ("No backend type associated with device type cpu"), on a machine with no GPU.
The worker's checkpoint decision used to broadcast ``torch.tensor([int(due)])`` on the default group: the
first test below failed with that error before ``_collectives`` existed.
"""

import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tailsweep.trainables import _collectives as collectives


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _init(rank: int, port: int, backend: str) -> None:
    dist.init_process_group(backend=backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)


def _decide_and_gather(rank, port, backend, out):
    _init(rank, port, backend)
    try:
        due = collectives.agree(rank == 0)  # rank 0 decides: both ranks must see True
        rows = collectives.gather_rows(np.full((rank + 1, 2), rank, dtype=np.int64))
        out.put((rank, due, rows.tolist()))
    finally:
        collectives.end()


def _kept_worker(rank, port, backend, out):
    """A kept Train worker: three trials in one process, each with its own group (as the lean path does)."""
    seen = []
    for trial in range(3):
        _init(rank, port + trial, backend)
        seen.append((collectives.agree(trial % 2 == 0), len(collectives.gather_rows(np.zeros((1, 1))))))
        collectives.end()
        assert not dist.is_initialized()
    out.put((rank, seen))


def _old_broadcast(rank, port, backend, out):
    _init(rank, port, backend)
    try:
        flag = torch.tensor([1])
        dist.broadcast(flag, 0)
        out.put((rank, "ok"))
    except RuntimeError as exc:
        out.put((rank, str(exc)))
    finally:
        dist.destroy_process_group()


def _run(fn, backend="cuda:gloo"):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=fn, args=(r, port, backend, out)) for r in range(2)]
    for p in procs:
        p.start()
    got = sorted((out.get(timeout=90) for _ in procs), key=lambda t: t[0])
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return got


def test_a_cpu_tensor_broadcast_fails_on_a_group_without_a_cpu_backend():
    """What the worker did before: the NCCL failure, reproduced without a GPU (the premise of these tests)."""
    got = _run(_old_broadcast)
    assert all("No backend type associated with device type cpu" in msg for _, msg in got)


@pytest.mark.parametrize("backend", ["cuda:gloo", "gloo"])
def test_checkpoint_decision_and_gathered_rows_on_every_backend(backend):
    got = _run(_decide_and_gather, backend)
    for _rank, due, rows in got:
        assert due is True  # rank 0's decision, on both ranks
        assert rows == [[0, 0], [1, 1], [1, 1]]  # rank order, every row once


def test_a_kept_worker_rebuilds_its_groups_three_times_in_one_process():
    got = _run(_kept_worker)
    for _rank, seen in got:
        assert seen == [(True, 2), (False, 2), (True, 2)]


def test_a_single_worker_needs_no_group():
    assert not dist.is_initialized()
    assert collectives.agree(True) is True and collectives.agree(False) is False
    x = np.arange(6).reshape(3, 2)
    assert collectives.gather_rows(x) is x
