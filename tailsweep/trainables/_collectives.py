"""Every collective a Train worker runs outside DDP, right on every backend.

Ray Train's torch backend is gloo on CPUs and NCCL on GPUs. NCCL takes CUDA tensors only: a CPU tensor in
``dist.broadcast`` fails with "No backend type associated with device type cpu", and the object collectives
(``all_gather_object``) then move their bytes through the current CUDA device. The worker's own control
traffic (a checkpoint decision, gathered prediction rows) is small and host-side, so it goes through a gloo
side group over the same ranks: created once per process group (``new_group`` is itself a collective, so every
rank calls it in the same order), dropped with the group (``end``), and never on the DDP gradient path.
A world of one worker needs no group at all.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

_side: dict = {"default": None, "group": None}


def _cpu_backend_present() -> bool:
    """Whether the default group already carries CPU tensors (gloo, or a ``cpu:gloo,...`` mix)."""
    backend = str(dist.get_backend())
    return backend == "gloo" or "cpu:" in backend


def host_group():
    """A process group that takes CPU tensors: the default one where it does, else a gloo group of the same
    ranks (made once per default group)."""
    if _cpu_backend_present():
        return None  # None = the default group
    default = dist.group.WORLD
    if _side["default"] is not default or _side["group"] is None:
        _side["group"] = dist.new_group(backend="gloo")
        _side["default"] = default
    return _side["group"]


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def agree(flag: bool, src: int = 0) -> bool:
    """Rank ``src``'s ``flag`` on every rank (e.g. whether this epoch writes a checkpoint)."""
    if world_size() == 1:
        return flag
    t = torch.tensor([int(flag)], dtype=torch.int64)
    dist.broadcast(t, src, group=host_group())
    return bool(t.item())


def gather_rows(x: np.ndarray) -> np.ndarray:
    """Every rank's rows of ``x``, concatenated in rank order (on every rank)."""
    world = world_size()
    if world == 1:
        return x
    parts: list = [None] * world
    dist.all_gather_object(parts, x, group=host_group())
    return np.concatenate(parts, axis=0)


def end() -> None:
    """Destroy the default process group and the side group with it (a kept worker, before its next trial)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()  # destroys every group, the side group included
    _side["default"] = _side["group"] = None
