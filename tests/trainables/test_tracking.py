"""No silent metric loss (issue 19): epochs whose write the tracking store refuses are kept and written once it
answers, and the counts reach the sweep's summary. A real SQLite MLflow store; only its availability is
switched off for a while (its writes raise, as a down server's do after MLflow's retries)."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tailsweep.analysis.summary import tracking_summary
from tailsweep.trainables import _tracking
from tailsweep.trainables._tracking import LATE_KEY, UNWRITTEN_KEY, MlflowMetricsCallback


class Refusing:
    """The real client, whose writes fail while ``down`` is set."""

    def __init__(self, client):
        self.client, self.down = client, False

    def log_batch(self, *args, **kwargs):
        if self.down:
            raise ConnectionError("the store is down")
        return self.client.log_batch(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture
def run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("t")
    return uri, client, client.create_run(exp).info.run_id


def _report(cb, epoch, final=False):
    metrics = {"epoch": epoch, "train/loss": 1.0 / epoch, "val/macro_ap": 0.1 * epoch}
    if final:
        metrics["test/macro_ap"] = 0.5
    cb.after_report(None, [metrics], None)
    return metrics


def test_refused_epochs_are_written_later_in_order_and_counted(run, monkeypatch):
    uri, client, run_id = run
    cb = MlflowMetricsCallback(uri, run_id)
    cb._client = store = Refusing(cb._get_client())
    assert _report(cb, 1)[LATE_KEY] == 0
    store.down = True
    m2, m3 = _report(cb, 2), _report(cb, 3)
    assert m2[UNWRITTEN_KEY] == 2 and m3[UNWRITTEN_KEY] == 4  # two points per epoch kept
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1]
    store.down = False
    m4 = _report(cb, 4)
    assert m4[LATE_KEY] == 4 and m4[UNWRITTEN_KEY] == 0
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2, 3, 4]  # each once
    assert tracking_summary([{"trial": "t", "tracking_late": 4, "tracking_unwritten": 0}]) == (
        "MLflow: 4 metric point(s) were written late (the store refused writes for a while); none lost"
    )


def test_the_last_report_waits_for_the_store_then_says_what_was_never_written(run, monkeypatch):
    uri, client, run_id = run
    monkeypatch.setattr(_tracking, "FINAL_WAIT_S", 0.1)
    cb = MlflowMetricsCallback(uri, run_id)
    cb._client = store = Refusing(cb._get_client())
    store.down = True
    final = _report(cb, 1, final=True)
    assert final[UNWRITTEN_KEY] == 3 and final[LATE_KEY] == 0
    text = tracking_summary([{"trial": "focal seed=0", "tracking_late": 0, "tracking_unwritten": 3}])
    assert "3 never written: focal seed=0 (3)" in text
    assert tracking_summary([{"trial": "x", "tracking_late": 0, "tracking_unwritten": 0}]) is None


# --- restarts of the worker group are recorded on the run --------------------------------------------
class _Group:
    """What the callback reads of a started worker group: each worker's node."""

    def __init__(self, *nodes):
        from types import SimpleNamespace

        self.workers = [SimpleNamespace(metadata=SimpleNamespace(node_id=n, node_ip=ip)) for n, ip in nodes]

    def get_workers(self):
        return self.workers


def _restart(cb, error):
    from ray.train.v2._internal.execution.controller.state import RestartingState, RunningState

    cb.restart_watch().after_controller_state_update(RunningState(), RestartingState(training_failed_error=error))


def test_a_restart_is_recorded_with_its_cause_and_the_epoch_it_resumed_at(run, monkeypatch):
    from ray.train import UserCallback
    from ray.train.v2.api.exceptions import WorkerGroupError

    from tailsweep.analysis.tags import RETRIES_TAG, RETRY_TAG
    from tailsweep.trainables._tracking import RETRIES_KEY

    uri, client, run_id = run
    cb = MlflowMetricsCallback(uri, run_id)
    # Ray Train gives a UserCallback only its own hooks: the group's starts and restarts reach it by its watch
    assert not isinstance(cb.restart_watch(), UserCallback)
    cb.restart_watch().after_worker_group_start(_Group(("3f2a9c1d5e7b00aa", "10.0.0.7")))
    assert _report(cb, 1)[RETRIES_KEY] == 0
    lost: list[str] = []
    monkeypatch.setattr(_tracking, "lost_nodes", lambda nodes: [n for n in nodes if n in lost])
    lost.append("3f2a9c1d5e7b00aa")  # the node went away mid-epoch 2
    _restart(cb, WorkerGroupError("rank 0 unreachable", {0: ConnectionError("reset")}))
    tags = client.get_run(run_id).data.tags
    assert tags[RETRIES_TAG] == "1" and tags[RETRY_TAG] == "restart 1: node 3f2a9c1d5e7b (10.0.0.7) lost"
    cb.restart_watch().after_worker_group_start(_Group(("b0b0b0b0b0b0b0b0", "10.0.0.9")))
    assert _report(cb, 2)[RETRIES_KEY] == 1  # the first report after the restart: epoch 2, from epoch 1's checkpoint
    assert client.get_run(run_id).data.tags[RETRY_TAG] == (
        "restart 1: node 3f2a9c1d5e7b (10.0.0.7) lost; resumed at epoch 2"
    )
    _restart(cb, WorkerGroupError("rank 0 failed", {0: ValueError("x")}))  # on a live node: the error says why
    _report(cb, 1)  # no checkpoint to resume from: epoch 1 again (not logged twice)
    tags = client.get_run(run_id).data.tags
    assert tags[RETRIES_TAG] == "2"
    assert tags[RETRY_TAG].split(" | ")[1] == ("restart 2: rank 0: ValueError: x; resumed at epoch 1")
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2]
    # a later controller of the same run (Tuner.restore) counts on from what the run holds
    again = MlflowMetricsCallback(uri, run_id)
    assert _report(again, 3)[RETRIES_KEY] == 2


def test_the_summary_names_the_retried_trials():
    from tailsweep.analysis.summary import retry_summary

    assert retry_summary([{"trial": "focal seed=0", "retries": 0}]) is None
    line = retry_summary([{"trial": "focal seed=0", "retries": 1}, {"trial": "x seed=1", "retries": 2}])
    assert line.startswith("retried: focal seed=0 (1 restart), x seed=1 (2 restarts) -- ")
