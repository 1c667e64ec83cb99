"""Sweeps on an autoscaling GPU cluster, on Ray's own fake autoscaler (issue 27): no GPU needed.

One fake cluster for the module (tests/integration/fake_autoscaler.py): a CPU head running the real autoscaler,
a GPU node type ``gpu_node`` = {CPU: 2, GPU: 2} at ``min_workers: 0``, and a real MLflow server. The sweeps run
as a cluster's job driver does (``RAY_ADDRESS`` set, the node types in ``TAILSWEEP_NODE_TYPES``); their workers
run with the test-only switch ``TAILSWEEP_TEST_FAKE_GPU=1`` (CPU and gloo where Ray gave them a fake GPU), which
records the CUDA_VISIBLE_DEVICES and Ray GPU ids each worker was given. The cluster starts with no GPU node: each
sweep must ask for its nodes, and they must go once it ends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_features_table
from tests.integration.fake_autoscaler import BIN, FakeAutoscaler
from tests.integration.test_cluster import _free_port, _get, _stop, _wait

pytestmark = pytest.mark.integration


class Cluster:
    def __init__(self, root: Path):
        from tailsweep.trainables._context import FAKE_GPU_ENV, FAKE_GPU_LOG_ENV

        self.root = root
        self.gpu_log = root / "fake-gpus.jsonl"
        self.fake_env = {FAKE_GPU_ENV: "1", FAKE_GPU_LOG_ENV: str(self.gpu_log)}
        self.ray = FakeAutoscaler(root, self.fake_env)
        self.mlflow_port = _free_port()
        self.mlflow: subprocess.Popen | None = None

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def start(self) -> None:
        log = open(self.root / "mlflow.log", "w")  # noqa: SIM115 -- closed with the process
        self.mlflow = subprocess.Popen(  # starts while the head starts
            [str(BIN / "launch"), "mlflow-server", "--port", str(self.mlflow_port), "--dir", str(self.root / "mlf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.head_s = self.ray.start()
        _wait("MLflow server", lambda: _get(self.mlflow_uri + "/health")[0] == 200, timeout=300, procs=[self.mlflow])

    def stop(self) -> None:
        self.ray.stop()
        if self.mlflow is not None:
            _stop([self.mlflow], "", grace_s=3)

    def workers_seen(self) -> list[dict]:
        """One record per Train run of a worker: its trial, process, node, GPU ids, CUDA_VISIBLE_DEVICES, times."""
        if not self.gpu_log.exists():
            return []
        rows = [json.loads(line) for line in self.gpu_log.read_text().splitlines() if line.strip()]
        ends = {(r["pid"], r["start"]): r["end"] for r in rows if "end" in r}
        return [{**r, "end": ends.get((r["pid"], r["start"]))} for r in rows if "end" not in r]


class NodeWatch:
    """Counts the alive GPU nodes every 0.5 s (Ray's GCS, from this process) while a sweep runs."""

    def __init__(self):
        self.counts: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import ray

        while not self._stop.is_set():
            n = sum(1 for x in ray.nodes() if x["Alive"] and x["Resources"].get("GPU"))
            self.counts.append((time.time(), n))
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> int:
        return max((n for _, n in self.counts), default=0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    import ray

    from tailsweep.orchestrator._autoscale import NODE_TYPES_ENV, node_types, types_to_env
    from tailsweep.orchestrator._lean import LEAN_ENV

    c = Cluster(tmp_path_factory.mktemp("gpu-cluster"))
    mp = pytest.MonkeyPatch()
    auth = os.environ.get("RAY_AUTH_MODE")  # joining this no-auth cluster, Ray sets it to 'disabled' in os.environ
    try:
        c.start()
        types, _, cap = node_types(c.ray.config, "fake")
        mp.setenv("RAY_ADDRESS", c.ray.gcs_address)
        mp.setenv(NODE_TYPES_ENV, types_to_env(types, cap))  # what `launch sweep --cluster` hands its job
        for k, v in c.fake_env.items():
            mp.setenv(k, v)
        # joined as the sweep driver joins (its job-wide env: the lean settings and the test-only switch)
        ray.init(address=c.ray.gcs_address, runtime_env={"env_vars": {**LEAN_ENV, **c.fake_env}}, log_to_driver=False)
        make_features_table(c.root / "table", n=(64, 32, 32))
        yield c
    finally:
        ray.shutdown()
        mp.undo()
        if auth is None:  # as it was: a local Ray a later test on this pytest worker starts must not be told otherwise
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = auth
        c.stop()


def _spec(c: Cluster, name: str, **resources) -> Path:
    spec = {
        "name": name,
        "data": {"path": str(c.root / "table")},
        "model": {"backbone": "mlp", "hidden": 16},
        "train": {"epochs": 1, "batch_size": 32, "checkpoint_every_s": 0},
        "schemes": ["unweighted", "inverse_frequency"],
        "seeds": [0],
        "resources": {"use_gpu": True, "node_wait_s": 120, **resources},
        "tracking": {"dir": str(c.root / "runs"), "uri": c.mlflow_uri, "experiment": name},
    }
    path = c.root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _launch(*args: str) -> tuple[int, str]:
    """`launch ...` in a process of its own, as a user (or the cluster's job) runs it, told that this cluster has no
    token auth. Once a local Ray has run in a process (any earlier test on this pytest worker), Ray keeps its token
    mode there and leaves RAY_AUTH_MODE=token in os.environ; a sweep joining this cluster in that mode has every
    trial actor cancelled before it starts (seen in CI). The test process itself keeps its mode: later tests on
    this worker start local Rays with tokens again."""
    run = subprocess.run(
        [sys.executable, "-m", "tailsweep.orchestrator.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200", "RAY_AUTH_MODE": "disabled"},
    )
    return run.returncode, " ".join((run.stdout + run.stderr).split())


def _released(c: Cluster, ended: float, timeout: float = 60) -> float:
    """Seconds from the sweep's end until no GPU node is left (the autoscaler's idle timeout, 3 s here)."""
    _wait("GPU nodes released", lambda: not c.ray.gpu_nodes(), timeout=timeout)
    return time.time() - ended


def _finished_once(c: Cluster, experiment: str, n: int) -> None:
    from mlflow.tracking import MlflowClient

    from tailsweep.orchestrator._tracking import PARENT_TAG

    client = MlflowClient(c.mlflow_uri)
    exp = client.get_experiment_by_name(experiment)
    children = [r for r in client.search_runs([exp.experiment_id], max_results=100) if PARENT_TAG in r.data.tags]
    assert len(children) == n
    for run in children:
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val/macro_ap")] == [1]  # every epoch once


def _overlap(a: dict, b: dict) -> bool:
    return a["start"] < (b["end"] or time.time()) and b["start"] < (a["end"] or time.time())


def test_dry_run_on_the_fake_cluster_prints_the_gpu_node_plan(cluster):
    code, out = _launch(
        "sweep",
        str(_spec(cluster, "plan", workers_per_trial=2, max_concurrent_trials=2)),
        "--cluster",
        str(cluster.ray.config_file),
        "--address",
        cluster.ray.address,
        "--shared-dir",
        str(cluster.root),
        "--dry-run",
    )
    assert code == 0, out
    assert "node types the sweep will start: 2 x gpu_node (CPU 2, GPU 2)" in out
    assert "2 trials, up to 2 at a time once they are up, 2 worker(s) x 1 CPU + 1 GPU each" in out
    assert not cluster.ray.gpu_nodes()  # a plan, nothing started


def test_multi_gpu_trials_start_gpu_nodes_get_their_own_gpus_and_release_them(cluster):
    spec = _spec(cluster, "ddp", workers_per_trial=2, max_concurrent_trials=2)
    before = len(cluster.workers_seen())
    t0 = time.time()
    with NodeWatch() as watch:
        code, out = _launch("sweep", str(spec), "--set", "schemes=[unweighted, inverse_frequency, focal]")
    ended = time.time()
    wall = ended - t0
    assert code == 0, out
    released = _released(cluster, ended)
    assert "waiting for GPU nodes: 0 of 2 up (gpu_node x 2)" in out and "on GPU" in out
    up_s = float(out.split("nodes up after ", 1)[1].split()[0])
    assert watch.peak == 2  # the GPU nodes started
    seen = cluster.workers_seen()[before:]
    assert len(seen) == 6  # 3 trials x 2 workers
    for a in seen:
        assert a["gpu_ids"] and a["cuda_visible_devices"]
        for b in seen:
            if a is b or not _overlap(a, b):
                continue
            # no two concurrently running workers on one GPU; a trial's own workers on a node see each other's
            # GPUs (Ray Train shares CUDA_VISIBLE_DEVICES within a group, for NCCL), other trials' never
            assert (a["node"], a["gpu_ids"]) != (b["node"], b["gpu_ids"])
            if a["node"] == b["node"] and a["trial"] != b["trial"]:
                assert not set(a["cuda_visible_devices"].split(",")) & set(b["cuda_visible_devices"].split(","))
    kept = [(a, b) for a in seen for b in seen if a["pid"] == b["pid"] and a["start"] < b["start"]]
    assert kept, "no worker process was kept for a later trial"
    for a, b in kept:  # a kept worker keeps its GPU
        assert (a["node"], a["gpu_ids"], a["cuda_visible_devices"]) == (
            b["node"],
            b["gpu_ids"],
            b["cuda_visible_devices"],
        )
    _finished_once(cluster, "ddp", 3)
    print(f"\nDDP sweep: 2 GPU nodes up {up_s:.0f} s after submission, sweep {wall:.0f} s, released {released:.0f} s")


def test_four_small_trials_share_one_fake_gpu(cluster):
    spec = _spec(cluster, "fraction", gpus_per_worker=0.25, cpus_per_worker=0.5, max_concurrent_trials=4)
    before = len(cluster.workers_seen())
    t0 = time.time()
    with NodeWatch() as watch:
        code, out = _launch("sweep", str(spec), "--set", "seeds=[0, 1]")
    ended = time.time()
    wall = ended - t0
    assert code == 0, out
    released = _released(cluster, ended)
    assert "4 trials" in out and "up to 4 at a time" in out
    up_s = float(out.split("nodes up after ", 1)[1].split()[0])
    seen = cluster.workers_seen()[before:]
    assert len(seen) == 4 and {(w["node"], tuple(w["gpu_ids"])) for w in seen} == {(seen[0]["node"], ("0",))}
    assert watch.peak == 1  # one GPU node started for four trials
    assert any(_overlap(a, b) for a in seen for b in seen if a is not b)  # they shared it at the same time
    _finished_once(cluster, "fraction", 4)
    print(
        f"\nfractional sweep: GPU node up {up_s:.0f} s after submission, sweep {wall:.0f} s, released {released:.0f} s"
    )


def test_nodes_that_never_come_stop_the_sweep_naming_the_node_type(cluster, monkeypatch):
    """A node type the autoscaler cannot start (here: one only the sweep believes in, 4 GPUs a node) -- the sweep
    waits resources.node_wait_s, then exits 2 naming it and what to check; nothing written, the request withdrawn."""
    from tailsweep.orchestrator._autoscale import NODE_TYPES_ENV, NodeType, types_to_env

    monkeypatch.setenv(NODE_TYPES_ENV, types_to_env((NodeType("gpu_x4", {"CPU": 2.0, "GPU": 4.0}, 1),), 2))
    spec = _spec(cluster, "never", gpus_per_worker=4, node_wait_s=3)
    runs = cluster.root / "runs-never"
    code, out = _launch("sweep", str(spec), "--set", f"tracking.dir={runs}")
    assert code == 2, out
    assert "waiting for GPU nodes: 0 of 1 up (gpu_x4 x 1)" in out
    assert "no room for a trial's workers after 3 s (resources.node_wait_s)" in out and "gpu_x4 x 1" in out
    assert "monitor." in out and "quota" in out and not runs.exists()
    time.sleep(3)  # two autoscaler rounds: the request is gone, nothing was started for it
    assert not cluster.ray.gpu_nodes()
