"""Batches into the training step: moved to the device one batch ahead, and timed.

``to_device`` pins each batch's tensors and copies them to a CUDA device on a side stream while the step
before runs (the step waits on an event, never on the host). On a CPU device batches pass through as they are.

``TimedBatches`` measures how long each step waits for its batch: the epoch's ``train/input_wait_frac`` is
that wait divided by the epoch's step time (the hint past 0.2: ``analysis/input_wait.py``). On CPU both are host clocks. On CUDA the host runs ahead of the
GPU, so a host clock would count time the GPU was still busy: there two events per step (one where the step
asks for its batch, one where it has it) give the GPU's own idle gap, read once at the end of the epoch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import torch


def _send(batch: tuple, device: torch.device, stream) -> tuple:
    with torch.cuda.stream(stream):
        return tuple(
            t
            if t is None or t.device == device
            else (t if t.is_pinned() else t.pin_memory()).to(device, non_blocking=True)
            for t in batch
        )


def to_device(batches: Iterable[tuple], device: torch.device) -> Iterator[tuple]:
    """Each batch (a tuple of CPU tensors, None allowed) on ``device``; on CUDA copied one batch ahead."""
    if device.type != "cuda":
        yield from batches
        return
    side = torch.cuda.Stream(device)
    current = torch.cuda.current_stream(device)
    ahead = None  # (tensors on the device, the event their copy ends with)
    for batch in batches:
        sent = _send(batch, device, side)
        done = torch.cuda.Event()
        done.record(side)
        if ahead is not None:
            yield _take(ahead, current)
        ahead = (sent, done)
    if ahead is not None:
        yield _take(ahead, current)


def _take(ahead: tuple, current) -> tuple:
    sent, done = ahead
    current.wait_event(done)
    for t in sent:
        if t is not None:
            t.record_stream(current)  # allocated on the side stream, used on this one
    return sent


class TimedBatches:
    """Yields the batches of ``batches`` and times how long the step waited for each.

    Usage: ``timed = TimedBatches(batches, device)``; ``for x, y in timed: step``; then ``timed.wait_frac()``.
    """

    def __init__(self, batches: Iterable, device: torch.device, clock=time.perf_counter):
        self.batches, self.device, self.clock = batches, device, clock
        self.cuda = device.type == "cuda"
        self.wait_s = self.total_s = 0.0
        self.steps = 0
        self._marks: list = []  # CUDA: (asked, got) event pairs

    def _mark(self):
        if not self.cuda:
            return self.clock()
        e = torch.cuda.Event(enable_timing=True)
        e.record(torch.cuda.current_stream(self.device))
        return e

    def __iter__(self):
        it = iter(self.batches)
        self._start = self._end = self._mark()
        while True:
            asked = self._end = self._mark()  # also the end of the step before
            try:
                batch = next(it)
            except StopIteration:
                break
            got = self._mark()
            if self.cuda:
                self._marks.append((asked, got))
            else:
                self.wait_s += got - asked
            self.steps += 1
            yield batch

    def wait_frac(self) -> float:
        """Time spent waiting for batches / the epoch's step time (0 when nothing ran)."""
        if not self.cuda:
            self.total_s = self._end - self._start if self.steps else 0.0
        elif self._marks:
            self._end.synchronize()  # once per epoch: the events must have completed to be read
            self.wait_s = sum(a.elapsed_time(g) for a, g in self._marks) / 1000
            self.total_s = self._start.elapsed_time(self._end) / 1000
            self._marks = []
        return self.wait_s / self.total_s if self.total_s > 0 else 0.0
