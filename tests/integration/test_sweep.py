"""Real sweeps: a local Ray cluster, Ray Tune + Ray Train, a real SQLite MLflow store."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import ray
from mlflow.tracking import MlflowClient
from ray import tune

from tailsweep.orchestrator._lean.inline import (
    PLACEMENT_GROUP_KEY,
    PlacementGroupSweeper,
    WorkerReuse,
    _kv,
    _Parked,
)
from tailsweep.orchestrator._sweep import run_sweep
from tailsweep.orchestrator._tracking import PARENT_TAG, SWEEP_TAG
from tailsweep.orchestrator.spec import load_spec
from tailsweep.trainables.hooks import FAULT_ENV, TIMESTAMPS_ENV
from tests.conftest import make_features_table

pytestmark = pytest.mark.integration


def _spec(tmp_path, table, *extra):
    return load_spec(
        None,
        [
            f"data.path={table.root}",
            "model.backbone=mlp",
            "model.hidden=16",
            f"tracking.dir={tmp_path / 'runs'}",
            "train.batch_size=32",
            *extra,
        ],
    )


def _runs(spec, result):
    client = MlflowClient(spec.tracking_uri)
    runs = client.search_runs([result.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get(SWEEP_TAG) == result.sweep_id and PARENT_TAG not in r.data.tags]
    children = [r for r in runs if r.data.tags.get(PARENT_TAG) == result.parent_run_id]
    return client, parents, children


class _PlacementGroups(tune.Callback):
    """Each trial's worker-group placement group (named in its results) and its state when the trial ends."""

    def __init__(self):
        self.named, self.at_end = {}, {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.named.setdefault(trial.trial_id, set()).add(result.get(PLACEMENT_GROUP_KEY))

    def on_experiment_end(self, trials, **info):
        import time

        from ray.util.placement_group import placement_group_table

        deadline = time.monotonic() + 15  # the last trial's process may still be shutting its group down
        for trial_id, pgs in self.named.items():
            (pg,) = pgs
            while (
                state := placement_group_table().get(pg, {}).get("state")
            ) != "REMOVED" and time.monotonic() < deadline:
                time.sleep(0.2)
            self.at_end[trial_id] = state


class _WorkerProcesses(tune.Callback):
    """The Train worker process (its start time) behind each result, per trial."""

    def __init__(self):
        self.seen: dict[str, list[float]] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.seen.setdefault(trial.config["trial"]["scheme"], []).append(result["time/worker_process_start"])


class _SyncActors(tune.Callback):
    """How many Train synchronisation actors the sweep created (alive or dead), from the GCS actor table."""

    created: int | None = None

    def on_experiment_end(self, trials, **info):
        from ray._private.state import actors

        self.created = sum(a["ActorClassName"].endswith("SynchronizationActor") for a in actors().values())


class _LocalRay(tune.Callback):
    """What the local Ray that the sweep started runs: its actors' classes and its raylet's command line."""

    actor_classes: set | None = None
    raylet_args: str | None = None
    process_types: set | None = None

    def on_experiment_end(self, trials, **info):
        from ray._private import ray_constants
        from ray._private.state import actors
        from ray._private.worker import _global_node

        self.actor_classes = {a["ActorClassName"] for a in actors().values()}
        (raylet,) = _global_node.all_processes[ray_constants.PROCESS_TYPE_RAYLET]
        self.raylet_args = " ".join(raylet.process.args)
        self.process_types = {kind for kind, procs in _global_node.all_processes.items() if procs}


def test_sweep_statuses_metrics_and_artifacts(tmp_path):
    table = make_features_table(tmp_path / "t", n=(200, 60, 60))
    spec = _spec(
        tmp_path,
        table,
        "schemes=[unweighted, inverse_frequency, focal, effective_number]",
        "seeds=[0]",
        "train.epochs=3",
        "scheduler.name=asha",
        "scheduler.grace_period=1",
    )
    groups, local = _PlacementGroups(), _LocalRay()
    os.environ[FAULT_ENV] = "raise@1:focal"  # the focal trial fails before its first report
    try:
        result = run_sweep(spec, callbacks=[groups, local])
    finally:
        del os.environ[FAULT_ENV]
    # a local lean Ray: workers start through tailsweep's launcher, no autoscaler coordinator is started
    assert "tailsweep/orchestrator/_lean/setup_worker.py" in local.raylet_args
    assert "RayTrainWorker" in local.actor_classes
    # not verbose: nothing prints worker output, so no log monitor tails it (orchestrator/_sweep.py)
    assert "raylet" in local.process_types and "log_monitor" not in local.process_types, local.process_types
    assert not any("AutoscalingCoordinator" in c for c in local.actor_classes), local.actor_classes
    # lean path: every result names its trial's placement group; a finished or ASHA-stopped trial's
    # group is removed (by its own process, no PlacementGroupCleaner actor) before the sweep ends
    assert groups.named and all(None not in pgs for pgs in groups.named.values())
    assert groups.at_end and set(groups.at_end.values()) == {"REMOVED"}
    client, parents, children = _runs(spec, result)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 4  # one child per trial, none duplicated
    by_scheme = {r.data.tags["scheme"]: r for r in children}
    assert set(by_scheme) == {"unweighted", "inverse_frequency", "focal", "effective_number"}
    statuses = {r.info.status for r in children}
    assert "RUNNING" not in statuses
    # the label table is each run's MLflow dataset input (the runs table's Dataset column), the parent's too
    for run in [*children, *parents]:
        inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
        contexts = {t.value for i in inputs for t in i.tags if t.key == "mlflow.data.context"}
        assert {i.dataset.name for i in inputs} == {"tiny-features"}
        assert contexts == {"train: train; select: val; test: test"}
        assert {i.dataset.digest for i in inputs} == {table.digest()[:12]}

    failed = by_scheme["focal"]
    assert failed.info.status == "FAILED"
    assert "injected failure at epoch 1" in failed.data.tags["error"]
    assert client.get_metric_history(failed.info.run_id, "val/macro_ap") == []

    for scheme in ("unweighted", "inverse_frequency", "effective_number"):
        run = by_scheme[scheme]
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/macro_ap")]
        if run.info.status == "FINISHED":
            assert steps == [1, 2, 3]  # every epoch exactly once
            assert "test/macro_f1" in run.data.metrics and "test/micro_auprc" in run.data.metrics
            arts = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert {"per_label_test.csv", "per_label_val.csv", "weights.json"} <= arts
        else:  # stopped by ASHA
            assert run.info.status == "KILLED" and "stopped_early" in run.data.tags
            # every logged epoch exactly once, and none after the stop: with the controller in the trial's
            # process (lean path), the report ASHA stops on is the last one the controller handles
            assert steps == list(range(1, len(steps) + 1)) and len(steps) < 3
    assert run.data.params["scheme"] == scheme and "train/loss" in run.data.metrics
    assert any(r.info.status == "FINISHED" for r in children)
    parent_arts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"summary.md", "trials.csv", "label_stats.csv", "spec.yaml"} <= parent_arts
    assert not (result.report_dir / "report.md").exists()  # one word for each thing: summary.md, report/report.md
    report = (result.report_dir / "summary.md").read_text()
    assert "unweighted" in report and "test macro-F1" in report
    # the full report still works with a failed (and maybe early-stopped) trial, and says what is missing
    assert {"report/report.md", "report/report.html", "report/per_label_f1.png"} <= {
        a.path for a in client.list_artifacts(result.parent_run_id, "report")
    }
    full = (result.report_dir / "report" / "report.md").read_text()
    # the verdict first, and as the parent run's description (the MLflow UI shows it); settings by their plan group
    assert [x for x in full.splitlines() if x.startswith("## ")][0] == "## Verdict"
    note = client.get_run(result.parent_run_id).data.tags["mlflow.note.content"]
    assert note.startswith("## Verdict") and "Not covered:" in note
    assert all(r.info.run_name == f"{r.data.params['setting']} seed={r.data.params['seed']}" for r in children)
    missing = full.split("## What is missing")[1]
    assert "focal" in missing and "FAILED" in missing and "injected failure at epoch 1" in missing
    assert "## Against `unweighted`" in full
    # the kept test predictions reach the report: the paired bootstrap over test rows and the per-label view
    # (when ASHA let the baseline and another setting finish; which ones it stops varies from run to run)
    assert "## Against `unweighted` on the test rows (paired bootstrap" in full
    finished = {s for s, r in by_scheme.items() if r.info.status == "FINISHED"}
    if "unweighted" in finished and len(finished) > 1:
        boot = full.split("on the test rows (paired bootstrap, 1000 resamples)")[1]
        rows = [line for line in boot.split("## ")[0].splitlines() if line.startswith("| ") and "] p " in line]
        assert rows and "What it does not" in boot, boot  # each complete setting: Δ [interval] p
        assert "## Per label against `unweighted`" in full
        assert (result.report_dir / "report" / "delta_ap_per_label.png").is_file()
    for run in children:
        if run.info.status == "FINISHED":  # the report's numbers are the runs' numbers
            mean = f"{run.data.metrics['test/macro_ap']:.3f} (1 seed)"
            assert mean in full


