"""Sweep orchestration: spec, trial plan, Ray Tune run, MLflow tracking, report, CLI."""

from __future__ import annotations

_NAMES = ("SpecError", "SweepSpec", "check_spec", "load_spec")


def __getattr__(name: str):  # lazy: `launch --help` must not pay for the spec's imports
    if name in _NAMES:
        from . import spec

        return getattr(spec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_NAMES)
