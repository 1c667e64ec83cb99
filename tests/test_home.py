"""The suite runs with its own HOME and checks, at the end, that the real one is as it found it (conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import home_changes, home_snapshot


def test_the_session_and_its_processes_have_their_own_home(real_home):
    home = Path.home()
    assert home != real_home and home.name.startswith("tailsweep-test-home-") and home.is_dir()
    seen = subprocess.run(
        [sys.executable, "-c", "import pathlib; print(pathlib.Path.home())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert seen == str(home)  # what `ray start`, `launch` and Ray's workers inherit


def test_the_home_check_sees_what_ray_and_mlflow_write(tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "mlflow").mkdir(parents=True)
    (home / ".config" / "mlflow" / "telemetry.json").write_text("{}")
    before = home_snapshot(home)
    assert home_changes(before, home_snapshot(home)) == []
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text("token")
    (home / ".config" / "mlflow" / "telemetry.json").write_text('{"changed": 1}')
    os.utime(home / ".config" / "mlflow" / "telemetry.json", ns=(1, 1))
    assert home_changes(before, home_snapshot(home)) == [
        "created .ray",
        "created .ray/auth_token",
        "changed .config/mlflow/telemetry.json",
    ]
