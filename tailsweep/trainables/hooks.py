"""Hooks that tests and benchmarks install into the worker loop, by environment variables (they reach Ray's
worker processes, which a driver cannot hand objects to). The loop calls every installed hook at the start of
each epoch, after each optimiser step and when it builds an epoch's metrics; with none installed, nothing runs.

- Fault injection (tests): ``TAILSWEEP_FAULT=<action>@<epoch>[.<step>][:<scheme>]`` with action ``raise`` (the
  worker raises at the start of that epoch), ``exit`` (the worker process dies) or ``hold`` (it blocks for 10 min
  while a test kills the sweep's driver, or the worker's node); with ``.<step>``, after that optimiser step of the
  epoch instead of at its start (mid-epoch: the weights have moved past the last checkpoint); only trials of
  ``<scheme>`` when given. With ``TAILSWEEP_FAULT_ONCE`` set to a file path, the fault fires once: the file marks
  it fired and says where (JSON: scheme, epoch, step, pid, and the Ray node id when in a Ray worker).
  ``exit`` waits ``EXIT_GRACE_S`` first: Ray Train's worker hands its reports over through a one-slot queue that
  the controller polls every 2 s, and a process that dies while a poll's reply is in flight loses that report
  (and its checkpoint) -- with tiny test epochs the restart would then resume from scratch by chance, not
  because no checkpoint was due. The wait makes "resumed from the last checkpoint" something a test can assert.
- Start-up timestamps (benchmarks/overhead.py): ``TAILSWEEP_TIMESTAMPS=1`` adds the wall-clock times at which
  the worker's process started, its training function was entered and its first step ran
  (``time/worker_process_start``, ``time/loop_entered``, ``time/first_step``) to every epoch's metrics.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

FAULT_ENV = "TAILSWEEP_FAULT"
FAULT_ONCE_ENV = "TAILSWEEP_FAULT_ONCE"
TIMESTAMPS_ENV = "TAILSWEEP_TIMESTAMPS"
EXIT_GRACE_S = 3.0  # > Ray Train's 2 s poll interval: the reports made before the fault reach the controller


class WorkerHook:
    """No-op base: override what you need."""

    def epoch_start(self, epoch: int, scheme: str) -> None:
        """Before epoch ``epoch`` (1-based) of a trial of ``scheme``."""

    def after_step(self) -> None:
        """After each optimiser step."""

    def epoch_metrics(self) -> dict:
        """Extra metrics for the epoch's report."""
        return {}


class FaultInjection(WorkerHook):
    def __init__(self, spec: str, once: str | None = None):
        action, _, rest = spec.partition("@")
        at, _, only = rest.partition(":")
        epoch, _, step = at.partition(".")
        if action not in ("raise", "exit", "hold") or not epoch.isdigit() or not (step == "" or step.isdigit()):
            raise ValueError(f"{FAULT_ENV}={spec!r}: expected raise|exit|hold@<epoch>[.<step>][:<scheme>]")
        self.action, self.at, self.only, self.once = action, int(epoch), only, once
        self.step = int(step) if step else None
        self.scheme, self.steps = "", -1  # armed in the matching epoch: steps counted there (-1: not armed)

    def epoch_start(self, epoch: int, scheme: str) -> None:
        self.steps = -1
        if epoch != self.at or self.only not in ("", scheme):
            return
        if self.step is None:
            self._fire(scheme, 0)
        else:
            self.scheme, self.steps = scheme, 0

    def after_step(self) -> None:
        if self.steps < 0:
            return
        self.steps += 1
        if self.steps == self.step:
            self.steps = -1
            self._fire(self.scheme, self.step)

    def _fire(self, scheme: str, step: int) -> None:
        if self.once:
            if Path(self.once).exists():
                return
            Path(self.once).write_text(json.dumps(_where(scheme, self.at, step)))
        if self.action == "raise":
            raise RuntimeError(f"{FAULT_ENV}: injected failure at epoch {self.at}")
        if self.action == "exit":
            time.sleep(EXIT_GRACE_S)
            os._exit(1)
        time.sleep(600)  # hold


def _where(scheme: str, epoch: int, step: int) -> dict:
    """Where a fault fired: the trial's scheme, the epoch and step, this process, its Ray node (if any)."""
    node = None
    try:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 -- no Ray here (LocalContext): no node
        node = None
    return {"scheme": scheme, "epoch": epoch, "step": step, "pid": os.getpid(), "node_id": node}


class StartupTimestamps(WorkerHook):
    def __init__(self):
        self.loop_entered, self.process_started, self.first_step = time.time(), _process_start(), 0.0

    def after_step(self) -> None:
        if not self.first_step:
            self.first_step = time.time()

    def epoch_metrics(self) -> dict:
        return {
            "time/worker_process_start": self.process_started,
            "time/loop_entered": self.loop_entered,
            "time/first_step": self.first_step,
        }


def _process_start() -> float:
    """When this process started (wall clock); NaN where psutil is missing (Ray ships it to its workers)."""
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001
        return math.nan


def from_env() -> list[WorkerHook]:
    """The hooks the environment installs (none in a normal sweep)."""
    hooks: list[WorkerHook] = []
    if spec := os.environ.get(FAULT_ENV, ""):
        hooks.append(FaultInjection(spec, os.environ.get(FAULT_ONCE_ENV)))
    if os.environ.get(TIMESTAMPS_ENV) == "1":
        hooks.append(StartupTimestamps())
    return hooks
