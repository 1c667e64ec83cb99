"""The sweep's named steps (orchestrator/_sweep.py) that run without Ray: the resources it plans against, the one
validation (``prepare``), opening and closing a sweep in a real MLflow sqlite store, the trial context, the
scheduler, and finding a sweep to resume. tests/integration/test_sweep.py runs a whole sweep end to end;
plan_resources, lean_or_plain, LocalRayClaim and the Ctrl-C handler have tests of their own (test_plan.py,
test_lean.py, test_bad_inputs.py)."""

from __future__ import annotations

import io
import os

import pytest
from rich.console import Console

from tailsweep.orchestrator._sweep import (
    OpenSweep,
    SweepError,
    _close,
    _open_sweep,
    _scheduler,
    _trial_context,
    cluster_view,
    find_resumable,
    local_resources,
    prepare,
    resume_override_problems,
    sweep_shape,
)
from tailsweep.orchestrator._tracking import KIND_TAG, SWEEP_TAG
from tailsweep.orchestrator.spec import SpecError, load_spec


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch):
    """Every step here runs as on a machine with no Ray to join: nothing may start one."""
    import ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not ray.is_initialized()
    yield
    assert not ray.is_initialized()


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def spec_on(table, tmp_path, *overrides):
    return load_spec(
        None,
        [
            f"data.path={table.root}",
            f"tracking.dir={tmp_path / 'runs'}",
            "model.backbone=mlp",
            "model.hidden=8",
            "train.epochs=1",
            "schemes=[unweighted, focal]",
            "seeds=[0, 1]",
            *overrides,
        ],
    )


def test_local_resources_are_this_process_cpus_and_gpus():
    import torch

    r = local_resources()
    assert r == {"CPU": float(len(os.sched_getaffinity(0))), "GPU": float(torch.cuda.device_count())}


def test_without_a_cluster_to_join_the_view_is_the_local_machine_and_nothing_starts():
    assert cluster_view(load_spec()) == (local_resources(), None)  # no autoscaling shape either


def test_prepare_plans_every_trial_against_the_local_machine(features_table, tmp_path):
    plan = prepare(spec_on(features_table, tmp_path), quiet())
    assert plan.total == len(plan.trials) == 4 and plan.table.root == features_table.root
    assert plan.cluster == local_resources()
    assert 1 <= plan.resources["max_concurrent_trials"] <= plan.cluster["CPU"]
    assert sweep_shape(plan.spec) == "2 settings x 2 seeds"
    assert not (tmp_path / "runs").exists()  # validation writes nothing


def test_a_demo_spec_that_cannot_run_generates_no_demo_table(tmp_path):
    cpus = int(local_resources()["CPU"])
    spec = load_spec(None, [f"tracking.dir={tmp_path}", f"resources.workers_per_trial={cpus + 1}"])
    with pytest.raises(SpecError, match="resources: a trial needs"):
        prepare(spec, quiet())
    assert not spec.data_path.exists() and not (tmp_path / "data").exists()


def test_opening_a_sweep_writes_its_folder_and_parent_run_and_a_resume_finds_the_same_run(features_table, tmp_path):
    plan = prepare(spec_on(features_table, tmp_path), quiet())
    opened = _open_sweep(plan, "sw-1", resume=False)
    assert opened.report_dir == plan.spec.root / "sweeps" / "sw-1"
    assert {p.name for p in opened.report_dir.iterdir()} == {"spec.yaml", "label_stats.csv"}
    client = opened.tracking.client
    run = client.get_run(opened.parent_run_id)
    assert run.info.status == "RUNNING" and run.data.tags[SWEEP_TAG] == "sw-1" and run.data.tags[KIND_TAG] == "sweep"
    assert run.data.params["num_trials"] == "4" and run.data.params["dataset_digest"] == features_table.digest()
    assert opened.digest == features_table.digest()
    assert {a.path for a in client.list_artifacts(opened.parent_run_id)} == {"spec.yaml", "label_stats.csv"}
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == [features_table.name]
    spec_text = (opened.report_dir / "spec.yaml").read_text()
    assert str(features_table.root) in spec_text  # resolved: resumable from another working directory

    _close(opened, "KILLED", started=False)  # interrupted
    assert client.get_run(opened.parent_run_id).info.status == "KILLED"
    again = _open_sweep(plan, "sw-1", resume=True)
    assert again.parent_run_id == opened.parent_run_id
    assert client.get_run(again.parent_run_id).info.status == "RUNNING"
    assert (again.report_dir / "spec.yaml").read_text() == spec_text  # the stored spec is kept as it started
    _close(again, "FINISHED", started=False)
    assert client.get_run(again.parent_run_id).info.status == "FINISHED"


