"""The driver's MLflow tracking (orchestrator/_tracking.py) on a real MLflow sqlite store, without Ray or a sweep:
parent and child runs found again rather than duplicated, their statuses from Tune's trial events, and the
closing of a sweep. The sweeps of tests/integration/ check the same runs end to end."""

from __future__ import annotations

import pickle
import uuid

import pytest

from tailsweep.orchestrator._plan import plan_trials
from tailsweep.orchestrator._tracking import (
    CONFIG_TAG,
    KIND_TAG,
    MAX_PARAM,
    PARENT_TAG,
    STARTED_TAG,
    SWEEP_TAG,
    TRIAL_KEY_TAG,
    TRIAL_TAG,
    ChildRuns,
    RunStatusCallback,
    Tracking,
    _param_value,
    trial_key,
)
from tailsweep.orchestrator.spec import load_spec

EPOCHS = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One sqlite store for the module (its schema migration takes seconds); each test has its own sweep id."""
    root = tmp_path_factory.mktemp("mlflow")
    return Tracking(f"sqlite:///{root}/mlflow.db", "tracking-tests", root / "artifacts")


@pytest.fixture
def sweep(store):
    """A fresh sweep: (its id, its parent run id)."""
    sweep_id = f"s-{uuid.uuid4().hex[:8]}"
    parent = store.get_or_create_run({SWEEP_TAG: sweep_id, KIND_TAG: "sweep"}, name=sweep_id)
    return sweep_id, parent


def trials(*overrides):
    spec = load_spec(None, ["schemes=[unweighted, focal]", "seeds=[0, 1]", *overrides])
    return plan_trials(spec)


def status(store, run_id):
    return store.client.get_run(run_id).info.status


def test_the_parent_run_is_found_again_and_runs_again(store):
    match = {SWEEP_TAG: "resumed", KIND_TAG: "sweep"}
    params = {"spec": {"train": {"epochs": 2}}, "long": "x" * (MAX_PARAM + 100)}
    first = store.get_or_create_run(match, name="resumed", tags={"dataset": "d"}, params=params)
    run = store.client.get_run(first)
    assert run.data.params["spec.train.epochs"] == "2" and len(run.data.params["long"]) == MAX_PARAM  # flattened, cut
    assert run.data.tags["dataset"] == "d" and run.data.tags[SWEEP_TAG] == "resumed"
    store.end(first, "KILLED")  # the interrupted sweep
    again = store.get_or_create_run(match, name="resumed", params=params)
    assert again == first and status(store, first) == "RUNNING"  # the same run, running again
    assert len(store.client.search_runs([store.experiment_id], f"tags.`{SWEEP_TAG}` = 'resumed'")) == 1


def test_child_runs_are_planned_scheduled_with_the_trials_config_and_never_duplicated(store, sweep):
    sweep_id, parent = sweep
    planned = trials()
    ids = store.plan_child_runs(parent, sweep_id, planned)
    assert len(set(ids)) == len(planned) == 4
    for trial, run_id in zip(planned, ids, strict=True):
        run = store.client.get_run(run_id)
        assert run.info.status == "SCHEDULED" and run.info.run_name == trial.label
        assert run.data.tags[TRIAL_KEY_TAG] == trial_key(trial) and run.data.tags[PARENT_TAG] == parent
        assert run.data.tags["scheme"] == trial.scheme and run.data.tags["seed"] == str(trial.seed)
        assert run.data.params == {k: _param_value(v) for k, v in trial.params().items()}
    assert store.plan_child_runs(parent, sweep_id, trials()) == ids  # a resume plans the same runs
    assert len(store.children(parent)) == 4


def test_a_trial_suggested_again_with_another_config_replaces_its_run(store, sweep):
    sweep_id, parent = sweep
    first = trials("train.lr=0.001")[0]
    old = ChildRuns(store, parent, sweep_id)(first)
    changed = trials("train.lr=0.01")[0]
    assert trial_key(changed) == trial_key(first)
    new = ChildRuns(store, parent, sweep_id)(changed)  # no `existing` map: looked up by its tags
    assert new != old and store.client.get_run(old).info.lifecycle_stage == "deleted"
    kept = store.children(parent)
    assert [r.info.run_id for r in kept] == [new] and kept[0].data.params["train.lr"] == "0.01"
    assert kept[0].data.tags[CONFIG_TAG] != store.client.get_run(old).data.tags[CONFIG_TAG]


def test_closing_a_sweep_kills_what_was_left_open_and_keeps_what_ended(store, sweep):
    sweep_id, parent = sweep
    done, running, scheduled, failed = store.plan_child_runs(parent, sweep_id, trials())
    store.end(done, "FINISHED")
    store.client.update_run(running, status="RUNNING")
    store.end(failed, "FAILED")
    store.close_sweep(parent, "KILLED")
    assert [status(store, r) for r in (done, running, scheduled, failed)] == ["FINISHED", "KILLED", "KILLED", "FAILED"]
    assert "stopped_early" in store.client.get_run(scheduled).data.tags
    assert "stopped_early" not in store.client.get_run(done).data.tags
    assert status(store, parent) == "KILLED"


def test_end_only_if_running_leaves_an_ended_run_alone(store, sweep):
    sweep_id, parent = sweep
    run_id = store.plan_child_runs(parent, sweep_id, trials()[:1])[0]
    store.end(run_id, "FAILED", only_if_running=True)  # SCHEDULED: not running, left as it is
    assert status(store, run_id) == "SCHEDULED"
    store.client.update_run(run_id, status="RUNNING")
    store.end(run_id, "FAILED", only_if_running=True)
    assert status(store, run_id) == "FAILED"


def test_tracking_pickles_without_its_client_and_reconnects(store):
    assert store.client is not None  # a live client (not picklable in general): dropped from the state
    copy = pickle.loads(pickle.dumps(store))
    assert copy._client is None and copy.uri == store.uri
    assert copy.experiment_id == store.experiment_id  # the same experiment, found by name


def _tune_trial(trial, run_id, trial_id, epoch=None):
    """A real Tune ``Trial`` (stub: no trainable registered) with the config the sweep gives it."""
    from ray.tune.experiment import Trial

    t = Trial("run_trial", config={"trial": trial.model_copy(update={"run_id": run_id}).model_dump(mode="json")},
              trial_id=trial_id, stub=True)  # fmt: skip
    if epoch is not None:
        t.run_metadata.last_result = {"epoch": epoch}
    return t


def test_the_status_callback_writes_each_ending(store, sweep):
    sweep_id, parent = sweep
    planned = trials()
    full, cut, failed, _ = store.plan_child_runs(parent, sweep_id, planned)
    cb = RunStatusCallback(store, EPOCHS)
    events = [(full, "t_1", EPOCHS), (cut, "t_2", 1), (failed, "t_3", None)]
    tune_trials = {rid: _tune_trial(planned[i], rid, tid, ep) for i, (rid, tid, ep) in enumerate(events)}
    for run_id, trial in tune_trials.items():
        cb.on_trial_start(0, [], trial)
        tags = store.client.get_run(run_id).data.tags
        assert status(store, run_id) == "RUNNING" and tags[TRIAL_TAG] == trial.trial_id and float(tags[STARTED_TAG]) > 0
    cb.on_trial_complete(0, [], tune_trials[full])
    cb.on_trial_complete(0, [], tune_trials[cut])
    cb.on_trial_error(0, [], tune_trials[failed])
    assert [status(store, r) for r in (full, cut, failed)] == ["FINISHED", "KILLED", "FAILED"]
    assert store.client.get_run(cut).data.tags["stopped_early"] == "stopped by the scheduler after epoch 1"
    assert "no error file found" in store.client.get_run(failed).data.tags["error"]


def test_a_trial_with_its_test_metrics_logged_is_finished_even_if_stopped_before_its_last_epoch(store, sweep):
    """A separate Train controller can finish the last epoch while ASHA's stop is in flight: MLflow decides."""
    sweep_id, parent = sweep
    planned = trials()
    run_id = store.plan_child_runs(parent, sweep_id, planned[:1])[0]
    store.client.log_metric(run_id, "test/micro_auprc", 0.5)
    RunStatusCallback(store, EPOCHS).on_trial_complete(0, [], _tune_trial(planned[0], run_id, "t_9", 1))
    assert status(store, run_id) == "FINISHED"


def test_the_status_callback_survives_a_tracking_server_that_is_down(monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    down = Tracking("http://127.0.0.1:9", "x")  # nothing listens on port 9
    trial = _tune_trial(trials()[0], "r0", "t_0", EPOCHS)
    RunStatusCallback(down, EPOCHS).on_trial_complete(0, [], trial)  # must not raise into Tune's loop
    assert "MLflow: could not update a trial run" in caplog.text
