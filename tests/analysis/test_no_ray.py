"""The results side, the losses and the datasets import no Ray: reports run wherever MLflow and the result
files are, and the libraries stay usable without a cluster."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("modules", [
    ["tailsweep.analysis.report", "tailsweep.analysis.summary", "tailsweep.analysis.search", "tailsweep.analysis.hmc",
     "tailsweep.analysis.stats", "tailsweep.analysis.tags", "tailsweep.analysis.bootstrap", "tailsweep.analysis.compare"],
    ["tailsweep.losses._registry", "tailsweep.losses._flat", "tailsweep.losses._hierarchy", "tailsweep.losses._ensemble"],
    ["tailsweep.datasets", "tailsweep.datasets._hmc", "tailsweep.datasets._images", "tailsweep.datasets._longtail"],
])
def test_imports_no_ray(modules):
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
