"""A killed sweep driver, then `launch sweep --resume`: the real CLI, local Ray, a SQLite MLflow store.

The driver is killed with SIGKILL (no cleanup runs) while its second trial is held in epoch 3; every
process it started (Ray's GCS, raylet, trial actor, Train worker) is then killed by PID. The resumed
sweep must keep the finished trial as it was, continue the interrupted one in the same MLflow run, and
run the one that never started -- every epoch's metrics logged exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tailsweep.orchestrator._tracking import (
    CONFIG_TAG,
    PARENT_TAG,
    STARTED_TAG,
    SWEEP_TAG,
    TRIAL_TAG,
)
from tailsweep.trainables.hooks import FAULT_ENV, FAULT_ONCE_ENV
from tests.conftest import make_features_table

pytestmark = pytest.mark.integration

LAUNCH = Path(sys.executable).parent / "launch"
EPOCHS = 4


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _history(client, run_id):
    return [m.step for m in client.get_metric_history(run_id, "val/macro_ap")]


def _held_sweep(tmp_path, schemes, epochs, hold, extra=None, **train):
    """`launch sweep` (the real CLI, one trial at a time) until the fault ``hold`` (``hold@EPOCH:SCHEME``)
    holds a trial's worker; returns (driver process, spec file, tracking dir, environment). ``extra``: more of
    the spec (seeds, search)."""
    table = make_features_table(tmp_path / "t", n=(160, 40, 40))
    runs = tmp_path / "runs"
    spec_file = tmp_path / "sweep.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {
                "data": {"path": str(table.root)},
                "model": {"backbone": "mlp", "hidden": 16},
                "schemes": schemes,
                "seeds": [0],
                "train": {"epochs": epochs, "batch_size": 32, **train},
                "resources": {"max_concurrent_trials": 1},
                "tracking": {"dir": str(runs)},
                **(extra or {}),
            }
        )
    )
    held = tmp_path / "held"
    env = {**os.environ, FAULT_ENV: hold, FAULT_ONCE_ENV: str(held)}
    driver = subprocess.Popen(
        [str(LAUNCH), "sweep", str(spec_file)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 300
    while not held.exists():
        if driver.poll() is not None or time.monotonic() > deadline:
            doomed = _descendants(driver.pid)
            _kill([driver.pid, *doomed])
            raise AssertionError(f"the sweep never reached {hold}: {driver.stdout.read()}")
        time.sleep(0.5)
    return driver, spec_file, runs, env


def test_killed_driver_then_resume_finishes_every_trial_once(tmp_path):
    # the second trial is held in epoch 3 (epochs 1-2 logged and checkpointed)
    driver, spec_file, runs, env = _held_sweep(
        tmp_path, ["unweighted", "inverse_frequency", "focal"], EPOCHS, "hold@3:inverse_frequency", checkpoint_every_s=0
    )
    try:
        time.sleep(4)  # past Tune's experiment-state period (TUNE_GLOBAL_CHECKPOINT_S = 2)
    finally:
        doomed = _descendants(driver.pid)
        _kill([driver.pid])
        driver.wait(30)
        _kill(doomed)
    assert driver.returncode == -signal.SIGKILL

    client = MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tailsweep")
    (parent,) = [r for r in client.search_runs([exp.experiment_id]) if PARENT_TAG not in r.data.tags]
    before = {
        r.data.tags["scheme"]: r
        for r in client.search_runs([exp.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    }
    assert before["unweighted"].info.status == "FINISHED" and _history(client, before["unweighted"].info.run_id) == [
        1,
        2,
        3,
        4,
    ]
    assert before["inverse_frequency"].info.status == "RUNNING"  # nothing ran to close it: SIGKILL
    assert _history(client, before["inverse_frequency"].info.run_id) == [1, 2]
    assert _history(client, before["focal"].info.run_id) == []

    out = subprocess.run(
        [str(LAUNCH), "sweep", str(spec_file), "--resume", "latest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"resuming sweep {parent.data.tags[SWEEP_TAG]}" in out.stdout

    after = {
        r.data.tags["scheme"]: r
        for r in client.search_runs([exp.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    }
    assert set(after) == {"unweighted", "inverse_frequency", "focal"}
    every = client.search_runs([exp.experiment_id])
    assert len(every) == 4, [
        (r.info.run_name, r.info.status, r.data.tags.get(SWEEP_TAG), r.data.tags.get(PARENT_TAG), r.info.run_id)
        for r in every
    ]  # nothing duplicated
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"
    for scheme, run in after.items():
        assert run.info.run_id == before[scheme].info.run_id
        assert run.info.status == "FINISHED", scheme
        assert _history(client, run.info.run_id) == list(range(1, EPOCHS + 1)), scheme  # every epoch once
        assert "test/macro_ap" in run.data.metrics
    # the finished trial was not run again: same Tune trial, same start
    for tag in (TRIAL_TAG, STARTED_TAG):
        assert after["unweighted"].data.tags[tag] == before["unweighted"].data.tags[tag]


def test_ctrl_c_exits_130_with_the_resume_command_and_leaves_no_run_running(tmp_path):
    driver, _, runs, _ = _held_sweep(tmp_path, ["unweighted", "focal"], 3, "hold@2:unweighted")
    try:
        driver.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, _ = driver.communicate(timeout=180)
    finally:
        doomed = _descendants(driver.pid)
        if driver.poll() is None:
            _kill([driver.pid])
        _kill(doomed)
    text = " ".join(out.split())  # rich wraps long lines
    assert driver.returncode == 130, text
    client = MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tailsweep")
    (parent,) = [r for r in client.search_runs([exp.experiment_id]) if PARENT_TAG not in r.data.tags]
    assert f"--resume {parent.data.tags[SWEEP_TAG]}" in text and "interrupted" in text
    statuses = {
        r.data.tags["scheme"]: r.info.status
        for r in client.search_runs([exp.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    }
    assert statuses["unweighted"] == "KILLED" and "RUNNING" not in statuses.values(), statuses
    assert client.get_run(parent.info.run_id).info.status == "KILLED"


def test_killed_tpe_search_resumes_its_studies_and_runs_exactly_its_budget(tmp_path):
    import optuna

    schemes = [{"name": "effective_number", "search": ["beta"]}, {"name": "focal", "search": {"gamma": [0.5, 3.0]}}]
    # trials in order: effective_number's first configuration (seeds 0, 1), then focal's, held in its epoch 2
    driver, spec_file, runs, env = _held_sweep(
        tmp_path,
        schemes,
        2,
        "hold@2:focal",
        checkpoint_every_s=0,
        extra={"seeds": [0, 1], "search": {"algorithm": "tpe", "num_samples": 3, "lr": [0.001, 0.01]}},
    )
    try:
        time.sleep(4)  # past Tune's experiment-state period
    finally:
        doomed = _descendants(driver.pid)
        _kill([driver.pid])
        driver.wait(30)
        _kill(doomed)
    client = MlflowClient(f"sqlite:///{runs / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tailsweep")
    (parent,) = [r for r in client.search_runs([exp.experiment_id]) if PARENT_TAG not in r.data.tags]
    sweep_id = parent.data.tags[SWEEP_TAG]
    before = client.search_runs([exp.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    assert len(before) < 12 and any(r.info.status == "RUNNING" for r in before)  # mid-search: SIGKILL closes nothing

    out = subprocess.run(
        [str(LAUNCH), "sweep", str(spec_file), "--resume", "latest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    after = client.search_runs([exp.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'")
    per_scheme: dict[str, list] = {}
    for r in after:
        per_scheme.setdefault(r.data.tags["scheme"], []).append(r)
    assert {k: len(v) for k, v in per_scheme.items()} == {"effective_number": 6, "focal": 6}  # num_samples x seeds
    for scheme, rs in per_scheme.items():
        configs: dict[str, list[str]] = {}
        for r in rs:
            assert r.info.status == "FINISHED", (scheme, r.info.run_name)
            assert _history(client, r.info.run_id) == [1, 2], r.info.run_name  # every epoch once
            configs.setdefault(r.data.tags[CONFIG_TAG], []).append(r.data.params["seed"])  # params, lr, wd
        # three distinct configurations, each run once per seed: none suggested again after the resume
        assert sorted(sorted(v) for v in configs.values()) == [["0", "1"]] * 3, scheme
    assert len(client.search_runs([exp.experiment_id])) == 13  # nothing duplicated (deleted runs are not listed)
    report = (runs / "sweeps" / sweep_id / "report" / "report.md").read_text()  # the sweep's end: the search
    assert "What the search learned (TPE)" in report and "search_history.png" in report
    assert "param_importances.png" in report
    storage = f"sqlite:///{runs / 'sweeps' / sweep_id / 'optuna.db'}"
    for name in ("effective_number", "focal"):
        states = [t.state for t in optuna.load_study(study_name=f"{sweep_id}/{name}", storage=storage).trials]
        assert states.count(optuna.trial.TrialState.COMPLETE) == 3 and optuna.trial.TrialState.RUNNING not in states