def test_two_workers_per_trial_on_two_cpus(tmp_path, monkeypatch):
    monkeypatch.setenv(TIMESTAMPS_ENV, "1")  # the worker processes' start times, per result
    """DDP over gloo with a 2-worker group per trial: no worker-group deadlock on a 2-core machine; the
    second trial's group starts on the first one's processes (a new process group on kept workers)."""
    table = make_features_table(tmp_path / "t", n=(120, 40, 40))
    spec = _spec(
        tmp_path,
        table,
        "schemes=[effective_number]",
        "seeds=[0, 1]",
        "train.epochs=2",
        "resources.workers_per_trial=2",
        "resources.cpus_per_worker=1",
    )
    procs, sync = _WorkerProcesses(), _SyncActors()
    result = run_sweep(spec, callbacks=[procs, sync])
    client, parents, children = _runs(spec, result)
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    for run in children:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/micro_auprc")]
        assert steps == [1, 2]
    assert all(r["status"] == "DONE" and r["test/macro_f1"] is not None for r in result.rows)
    assert len(procs.seen["effective_number"]) == 4 and len(set(procs.seen["effective_number"])) == 1, procs.seen
    # two workers need Train's real barrier: one synchronisation actor, kept for the second trial
    # (orchestrator/_lean/inline.py: SyncActorReuse)
    assert sync.created == 1


