"""Paths mean what they say (issue 22): relative paths in a spec file resolve against the file's folder, so the
shipped configs work from any directory; ``--set`` values resolve against the current directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tailsweep.orchestrator.spec import load_spec
from tests.conftest import SHARED_DATA, make_features_table

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LAUNCH = Path(sys.executable).parent / "launch"


def _launch(*args, cwd):
    return subprocess.run([str(LAUNCH), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_shipped_demo_config_dry_runs_from_another_directory(tmp_path):
    out = _launch("sweep", REPO / "configs" / "demo.yaml", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"MLflow sqlite:///{REPO / 'tailsweep-runs' / 'mlflow.db'}" in " ".join(out.stdout.split())
    assert not (tmp_path / "tailsweep-runs").exists()  # nothing lands where the command happened to run


@pytest.mark.skipif(not (SHARED_DATA / "cellcycle_FUN").is_dir(), reason="../shared/data/cellcycle_FUN not present")
def test_shipped_hmc_config_dry_runs_from_another_directory(tmp_path):
    spec = load_spec(REPO / "configs" / "hmc_cellcycle_fun.yaml")
    table = Path(spec.data.path)
    assert table == REPO / "tailsweep-runs" / "data" / "hmc" / "cellcycle_FUN"  # against the file, not the cwd
    if not table.exists():  # the config's first step (its header says so)
        done = _launch("data", "import-hmc", "cellcycle_FUN", table, "--data-dir", SHARED_DATA, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    out = _launch("sweep", REPO / "configs" / "hmc_cellcycle_fun.yaml", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "mcloss seed=0" in out.stdout and "node_imbalance" in out.stdout


def test_file_paths_against_the_file_and_set_paths_against_the_cwd(tmp_path, monkeypatch):
    make_features_table(tmp_path / "project" / "tables" / "t")
    spec_file = tmp_path / "project" / "specs" / "s.yaml"
    spec_file.parent.mkdir(parents=True)
    spec_file.write_text(
        yaml.safe_dump({"data": {"path": "../tables/t"}, "tracking": {"dir": "../runs"}, "model": {"backbone": "mlp"}})
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_spec(spec_file)
    assert spec.data.path == str(tmp_path / "project" / "tables" / "t")
    assert spec.tracking.dir == str(tmp_path / "project" / "runs")
    over = load_spec(spec_file, ["tracking.dir=local-runs"])  # --set: against the current directory
    assert over.resolved().tracking.dir == str(elsewhere / "local-runs")
    shown = _launch("sweep", spec_file, "--show-spec", "--set", "tracking.dir=x", cwd=elsewhere)
    assert (
        f"dir: {elsewhere / 'x'}" in shown.stdout and f"path: {tmp_path / 'project' / 'tables' / 't'}" in shown.stdout
    )
    assert os.getcwd() == str(elsewhere)
