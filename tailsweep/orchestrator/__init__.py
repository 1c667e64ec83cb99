"""Sweep orchestration: spec, trial plan, Ray Tune run, MLflow tracking, report, CLI."""

from .spec import SpecError, SweepSpec, check_spec, load_spec

__all__ = ["SpecError", "SweepSpec", "check_spec", "load_spec"]
