"""Worker hooks: fault injection (tests) and start-up timestamps (benchmarks), installed by the environment."""

import pytest

from tailsweep.trainables.hooks import (
    FAULT_ENV,
    FAULT_ONCE_ENV,
    TIMESTAMPS_ENV,
    FaultInjection,
    StartupTimestamps,
    from_env,
)


def test_nothing_is_installed_by_default(monkeypatch):
    for k in (FAULT_ENV, FAULT_ONCE_ENV, TIMESTAMPS_ENV):
        monkeypatch.delenv(k, raising=False)
    assert from_env() == []


def test_a_fault_fires_at_its_epoch_for_its_scheme_only(monkeypatch, tmp_path):
    monkeypatch.setenv(FAULT_ENV, "raise@2:focal")
    (hook,) = from_env()
    hook.epoch_start(1, "focal")
    hook.epoch_start(2, "unweighted")
    with pytest.raises(RuntimeError, match="epoch 2"):
        hook.epoch_start(2, "focal")


def test_a_fault_marked_once_fires_once(tmp_path):
    hook = FaultInjection("raise@1", str(tmp_path / "fired"))
    with pytest.raises(RuntimeError):
        hook.epoch_start(1, "x")
    hook.epoch_start(1, "x")  # the file marks it fired
    assert (tmp_path / "fired").exists()


@pytest.mark.parametrize("spec", ["boom@1", "raise@x", "raise"])
def test_a_malformed_fault_is_refused(spec):
    with pytest.raises(ValueError, match=FAULT_ENV):
        FaultInjection(spec)


def test_timestamps_record_the_first_step_once(monkeypatch):
    monkeypatch.setenv(TIMESTAMPS_ENV, "1")
    monkeypatch.delenv(FAULT_ENV, raising=False)
    (hook,) = from_env()
    assert isinstance(hook, StartupTimestamps) and hook.epoch_metrics()["time/first_step"] == 0.0
    hook.after_step()
    first = hook.epoch_metrics()["time/first_step"]
    hook.after_step()
    assert first > 0 and hook.epoch_metrics()["time/first_step"] == first


def test_a_fault_with_a_step_fires_after_that_step_of_its_epoch_and_records_where(tmp_path):
    import json

    hook = FaultInjection("raise@2.3:focal", str(tmp_path / "fired"))
    hook.epoch_start(1, "focal")
    for _ in range(5):
        hook.after_step()  # epoch 1: not armed
    hook.epoch_start(2, "unweighted")
    for _ in range(5):
        hook.after_step()  # another scheme: not armed
    hook.epoch_start(2, "focal")  # armed: the start of the epoch itself does not fire
    hook.after_step()
    hook.after_step()
    with pytest.raises(RuntimeError, match="epoch 2"):
        hook.after_step()
    where = json.loads((tmp_path / "fired").read_text())
    assert where == {"scheme": "focal", "epoch": 2, "step": 3, "pid": where["pid"], "node_id": None} and where["pid"]
    hook.after_step()  # fired: disarmed


@pytest.mark.parametrize("spec", ["raise@2.x", "raise@.3", "hold@2.3.1"])
def test_a_malformed_step_is_refused(spec):
    with pytest.raises(ValueError, match=r"\[\.<step>\]"):
        FaultInjection(spec)