def test_launch_ui_serves_the_sweep(tmp_path):
    """`launch ui` starts a real MLflow server on 127.0.0.1 that lists the sweep's parent and children."""
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    table = make_features_table(tmp_path / "t", n=(80, 30, 30))
    spec = _spec(tmp_path, table, "schemes=[unweighted]", "seeds=[0, 1]", "train.epochs=1")
    result = run_sweep(spec)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tailsweep.orchestrator.cli",
            "ui",
            "--dir",
            str(tmp_path / "runs"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        body = json.dumps({"experiment_ids": [result.experiment_id], "max_results": 10}).encode()
        runs = None
        for _ in range(120):
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/runs/search",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                runs = json.load(urllib.request.urlopen(req, timeout=5))["runs"]
                break
            except OSError:
                time.sleep(0.5)
        assert runs is not None, "the MLflow UI did not come up"
        names = sorted(r["info"]["run_name"] for r in runs)
        assert names == sorted([result.sweep_id, "unweighted seed=0", "unweighted seed=1"])
        assert all(r["info"]["status"] == "FINISHED" for r in runs)
    finally:
        import os
        import signal

        proc.send_signal(signal.SIGTERM)  # to `launch ui` alone, as `kill PID` would: it must stop its server too
        try:
            out = proc.communicate(timeout=30)[0]
        finally:
            leftover = []
            for stat in Path("/proc").glob("[0-9]*/stat"):  # anything still in the UI's session
                with contextlib.suppress(OSError, IndexError, ValueError):
                    if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == proc.pid:  # field 6: session id
                        leftover.append(int(stat.parent.name))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    assert f"http://127.0.0.1:{port}/#/experiments/{result.experiment_id}/runs?workflowType=machine_learning" in out
    assert proc.returncode == 0 and leftover == [], leftover
    with socket.socket() as s:  # the port is free again: nothing listens on it (TIME_WAIT connections may stay)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


@pytest.mark.parametrize("checkpoint_every_s", [0, 600], ids=["resume-from-checkpoint", "redo-from-scratch"])
def test_worker_restart_logs_every_epoch_exactly_once(tmp_path, checkpoint_every_s, monkeypatch):
    """A worker process dies mid-trial (lean settings on): the group restarts (from its last
    checkpoint, or from scratch when none was due yet), the trial finishes, and MLflow holds each
    epoch's metrics exactly once -- redone epochs are not logged again."""
    monkeypatch.setenv(TIMESTAMPS_ENV, "1")
    from tailsweep.trainables.hooks import FAULT_ONCE_ENV

    table = make_features_table(tmp_path / "t", n=(160, 40, 40))
    spec = _spec(
        tmp_path,
        table,
        "schemes=[inverse_frequency, unweighted]",
        "seeds=[0]",
        "train.epochs=3",
        "train.max_failures=1",
        f"train.checkpoint_every_s={checkpoint_every_s}",
        "resources.max_concurrent_trials=1",
    )
    assert spec.resources.lean
    os.environ[FAULT_ENV] = "exit@3:inverse_frequency"  # kill the worker process at the start of epoch 3
    os.environ[FAULT_ONCE_ENV] = str(tmp_path / "fault-fired")
    sync, procs = _SyncActors(), _WorkerProcesses()
    try:
        result = run_sweep(spec, callbacks=[sync, procs])
    finally:
        del os.environ[FAULT_ENV], os.environ[FAULT_ONCE_ENV]
    assert (tmp_path / "fault-fired").exists()  # the fault did fire
    client, parents, children = _runs(spec, result)
    assert len(children) == 2 and {r.info.status for r in children} == {"FINISHED"}
    for run in children:
        for key in ("val/macro_ap", "train/loss", "time/train_s"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2, 3], (
                key,
                run.info.run_name,
            )
    assert all(r["status"] == "DONE" and r["test/macro_f1"] is not None for r in result.rows)
    # the restart is on the run and in the rows: a worker process lost on a live node (not a node loss), resumed
    # from the last checkpoint the controller had (epoch 2's, or epoch 1's if its report was not polled yet
    # when the process died), or from scratch
    from tailsweep.analysis.tags import RETRIES_TAG, RETRY_TAG

    tags = {r.data.tags["scheme"]: r.data.tags for r in children}
    assert RETRIES_TAG not in tags["unweighted"] and tags["inverse_frequency"][RETRIES_TAG] == "1"
    note = tags["inverse_frequency"][RETRY_TAG]
    assert note.startswith("restart 1: rank 0: ") and "lost" not in note, note
    assert note.endswith(("resumed at epoch 2", "resumed at epoch 3") if checkpoint_every_s == 0 else "epoch 1"), note
    assert {r["scheme"]: r["retries"] for r in result.rows} == {"inverse_frequency": 1, "unweighted": 0}
    # three one-worker groups (the failed one, its restart, the next trial): no synchronisation actor
    # at all (orchestrator/_lean/inline.py: SoloBarrier answers the reports' barrier in the worker)
    assert sync.created == 0
    # Train worker processes: the failed trial's first, its restart -- kept for the next trial
    # (orchestrator/_lean/inline.py: WorkerReuse), which trains on it without a process start of its own
    restarted = procs.seen["inverse_frequency"][-1]
    assert set(procs.seen["unweighted"]) == {restarted}, procs.seen


def test_streaming_pipeline_with_concurrent_trials_holding_every_cpu(tmp_path):
    """Two concurrent image trials, each holding one of the 2 CPUs, stream from Parquet (Ray Data inside
    Train workers hung in exactly this setting, DESIGN.md): both finish, every epoch logged."""
    from tests.conftest import make_image_table

    table = make_image_table(tmp_path / "img", n=(24, 8, 8))
    spec = _spec(
        tmp_path,
        table,
        "model.backbone=resnet18",
        "model.image_size=16",
        "train.pipeline=stream",
        "train.batch_size=4",
        "train.epochs=2",
        "schemes=[unweighted, inverse_frequency]",
        "seeds=[0]",
        "resources.max_concurrent_trials=2",
    )
    result = run_sweep(spec)
    client, _, children = _runs(spec, result)
    assert sorted(r.info.status for r in children) == ["FINISHED", "FINISHED"]
    for run in children:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val/macro_ap")] == [1, 2]
        # every epoch says how long its steps waited for their batches (issue 29)
        waits = client.get_metric_history(run.info.run_id, "train/input_wait_frac")
        assert [m.step for m in waits] == [1, 2] and all(0.0 <= m.value <= 1.0 for m in waits)


def _assert_cpus_return(n: int) -> None:
    """The raylet returns a removed placement group's CPUs asynchronously: wait up to 10 s for all n."""
    import time

    deadline = time.monotonic() + 10
    while ray.available_resources().get("CPU") != n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ray.available_resources().get("CPU") == n


def test_sweeper_removes_the_placement_group_of_a_trial_whose_process_died():
    """The lean path's stand-in for Train's PlacementGroupCleaner: a placement group outlives the actor
    that created it (Ray keeps it until the job ends); the driver removes it when that trial errors."""
    from types import SimpleNamespace

    from ray.util.placement_group import placement_group, placement_group_table

    @ray.remote(num_cpus=0)
    class Creator:
        def make(self):
            pg = placement_group([{"CPU": 1}])
            ray.get(pg.ready())
            return pg.id.hex()

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        creator = Creator.remote()
        pg = ray.get(creator.make.remote())
        ray.kill(creator)
        assert placement_group_table()[pg]["state"] == "CREATED"  # leaked: its creator is gone
        sweeper, trial = PlacementGroupSweeper(), SimpleNamespace(trial_id="t1")
        sweeper.on_trial_result(0, [], trial, {PLACEMENT_GROUP_KEY: pg})
        sweeper.on_trial_error(0, [], trial)
        assert placement_group_table()[pg]["state"] == "REMOVED"
        _assert_cpus_return(2)
    finally:
        ray.shutdown()


def test_parked_worker_groups_are_kept_for_the_next_trial_and_released_otherwise(monkeypatch):
    """WorkerReuse and the driver's sweeper around a parked group: the next run of the same shape gets
    it; another shape, too many runs, a dead worker or an idle timeout releases it (workers killed,
    placement group removed, the GCS mark gone); the sweeper leaves a parked group to its trial
    process and removes it when the sweep ends."""
    import time
    from types import SimpleNamespace

    from ray.train.v2._internal.execution.worker_group.placement_group_handle import (
        DefaultPlacementGroupHandle,
    )
    from ray.util.placement_group import placement_group, placement_group_table
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    @ray.remote(num_cpus=1)
    class Worker:
        def get_metadata(self):
            return os.getpid()

    def parked_group(key, runs=1):
        pg = placement_group([{"CPU": 1}])
        ray.get(pg.ready())
        actor = Worker.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote()
        ray.get(actor.get_metadata.remote())
        parked = _Parked(key, DefaultPlacementGroupHandle(pg), [SimpleNamespace(actor=actor)], runs)
        _kv("put", parked.pg_hex)
        return parked

    def released(parked):
        state = placement_group_table().get(parked.pg_hex, {}).get("state")
        try:
            ray.get(parked.workers[0].actor.get_metadata.remote(), timeout=10)
            alive = True
        except Exception:
            alive = False
        return state == "REMOVED" and not alive and not _kv("has", parked.pg_hex)

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        reuse = WorkerReuse()
        reuse._parked = a = parked_group(("shape", 1))
        assert reuse.claim(("shape", 1)) is a and not _kv("has", a.pg_hex)  # same shape: handed over
        reuse._parked = a
        assert reuse.claim(("shape", 2)) is None and released(a)  # another shape
        reuse._parked = b = parked_group(("shape", 1), runs=WorkerReuse.MAX_RUNS)
        assert reuse.claim(("shape", 1)) is None and released(b)  # served enough runs
        reuse._parked = c = parked_group(("shape", 1))
        ray.kill(c.workers[0].actor)
        deadline = time.monotonic() + 30  # ray.kill is asynchronous: wait until the actor is gone
        while time.monotonic() < deadline:
            try:
                ray.get(c.workers[0].actor.get_metadata.remote(), timeout=5)
                time.sleep(0.2)
            except Exception:
                break
        assert reuse.claim(("shape", 1)) is None and released(c)  # a worker died while parked
        monkeypatch.setattr(WorkerReuse, "IDLE_S", 0.5)
        d = parked_group(("shape", 1))
        reuse._parked = d
        reuse._expire(d)
        assert reuse._parked is None and released(d)  # left idle
        # a group on GPUs goes as soon as another worker group waits for GPUs (a pending placement group)
        import threading

        from ray.util.placement_group import placement_group, remove_placement_group

        monkeypatch.setattr(WorkerReuse, "IDLE_S", 60.0)
        monkeypatch.setattr(WorkerReuse, "POLL_S", 0.1)
        g = parked_group((1, (("CPU", 1.0), ("GPU", 1.0))))
        reuse._parked = g
        watch = threading.Thread(target=reuse._watch, args=(g,), daemon=True)
        watch.start()
        time.sleep(0.5)
        assert watch.is_alive() and not released(g)  # nobody waits: kept
        waiting = placement_group([{"GPU": 1}])  # no GPU on this Ray: pending for good
        watch.join(timeout=20)
        assert not watch.is_alive() and reuse._parked is None and released(g)
        remove_placement_group(waiting)

        sweeper, trial = PlacementGroupSweeper(), SimpleNamespace(trial_id="t1")
        e = parked_group(("shape", 1))
        sweeper.on_trial_result(0, [], trial, {PLACEMENT_GROUP_KEY: e.pg_hex})
        sweeper.on_trial_complete(0, [], trial)
        assert placement_group_table()[e.pg_hex]["state"] == "CREATED"  # left to its trial process
        sweeper.on_experiment_end([])
        assert released(e)
        _assert_cpus_return(2)
    finally:
        ray.shutdown()


def test_on_another_ray_minor_version_a_sweep_runs_the_plain_path_and_says_so(tmp_path, monkeypatch):
    """The lean path is fenced to the Ray minor version it was tested with: reported as 2.61, Ray's public
    Train V2 path runs the same sweep (a controller actor per trial, Ray's own worker launcher)."""
    import io

    from rich.console import Console

    monkeypatch.setattr(ray, "__version__", "2.61.0")
    table = make_features_table(tmp_path / "t", n=(80, 30, 30))
    out = io.StringIO()
    spec = _spec(tmp_path, table, "schemes=[unweighted, focal]", "seeds=[0]", "train.epochs=2")
    assert spec.resources.lean  # asked for
    result = run_sweep(spec, console=Console(file=out, width=300))
    assert "Ray 2.61.0 is not the version the lean path was tested with" in out.getvalue()
    assert [r["status"] for r in result.rows] == ["DONE", "DONE"]
    _, _, children = _runs(spec, result)
    assert sorted(r.info.status for r in children) == ["FINISHED", "FINISHED"]
    assert all("test/macro_ap" in r.data.metrics for r in children)