def test_the_trial_context_carries_the_plan(features_table, tmp_path):
    from tailsweep.orchestrator._tracking import Tracking

    plan = prepare(spec_on(features_table, tmp_path, "train.max_failures=2", "resources.cpus_per_worker=1"), quiet())
    opened = OpenSweep("sw", tmp_path, Tracking("sqlite:///x.db"), "parent", "digest")
    ctx = _trial_context(plan, opened, reuse=True)
    assert ctx.tracking_uri == "sqlite:///x.db" and ctx.storage_path == str(plan.spec.storage_path)
    assert ctx.stats == plan.stats.to_dict() and ctx.max_failures == 2 and ctx.reuse_workers
    assert ctx.num_workers == plan.spec.resources.workers_per_trial and ctx.cpus_per_worker == 1
    assert ctx.use_gpu == plan.resources["use_gpu"] and ctx.lean == plan.spec.resources.lean
    assert ctx.gpus_per_worker == (plan.resources["gpus_per_worker"] or 1.0)


def test_the_scheduler_follows_the_spec_and_never_waits_past_the_last_epoch():
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    assert isinstance(_scheduler(load_spec()), FIFOScheduler)
    # a grace period past the last epoch is cut to it (Ray refuses grace_period > max_t)
    asha = _scheduler(load_spec(None, ["scheduler.name=asha", "scheduler.grace_period=5", "train.epochs=3"]))
    assert isinstance(asha, ASHAScheduler)
    assert asha._max_t == 3 and asha._time_attr == "epoch"  # rungs counted in reported epochs


def test_a_resume_takes_only_overrides_that_keep_the_trials():
    ok = ["tracking.dir=/x", "tracking.uri=http://h:5000", "tracking.storage=s3://b/p", "resources.cpus_per_worker=2"]
    assert resume_override_problems(ok) == []
    problems = resume_override_problems(["train.lr=0.1", "resources.lean=false", "seeds=[5]"])
    assert len(problems) == 2
    assert problems[0].startswith("--set train.lr: a resumed sweep keeps the settings it started with")
    assert problems[1].startswith("--set seeds:")


def _stored_sweep(root, sweep_id, features_table, tmp_path):
    from tailsweep.orchestrator.spec import spec_to_yaml

    folder = root / "sweeps" / sweep_id
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(spec_to_yaml(spec_on(features_table, tmp_path).resolved()))
    return folder


def test_finding_a_sweep_to_resume_by_id_prefix_or_latest(features_table, tmp_path):
    root = tmp_path / "elsewhere"
    with pytest.raises(SweepError, match="no sweeps to resume under"):
        find_resumable(root, "latest")
    old = _stored_sweep(root, "demo-20260101-000000", features_table, tmp_path)
    new = _stored_sweep(root, "demo-20260102-000000", features_table, tmp_path)
    os.utime(old / "spec.yaml", (1, 1))  # the older one by modification time
    with pytest.raises(SweepError, match="matches several sweeps") as err:
        find_resumable(root, "demo-2026010")
    assert "demo-20260101-000000, demo-20260102-000000" in str(err.value)
    with pytest.raises(SweepError, match="matches no sweep"):
        find_resumable(root, "other")
    # found, but it never reached Tune: refused before any data, MLflow or Ray work, naming the path
    with pytest.raises(SweepError, match=f"sweep {new.name} has no Tune state") as err:
        find_resumable(root, "latest")
    assert str(root.resolve() / "ray") in str(err.value)  # tracking.dir pinned to where the sweep was found
    with pytest.raises(SweepError, match=f"sweep {old.name} has no Tune state"):
        find_resumable(root, "demo-20260101")
