"""Constants and rules that both sides of tailsweep use: the orchestrator (which writes a sweep) and the analysis
(which reads it back). Imports nothing from either side, so ``tailsweep.analysis`` never imports
``tailsweep.orchestrator`` (a test scans its imports)."""

from __future__ import annotations

# Frequency buckets by training count (Liu et al., CVPR 2019): many > 100, medium 20-100, few < 20.
MANY_ABOVE = 100
FEW_BELOW = 20
BUCKETS = ("many", "medium", "few")


def tpe_startup(num_samples: int, startup_trials: int | None = None) -> int:
    """How many of a TPE study's configurations are drawn at random: ``startup_trials``, or a quarter of the
    budget within [2, 10]. The one rule, used by the sweep and by the report that reads it back."""
    return startup_trials or max(2, min(10, num_samples // 4))
