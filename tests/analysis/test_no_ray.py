"""The results side, the losses and the datasets import no Ray: reports run wherever MLflow and the result
files are, and the libraries stay usable without a cluster."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "modules",
    [
        [
            "tailsweep.analysis.report",
            "tailsweep.analysis.summary",
            "tailsweep.analysis.search",
            "tailsweep.analysis.hmc",
            "tailsweep.analysis.stats",
            "tailsweep.analysis.tags",
            "tailsweep.analysis.bootstrap",
            "tailsweep.analysis.compare",
            "tailsweep.analysis.input_wait",
        ],
        [
            "tailsweep.losses._registry",
            "tailsweep.losses._flat",
            "tailsweep.losses._hierarchy",
            "tailsweep.losses._ensemble",
        ],
        ["tailsweep.datasets", "tailsweep.datasets._hmc", "tailsweep.datasets._images", "tailsweep.datasets._longtail"],
    ],
)
def test_imports_no_ray(modules):
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout


ANALYSIS = Path(__file__).resolve().parents[2] / "tailsweep" / "analysis"


def _imported(path: Path) -> list[str]:
    """Every module ``path`` imports, resolved to absolute names (``from ..orchestrator import x`` included)."""
    package = ["tailsweep", "analysis"]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            out.append(".".join(base + ([node.module] if node.module else [])))
    return out


def test_analysis_imports_nothing_from_the_orchestrator():
    files = sorted(ANALYSIS.glob("*.py"))
    assert len(files) >= 10
    found = {f.name: m for f in files for m in _imported(f) if m.startswith("tailsweep.orchestrator")}
    assert found == {}
    # the scan resolves relative imports (or it would pass vacuously)
    assert "tailsweep._common" in _imported(ANALYSIS / "report.py")


def test_results_are_keyed_by_ids_not_by_display_text():
    """No identity read back out of a display string: a setting is its plan group, a seed is data."""
    for f in sorted(ANALYSIS.glob("*.py")):
        text = f.read_text()
        for pattern in ('rsplit(" seed="', "split()[0] ==", ".split()[0]"):
            assert pattern not in text, f"{f.name}: {pattern}"
