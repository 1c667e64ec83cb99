"""The per-trial driver (orchestrator/_trial.py) without Tune: its context and the configs it builds the trial's
``TorchTrainer`` from. ``run_trial`` itself needs a Tune trial (its id) and a Ray cluster: the sweeps of
tests/integration/ run it."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

from tailsweep.config import TrialConfig
from tailsweep.orchestrator._plan import plan_trials
from tailsweep.orchestrator._trial import TrialContext, loop_config, run_config, scaling_config
from tailsweep.orchestrator.spec import load_spec


def context(**kw) -> TrialContext:
    base = dict(
        tracking_uri="sqlite:///mlflow.db",
        storage_path="/storage",
        stats={"num_labels": 4, "counts": [5, 3, 2, 1]},
        num_workers=2,
        cpus_per_worker=1.5,
        use_gpu=False,
        max_failures=3,
    )
    return TrialContext(**{**base, **kw})


def test_the_context_is_frozen_lean_by_default_and_survives_pickling():
    ctx = context()
    assert ctx.lean and not ctx.reuse_workers  # the lean path, no kept workers unless the sweep asks
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.num_workers = 4  # shared by every trial of the sweep: no trial may change it for the others
    assert pickle.loads(pickle.dumps(ctx)) == ctx  # how tune.with_parameters ships it


def test_every_worker_gets_the_trial_as_json_and_validates_the_same_trial():
    trial = plan_trials(load_spec(None, ["schemes=[{name: effective_number, params: {beta: 0.99}}]", "seeds=[3]"]))[0]
    trial = trial.model_copy(update={"run_id": "abc123"})
    ctx = context()
    cfg = loop_config(trial, ctx)
    assert json.loads(json.dumps(cfg)) == cfg  # plain JSON: Ray ships it to every worker
    again = TrialConfig.of(cfg)  # what the worker does with it
    assert again == trial and again.run_id == "abc123" and again.scheme_params["beta"] == 0.99
    assert cfg["stats"] is ctx.stats


def test_a_cpu_trial_asks_for_its_cpus_and_no_gpu():
    sc = scaling_config(context())
    assert sc.num_workers == 2 and not sc.use_gpu
    assert sc.resources_per_worker == {"CPU": 1.5}
    assert sc.total_resources == {"CPU": 3.0}  # what the placement group reserves


def test_a_gpu_trial_asks_for_one_gpu_per_worker():
    sc = scaling_config(context(use_gpu=True, num_workers=2, cpus_per_worker=4))
    assert sc.use_gpu and sc.resources_per_worker == {"CPU": 4, "GPU": 1}
    assert sc.total_resources == {"CPU": 8.0, "GPU": 2.0}


def test_one_worker_trials_can_share_a_gpu():
    sc = scaling_config(context(use_gpu=True, num_workers=1, cpus_per_worker=2, gpus_per_worker=0.5))
    assert sc.resources_per_worker == {"CPU": 2, "GPU": 0.5}  # two such trials fit on one GPU
    assert scaling_config(context(gpus_per_worker=0.5)).resources_per_worker == {"CPU": 1.5}  # no GPU asked for


def test_the_train_run_is_named_after_the_trial_so_a_resume_finds_its_checkpoint():
    from tailsweep.orchestrator._lean.inline import lean_callbacks
    from tailsweep.trainables._tracking import MlflowMetricsCallback

    ctx = context(max_failures=2, storage_path="/somewhere/runs")
    logger = MlflowMetricsCallback(ctx.tracking_uri, "run-1")
    reports = [logger.restart_watch(), *lean_callbacks()]
    rc = run_config(ctx, "a1b2_00003", [logger, *reports])
    assert rc.name == "train-a1b2_00003" == run_config(ctx, "a1b2_00003", []).name  # the same name after a restore
    assert rc.name != run_config(ctx, "a1b2_00004", []).name
    assert rc.storage_path == "/somewhere/runs"
    assert rc.callbacks == [logger, *reports]  # the metrics logger first: it sees each report before Tune
    assert rc.checkpoint_config.num_to_keep == 1
    assert rc.failure_config.max_failures == 2
