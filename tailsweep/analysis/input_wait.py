"""``train/input_wait_frac``: the share of a trial's step time spent waiting for its next batch (measured by
``trainables/_input.py: TimedBatches``, reported every epoch), and what to do when it is high. Shown by the
live table (``orchestrator/_progress.py``) and ``launch report``."""

from __future__ import annotations

import math
import statistics

INPUT_WAIT = "train/input_wait_frac"
HINT_AT = 0.2  # past this share of step time spent waiting for input, the trial says so
HINT = (
    "raise resources.cpus_per_worker (more loader processes), set train.decode: gpu, or cache embeddings "
    "(model.freeze with train.augment: false)"
)


def waits_too_long(frac) -> bool:
    return isinstance(frac, int | float) and not math.isnan(frac) and frac > HINT_AT


def hint(frac) -> str | None:
    """One line for a trial that waited for its input more than ``HINT_AT`` of its step time, else None."""
    if not waits_too_long(frac):
        return None
    return f"training waited for its input {frac:.0%} of its step time: {HINT}"


def report_blocks(groups: dict[str, list]) -> list[tuple]:
    """``launch report``'s lines on input wait: each setting's median over its trials' last epochs, and the hint
    for those past ``HINT_AT`` (nothing when no trial reported the metric)."""
    medians = {}
    for name, trials in groups.items():
        vals = [v for t in trials if isinstance(v := t.metrics.get(INPUT_WAIT), int | float) and not math.isnan(v)]
        if vals:
            medians[name] = statistics.median(vals)
    if not medians:
        return []
    slow = [n for n, v in medians.items() if waits_too_long(v)]
    text = (
        "Input wait (time each training step waited for its batch ÷ step time, last epoch, median over seeds): "
        + ", ".join(f"{n} {v:.2f}" for n, v in medians.items())
        + "."
    )
    if slow:
        text += f" Past {HINT_AT}: {', '.join(slow)} -- {HINT}."
    return [("p", text)]
