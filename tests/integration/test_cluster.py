"""`launch sweep --cluster` against a real two-node Ray cluster and a real MLflow server on this machine.

The cluster: `ray start --head` and a second `ray start --address=...` node, each its own process
group with one CPU, the dashboard on 127.0.0.1, token authentication on with a token made for the test, and
a private --temp-dir (so a plain `ray.init()` elsewhere on this machine never finds it). The
tracking server: `launch mlflow-server --sweeps-user` (MLflow's basic auth; the tests submit as user `sweeps`,
whose password the job gets in a 0600 file of its working dir). Everything is stopped by PID at the end (never `ray stop`,
which would stop every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tailsweep.orchestrator.cli import main
from tests.conftest import make_features_table

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
START_TIMEOUT = 900  # s; this machine is often saturated (an MLflow server took > 5 min to start)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait(what: str, ok, timeout: float = START_TIMEOUT, procs=()) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if ok():
                return
        except (OSError, AssertionError, ValueError, KeyError):  # not up yet
            pass
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: process {p.args[:3]} exited with {p.returncode}")
        time.sleep(1)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def _process_tree(root_pids: set[int], marker: str) -> set[int]:
    """root_pids, their process groups (each was started in its own session), their descendants, and
    processes whose command line holds ``marker`` (our temp dir)."""
    parent: dict[int, int] = {}
    found = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            parent[int(d.name)] = int(fields[1])
            if int(fields[2]) in root_pids or (
                marker and marker in (d / "cmdline").read_bytes().decode(errors="replace")
            ):
                found.add(int(d.name))
        except (OSError, ValueError, IndexError):
            continue
    out = set(root_pids) | found
    grew = True
    while grew:
        kids = {p for p, pp in parent.items() if pp in out} - out
        grew = bool(kids)
        out |= kids
    return out


def _stop(procs: list[subprocess.Popen], marker: str, grace_s: float = 20) -> None:
    """SIGTERM our processes (by PID), then SIGKILL what is left after a grace period."""
    pids = _process_tree({p.pid for p in procs}, marker) - {os.getpid()}
    for sig, grace in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.time() + grace
        while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            for p in procs:
                p.poll()  # reap our direct children
            time.sleep(0.5)
        pids = {pid for pid in pids if Path(f"/proc/{pid}").exists()}
        if not pids:
            break
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=5)


class LocalCluster:
    """A head + one more node, token-authenticated, and an MLflow server (all ours, by PID)."""

    def __init__(self, root: Path):
        self.root = root
        # unix socket paths under the temp dir must stay short
        self.temp_dir = tempfile.mkdtemp(prefix="tsray-", dir="/tmp")
        self.token_file = root / "ray-token"
        self.token_file.write_text(secrets.token_hex(16))
        self.token_file.chmod(0o600)
        self.gcs_port, self.dashboard_port, self.mlflow_port = _free_port(), _free_port(), _free_port()
        self.procs: list[subprocess.Popen] = []
        self.worker: subprocess.Popen | None = None  # the worker node's `ray start --block`
        self.worker_suffix = "w"  # its temp dir: temp_dir + this
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH_TOKEN"))}
        self.env = {
            **env,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token_file),
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "RAY_USAGE_STATS_ENABLED": "0",
            # tolerances for a saturated machine (the dashboard alone took > 60 s to start here)
            "RAY_DASHBOARD_STARTUP_TIMEOUT_S": "600",
            "RAY_worker_register_timeout_seconds": "300",
        }

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token_file.read_text().strip()}"}

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def sweeps_credentials(self) -> tuple[str, str]:
        from tailsweep.orchestrator._server import read_credentials

        return read_credentials(self.root / "mlflow" / "sweeps-credentials")

    def _spawn(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 -- closed with the process
        p = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def _node(self, name: str, *extra: str, suffix: str = "w") -> subprocess.Popen:
        ports = [
            f"--{k}={_free_port()}"
            for k in (
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "metrics-export-port",
                "runtime-env-agent-port",
            )
        ]
        # Each node its own temp dir, as on separate machines: nodes sharing one would share the job's
        # unpacked working dir, and one node's runtime-env agent deletes it under the other's driver.
        temp_dir = self.temp_dir if "--head" in extra else self.temp_dir + suffix
        return self._spawn(
            name,
            [
                str(BIN / "ray"),
                "start",
                "--block",
                "--num-cpus=1",
                f"--temp-dir={temp_dir}",
                "--object-store-memory=100000000",
                "--disable-usage-stats",
                *ports,
                *extra,
            ],
            self.env,
        )

    def _node_with_retries(
        self, name: str, ready, *args: str, attempts: int = 8, suffix: str = "w"
    ) -> subprocess.Popen:
        """On a saturated machine a node can fail to start: its raylet gives its dashboard agent a hard-coded
        15 s to write its port file and aborts (ray-project/ray#65983), and `ray start` waits a hard-coded
        30 s for the raylet. A node that exits during startup is cleaned up (by PID) and started again
        after a pause (the load here comes in spikes)."""
        for attempt in range(1, attempts + 1):
            proc = self._node(f"{name}-{attempt}", *args, suffix=suffix)
            try:
                _wait(f"Ray {name}", ready, procs=[proc, *self.procs[:-1]])
                return proc
            except RuntimeError:
                if attempt == attempts:
                    raise
                self.procs.remove(proc)
                _stop([proc], "")
                time.sleep(15)

    def start(self) -> None:
        # one at a time: each start is CPU-heavy (imports), and Ray's startup deadlines are short
        mlflow = self._spawn(
            "mlflow",
            [
                str(BIN / "launch"),
                "mlflow-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.mlflow_port),
                "--dir",
                str(self.root / "mlflow"),
                "--sweeps-user",
            ],
            {**os.environ, "PATH": self.env["PATH"]},
        )
        # printed once the server answers and user `sweeps` exists
        _wait("MLflow server", lambda: "sweeps user: " in (self.root / "mlflow.log").read_text(), procs=[mlflow])
        self._node_with_retries(
            "head",
            lambda: (
                _get(self.address + "/api/authentication_mode")[0] == 200
                and len(self.nodes()) == 1
                and isinstance(self.jobs(), list)
            ),
            "--head",
            f"--port={self.gcs_port}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={_free_port()}",
            '--resources={"tailsweep_trial": 1000}',
        )
        self.worker = self._node_with_retries(
            "worker", lambda: len(self.nodes()) == 2, f"--address=127.0.0.1:{self.gcs_port}"
        )

    def kill_worker_node(self) -> str:
        """Lose the worker node as a machine is lost: SIGKILL, at once, to its raylet, its agents and every
        worker process it runs (by PID: its process group, their descendants, and whatever names its temp
        dir). Returns its node id."""
        (node,) = [n for n in self.nodes() if not n["is_head_node"]]
        pids = _process_tree({self.worker.pid}, self.temp_dir + self.worker_suffix) - {os.getpid()}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.worker.wait(timeout=30)
        _wait("the lost node's processes gone", lambda: not any(Path(f"/proc/{p}").exists() for p in pids), 30)
        self.procs.remove(self.worker)
        return node["node_id"]

    def add_worker_node(self, lost: str) -> str:
        """A replacement worker node (what an autoscaler starts), with a temp dir of its own; its node id."""
        self.worker_suffix += "r"
        self.worker = self._node_with_retries(
            "replacement",
            lambda: len([n for n in self.nodes() if n["node_id"] != lost]) == 2,
            f"--address=127.0.0.1:{self.gcs_port}",
            suffix=self.worker_suffix,
        )
        (node,) = [n for n in self.nodes() if not n["is_head_node"] and n["node_id"] != lost]
        return node["node_id"]

    def state(self, resource: str, **filters: str) -> list[dict]:
        query = "&".join(f"filter_keys={k}&filter_predicates=%3D&filter_values={v}" for k, v in filters.items())
        status, body = _get(f"{self.address}/api/v0/{resource}?limit=10000&detail=true&{query}", self.headers, 30)
        assert status == 200, body[:300]
        return json.loads(body)["data"]["result"]["result"]

    def nodes(self) -> list[dict]:
        return [n for n in self.state("nodes") if n["state"] == "ALIVE"]

    def head_job(self, job_id: str) -> dict:
        status, body = _get(f"{self.address}/api/jobs/{job_id}", self.headers, 30)
        assert status == 200
        return json.loads(body)

    def jobs(self) -> list[dict]:
        status, body = _get(f"{self.address}/api/jobs/", self.headers, 30)
        assert status == 200
        return json.loads(body)

    def stop(self) -> None:
        _stop(self.procs, self.temp_dir)  # the marker matches every node's temp dir
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        for n in range(len(self.worker_suffix)):  # temp_dir + "w", + "wr" for a replacement node, ...
            shutil.rmtree(self.temp_dir + self.worker_suffix[: n + 1], ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster_yaml(tmp_path, cluster):
    """A local-provider cluster YAML for the test cluster (what `ray up` would have started)."""
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster-local.yaml").read_text())
    config["provider"].update(head_ip="127.0.0.1", worker_ips=["127.0.0.1"])
    config["head_start_ray_commands"][-1] = config["head_start_ray_commands"][-1].replace(
        "--dashboard-port=8265", f"--dashboard-port={cluster.dashboard_port}"
    )
    config["metadata"] = {"tailsweep": {"shared_paths": []}}
    path = tmp_path / "cluster-test.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def auth(monkeypatch, cluster):
    """This client finds the test cluster's token the way Ray does (RAY_AUTH_TOKEN_PATH), and the tracking
    server's sweeps user the way MLflow's clients do (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)."""
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(cluster.token_file))
    user, password = cluster.sweeps_credentials
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def _spec_file(tmp_path, cluster, **overrides) -> Path:
    table = tmp_path / "table"
    if not table.exists():
        make_features_table(table, n=(120, 40, 40))
    spec = {
        "name": "cluster-test",
        "data": {"path": str(table)},
        "model": {"backbone": "mlp", "hidden": 16},
        "train": {"epochs": 2, "batch_size": 32, "checkpoint_every_s": 0},
        "schemes": ["unweighted", "inverse_frequency"],
        "seeds": [0],
        "tracking": {"dir": str(tmp_path / "runs"), "uri": cluster.mlflow_uri, "experiment": tmp_path.name},
    }
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        spec[section] = {**spec.get(section, {}), name: value} if name else value
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _launch(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_sweep_on_two_nodes_records_every_trial_in_the_mlflow_server(tmp_path, cluster, cluster_yaml, auth):
    from mlflow.tracking import MlflowClient

    from tailsweep.orchestrator._tracking import PARENT_TAG, SWEEP_TAG

    spec = _spec_file(tmp_path, cluster)
    t0 = time.time()
    code, out = _launch("sweep", str(spec), "--cluster", str(cluster_yaml), "--shared-dir", str(tmp_path))
    wall = time.time() - t0
    assert code == 0, out
    assert "submitted job tailsweep-cluster-test-" in out and "SUCCEEDED" in out
    assert "token auth on" in out and cluster.token_file.read_text().strip() not in out  # never printed
    job_id = out.split("submitted job ", 1)[1].split()[0]

    # both nodes trained: each trial's Train worker ran in an actor, placed on one node or the other
    workers = [a for a in cluster.state("actors", class_name="RayTrainWorker") if a.get("job_id")]
    nodes = {n["node_id"] for n in cluster.nodes()}
    assert len(workers) >= 2 and {a["node_id"] for a in workers} == nodes, workers

    client = MlflowClient(cluster.mlflow_uri)
    exp = client.get_experiment_by_name(tmp_path.name)
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if SWEEP_TAG in r.data.tags and PARENT_TAG not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get(PARENT_TAG) == parents[0].info.run_id]
    assert sorted(r.data.tags["scheme"] for r in children) == ["inverse_frequency", "unweighted"]  # each once
    for run in children:
        assert run.info.status == "FINISHED"
        for key in ("val/macro_ap", "train/loss"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2], key
        # artifacts went through the server, not to a node's disk
        assert "per_label_test.csv" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert parents[0].data.tags.get("git_commit") not in (None, "unknown")

    # job control on the finished job
    code, status_out = _launch("status", job_id, "--cluster", str(cluster_yaml))
    assert code == 0 and "SUCCEEDED" in status_out
    code, logs_out = _launch("logs", job_id, "--cluster", str(cluster_yaml))
    assert code == 0 and "Sweep" in logs_out

    # the tracking password reached the job in a 0600 file of its working dir (the trials logged with it), and
    # nowhere else: not the job's record (entrypoint, metadata, runtime env), its log, this command's output, any
    # file of Ray's logs on either node, MLflow's params and tags, the sweep's folder or the server's store
    password = cluster.sweeps_credentials[1]
    info = cluster.head_job(job_id)
    assert info["runtime_env"]["env_vars"]["TAILSWEEP_MLFLOW_CREDENTIALS"].endswith(f"{job_id}/mlflow-credentials")
    assert "MLFLOW_TRACKING_PASSWORD" not in info["runtime_env"]["env_vars"]
    assert password not in json.dumps(info) + logs_out + out
    shown = [
        f"{r.info.run_name}: {k}" for r in runs for k, v in {**r.data.params, **r.data.tags}.items() if password in v
    ]
    assert shown == []
    skip = {cluster.root / "mlflow" / "sweeps-credentials"}
    for root in (tmp_path / "runs", cluster.root / "mlflow"):
        assert [
            p for p in root.rglob("*") if p.is_file() and p not in skip and password.encode() in p.read_bytes()
        ] == []
    logs = [p for d in (cluster.temp_dir, cluster.temp_dir + "w") for p in Path(d).rglob("*") if "logs" in p.parts]
    assert any(p.name == "runtime_env_agent.log" for p in logs)  # where Ray writes a job's runtime env
    assert [p.name for p in logs if p.is_file() and password.encode() in p.read_bytes()] == []
    shipped = [p for d in (cluster.temp_dir, cluster.temp_dir + "w") for p in Path(d).rglob("mlflow-credentials")]
    assert shipped and all(p.stat().st_mode & 0o077 == 0 for p in shipped)  # only the job's user reads it
    print(f"\ncluster sweep: 2 trials x 2 epochs on 2 nodes, submit -> SUCCEEDED in {wall:.0f} s; password in no log")


def _refused(tmp_path, cluster, cluster_yaml, *args, **spec):
    before = len(cluster.jobs())
    code, out = _launch("sweep", str(_spec_file(tmp_path, cluster, **spec)), "--cluster", str(cluster_yaml), *args)
    assert code == 2, out
    assert len(cluster.jobs()) == before  # refused before submission
    return " ".join(out.split())  # rich wraps long lines


def test_node_local_storage_on_a_multi_node_cluster_is_refused(tmp_path, cluster, cluster_yaml, auth):
    out = _refused(tmp_path, cluster, cluster_yaml)
    assert "node-local" in out and "--shared-dir" in out and "shared_paths" in out and "s3://" in out


def test_dry_run_checks_the_plan_against_the_clusters_resources(tmp_path, cluster, cluster_yaml, auth):
    spec = _spec_file(tmp_path, cluster)
    code, out = _launch("sweep", str(spec), "--cluster", str(cluster_yaml), "--shared-dir", str(tmp_path), "--dry-run")
    text = " ".join(out.split())
    assert code == 0 and "2 trials, up to 2 at a time on the cluster's 2 CPU(s)" in text and "nothing submitted" in text
    big = _spec_file(tmp_path, cluster, resources={"workers_per_trial": 3})  # 3 CPUs a trial; the nodes have 1 each
    code, out = _launch("sweep", str(big), "--cluster", str(cluster_yaml), "--shared-dir", str(tmp_path), "--dry-run")
    text = " ".join(out.split())
    assert code == 2 and "3 CPUs but the cluster has 2" in text


def test_sqlite_tracking_on_a_cluster_is_refused(tmp_path, cluster, cluster_yaml, auth):
    out = _refused(
        tmp_path, cluster, cluster_yaml, "--shared-dir", str(tmp_path), tracking__uri=f"sqlite:///{tmp_path}/mlflow.db"
    )
    assert "SQLite" in out and "launch mlflow-server" in out


def test_missing_or_wrong_token_is_refused(tmp_path, cluster, cluster_yaml, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    out = _refused(tmp_path, cluster, cluster_yaml, "--shared-dir", str(tmp_path))
    assert "requires a Ray authentication token" in out and "~/.ray/auth_token" in out
    assert "RAY_AUTH_TOKEN_PATH" in out

    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")
    out = _refused(tmp_path, cluster, cluster_yaml, "--shared-dir", str(tmp_path))
    assert "rejected the Ray authentication token" in out and "not-the-token" not in out


def test_unreachable_head_is_refused(tmp_path):
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster-local.yaml").read_text())
    config["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    table = make_features_table(tmp_path / "table", n=(40, 20, 20))
    code, out = _launch(
        "sweep",
        "--set",
        f"data.path={table.root}",
        "--set",
        "model.backbone=mlp",
        "--cluster",
        str(path),
        "--address",
        f"http://127.0.0.1:{_free_port()}",
    )
    out = " ".join(out.split())
    assert code == 2 and "cannot reach the Ray head's dashboard" in out and "ray up" in out and "--address" in out


# --- surviving failures on the cluster ------------------------------------------------------------
def _children(cluster, experiment: str):
    from mlflow.tracking import MlflowClient

    from tailsweep.orchestrator._tracking import PARENT_TAG

    client = MlflowClient(cluster.mlflow_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=100) if exp else []
    return client, [r for r in runs if PARENT_TAG in r.data.tags]


def _assert_every_trial_once_finished_with_every_epoch(cluster, experiment, schemes, epochs):
    client, children = _children(cluster, experiment)
    assert sorted(r.data.tags["scheme"] for r in children) == sorted(schemes)  # one run per trial
    for run in children:
        assert run.info.status == "FINISHED", run.info.run_name
        for key in ("val/macro_ap", "train/loss"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert steps == list(range(1, epochs + 1)), (run.info.run_name, key, steps)


def _submit(tmp_path, cluster, cluster_yaml, spec_file, env=None):
    from tailsweep.orchestrator._cluster import load_cluster, prepare, submit
    from tailsweep.orchestrator.spec import load_spec

    spec = load_spec(spec_file)
    c = load_cluster(cluster_yaml, shared_dirs=(str(tmp_path),))
    head, _ = prepare(spec, str(spec_file), c)
    return head, submit(head, spec, env=env)


def test_a_killed_training_worker_resumes_on_the_cluster_without_a_duplicate_run(tmp_path, cluster, cluster_yaml, auth):
    """A Train worker process dies at the start of epoch 2 (os._exit in the worker, once): the group
    restarts from the epoch-1 checkpoint, the same child run goes on, every epoch is logged once."""
    import io

    from tailsweep.orchestrator._cluster import follow
    from tailsweep.trainables.hooks import FAULT_ENV, FAULT_ONCE_ENV

    spec = _spec_file(tmp_path, cluster, train__max_failures=1)
    fired = tmp_path / "fault-fired"  # on the shared path: written by whichever node ran the worker
    head, job = _submit(
        tmp_path, cluster, cluster_yaml, spec, env={FAULT_ENV: "exit@2:inverse_frequency", FAULT_ONCE_ENV: str(fired)}
    )
    log = io.StringIO()
    assert follow(head, job, out=log) == "SUCCEEDED", log.getvalue()[-3000:]
    assert fired.exists()  # the fault did fire
    _assert_every_trial_once_finished_with_every_epoch(cluster, tmp_path.name, ["unweighted", "inverse_frequency"], 2)


class _Proxy:
    """A TCP forwarder in front of the MLflow server: ``down()`` refuses connections (and cuts open
    ones) as a stopped server does, ``up()`` serves again on the same port."""

    def __init__(self, target_port: int):
        import threading

        self.target = target_port
        self.port = _free_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.up()

    def up(self) -> None:
        import threading

        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def down(self) -> None:
        self.listener.close()
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self.conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        import threading

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def test_a_tracking_outage_mid_trial_loses_no_metric(tmp_path, cluster, cluster_yaml, auth):
    """The tracking server is unreachable for >= 25 s while the trials train (a checkpoint is written
    during the outage, so an epoch was reported into it): training goes on, MLflow's retries deliver
    every epoch once it is back, and every run ends FINISHED."""
    import io

    from tailsweep.orchestrator._cluster import follow

    proxy = _Proxy(cluster.mlflow_port)
    try:
        spec = _spec_file(tmp_path, cluster, tracking__uri=f"http://127.0.0.1:{proxy.port}", train__epochs=3)
        head, job = _submit(tmp_path, cluster, cluster_yaml, spec)
        # the outage starts once a trial is RUNNING (its worker group is starting: every epoch's metrics,
        # and the run's end, fall into or after the outage)
        _wait(
            "a running trial",
            lambda: any(r.info.status == "RUNNING" for r in _children(cluster, tmp_path.name)[1]),
            timeout=600,
        )
        proxy.down()
        t_down = time.time()
        checkpoints = lambda: list((tmp_path / "runs").rglob("checkpoint_*"))  # noqa: E731
        _wait("an epoch reported during the outage", lambda: checkpoints() and time.time() - t_down >= 25, timeout=600)
        down_state = head.client.get_job_status(job).value
        proxy.up()
        print(f"\ntracking outage: {time.time() - t_down:.0f} s, {len(checkpoints())} checkpoint(s) written meanwhile")
        assert down_state == "RUNNING"  # the outage did not kill the sweep
        log = io.StringIO()
        assert follow(head, job, out=log) == "SUCCEEDED", log.getvalue()[-3000:]
    finally:
        with contextlib.suppress(OSError):
            proxy.down()
    _assert_every_trial_once_finished_with_every_epoch(cluster, tmp_path.name, ["unweighted", "inverse_frequency"], 3)


def test_ctrl_c_detaches_and_stop_ends_the_runs_killed(tmp_path, cluster, cluster_yaml, auth):
    """Ctrl-C on `launch sweep --cluster` leaves the job running and says how to re-attach; `launch stop`
    interrupts the driver like Ctrl-C, so the sweep ends its MLflow runs (none left RUNNING)."""
    spec = _spec_file(tmp_path, cluster, train__epochs=2000, train__checkpoint_every_s=600)
    # SIGINT as a terminal delivers it: a test run started in the background by a non-interactive shell
    # inherits SIGINT *ignored* (POSIX), and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen(
        [str(BIN / "launch"), "sweep", str(spec), "--cluster", str(cluster_yaml), "--shared-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in proc.stdout:  # until the job is submitted
        lines.append(line)
        if line.startswith("submitted job"):
            break
    job_id = lines[-1].split()[-1]
    import threading

    # keep reading, as a terminal does: a full pipe would block the streamed logs (2000 epochs of them)
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    _wait(
        "a trial logging epochs", lambda: any(r.data.metrics for r in _children(cluster, tmp_path.name)[1]), timeout=600
    )
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(timeout=30)
    out = " ".join("".join(lines).split())  # rich wraps long lines
    assert proc.returncode == 130, out
    assert f"detached: the sweep keeps running on the cluster as job {job_id}" in out
    assert f"launch logs {job_id} --cluster {cluster_yaml} --follow" in out
    code, status_out = _launch("status", job_id, "--cluster", str(cluster_yaml))
    assert code == 0 and "RUNNING" in status_out  # detaching did not stop it

    code, stop_out = _launch("stop", job_id, "--cluster", str(cluster_yaml))
    assert code == 0 and f"job {job_id}: STOPPED" in stop_out, stop_out
    from mlflow.tracking import MlflowClient

    client = MlflowClient(cluster.mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name(tmp_path.name).experiment_id], max_results=100)
    assert len(runs) == 3 and {r.info.status for r in runs} == {"KILLED"}, [
        (r.info.run_name, r.info.status) for r in runs
    ]


def test_a_killed_sweep_driver_resumes_on_the_cluster(tmp_path, cluster, cluster_yaml, auth):
    """The job's sweep driver is killed (SIGKILL) while its second trial is held in epoch 2; the job
    fails; `launch sweep SPEC --resume latest --cluster` finishes the same sweep in the same runs:
    every trial once, FINISHED, every epoch logged once."""
    import io

    from tailsweep.orchestrator._cluster import follow, is_terminal, submit
    from tailsweep.trainables.hooks import FAULT_ENV, FAULT_ONCE_ENV

    spec = _spec_file(
        tmp_path,
        cluster,
        schemes=["unweighted", "inverse_frequency", "focal"],
        resources={"max_concurrent_trials": 1},
        train__epochs=3,
    )
    held = tmp_path / "held"  # on the shared path: written by whichever node runs the worker
    env = {FAULT_ENV: "hold@2:inverse_frequency", FAULT_ONCE_ENV: str(held)}
    head, job = _submit(tmp_path, cluster, cluster_yaml, spec, env=env)
    deadline = time.monotonic() + 300
    while not held.exists():
        status = str(head.client.get_job_status(job).value)
        assert not is_terminal(status), head.client.get_job_logs(job)[-3000:]
        assert time.monotonic() < deadline, "the second trial never reached epoch 2"
        time.sleep(1)
    time.sleep(4)  # past Tune's experiment-state period
    driver = head.client.get_job_info(job).driver_info
    os.kill(int(driver.pid), signal.SIGKILL)  # a process of this machine: the cluster's nodes run here
    while not is_terminal(status := str(head.client.get_job_status(job).value)):
        assert time.monotonic() < deadline + 120
        time.sleep(1)
    assert status == "FAILED"

    from tailsweep.orchestrator.spec import load_spec

    again = submit(head, load_spec(spec), env=env, resume="latest")
    log = io.StringIO()
    final = follow(head, again, out=log)
    # the job's own message too: a job that fails before its driver prints (seen once in CI, empty log) says why there
    assert final == "SUCCEEDED", f"{head.client.get_job_info(again).message}\n{log.getvalue()[-3000:]}"
    assert "resuming sweep cluster-test-" in log.getvalue()
    _assert_every_trial_once_finished_with_every_epoch(
        cluster, tmp_path.name, ["unweighted", "inverse_frequency", "focal"], 3
    )


# Holds the head's one CPU for as long as the job runs (an actor pinned to the driver's node, the head), so
# that a trial's Train worker can only be placed on the worker node.
HOLD_HEAD_CPU = """
import time, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On
ray.init()
here = ray.get_runtime_context().get_node_id()
Hold = ray.remote(num_cpus=1)(type("Hold", (), {"node": lambda self: ray.get_runtime_context().get_node_id()}))
hold = Hold.options(scheduling_strategy=On(here, soft=False)).remote()
print("holding the CPU of node", ray.get(hold.node.remote()), flush=True)
time.sleep(3600)
"""


def _epochs_logged(cluster, experiment: str) -> list[int]:
    client, children = _children(cluster, experiment)
    return [m.step for r in children for m in client.get_metric_history(r.info.run_id, "train/loss")]


def test_a_node_lost_mid_epoch_resumes_the_trial_on_a_replacement_node(tmp_path, cluster, cluster_yaml, auth):
    """The worker node dies (SIGKILL to its raylet and every process it runs) while a trial's Train worker
    on it is in the middle of epoch 2 (held after step 2 of 4, past the epoch-1 checkpoint): a replacement
    node joins (as an autoscaler would start one), the trial resumes there from the epoch-1 checkpoint in
    the same MLflow run, every epoch is logged once, the sweep succeeds and says which trial was retried.
    The trial cannot be placed on the head: a second job holds the head's one CPU (HOLD_HEAD_CPU)."""
    import io
    import shlex

    from ray.job_submission import JobSubmissionClient

    from tailsweep.analysis.tags import RETRIES_TAG, RETRY_TAG
    from tailsweep.orchestrator._cluster import follow, load_cluster, prepare, submit
    from tailsweep.orchestrator.spec import load_spec
    from tailsweep.trainables.hooks import FAULT_ENV, FAULT_ONCE_ENV

    t0 = time.monotonic()
    jobs = JobSubmissionClient(cluster.address, headers=cluster.headers)
    holder = jobs.submit_job(entrypoint=f"python -c {shlex.quote(HOLD_HEAD_CPU)}")
    try:
        # the sweep's checks meanwhile (what `launch sweep --cluster` does before it submits)
        spec_file = _spec_file(tmp_path, cluster, schemes=["inverse_frequency"], train__epochs=3)  # 4 steps/epoch
        spec = load_spec(spec_file)
        head, _ = prepare(spec, str(spec_file), load_cluster(cluster_yaml, shared_dirs=(str(tmp_path),)))
        _wait("the head's CPU held", lambda: "holding the CPU" in jobs.get_job_logs(holder), timeout=300)
        t_holding = time.monotonic()
        fired = tmp_path / "fault-fired"  # on the shared path: where the hold fired (hooks.py)
        job = submit(head, spec, env={FAULT_ENV: "hold@2.2", FAULT_ONCE_ENV: str(fired)})
        where = {}
        _wait("the trial held mid-epoch", lambda: where.update(json.loads(fired.read_text())) or True, timeout=300)
        # The controller counts a checkpoint once it has the report (it polls its workers every 2 s): wait for
        # epoch 1 in MLflow, which its metrics logger writes after the checkpoint manager took the report.
        _wait("epoch 1 reported", lambda: _epochs_logged(cluster, tmp_path.name) == [1], timeout=120)
        t_held, t_kill = time.monotonic(), time.time()
        lost = cluster.kill_worker_node()
        assert where["node_id"] == lost  # the trial's worker ran on the node that was lost
        replacement = cluster.add_worker_node(lost)
        t_joined = time.monotonic()
        log = io.StringIO()
        assert follow(head, job, out=log) == "SUCCEEDED", log.getvalue()[-3000:]  # the sweep exited 0
        t_done = time.monotonic()
    finally:
        jobs.stop_job(holder)
    out = " ".join(log.getvalue().split())

    # the trial's Train workers: the one on the lost node, then the one that resumed on the replacement
    ray_job = head.client.get_job_info(job).job_id
    workers = [a for a in cluster.state("actors", class_name="RayTrainWorker") if a.get("job_id") == ray_job]
    assert {a["node_id"] for a in workers} == {lost, replacement}, workers

    client, children = _children(cluster, tmp_path.name)
    (run,) = children  # the same run went on: no second run for the retry
    assert run.info.status == "FINISHED"
    for key in ("val/macro_ap", "train/loss"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2, 3], key  # each once
    tags = run.data.tags
    assert tags[RETRIES_TAG] == "1", tags
    assert f"node {lost[:12]}" in tags[RETRY_TAG] and "lost" in tags[RETRY_TAG], tags[RETRY_TAG]
    assert "resumed at epoch 2" in tags[RETRY_TAG]  # from the epoch-1 checkpoint, not from scratch

    (node,) = [n for n in cluster.state("nodes") if n["node_id"] == lost]
    declared_dead = node.get("end_time_ms", 0) / 1000 - t_kill
    resumed = min(m.timestamp for m in client.get_metric_history(run.info.run_id, "train/loss") if m.step == 2)
    name = run.info.run_name
    assert f"retried: {name} (1 restart" in out, out[-2000:]  # the sweep's own summary
    (report,) = (tmp_path / "runs").rglob("report/report.md")
    md = report.read_text()
    assert "## Retried trials" in md and name in md.split("## Retried trials", 1)[1], md
    print(
        f"\nnode loss: head's CPU held after {t_holding - t0:.0f} s, trial held mid-epoch 2 (epoch 1 reported) "
        f"{t_held - t_holding:.0f} s later; killed -> declared dead by the GCS {declared_dead:.0f} s, replacement joined "
        f"{t_joined - t_held:.0f} s, epoch 2 logged {resumed / 1000 - t_kill:.0f} s, sweep SUCCEEDED "
        f"{t_done - t_held:.0f} s after the kill; test {time.monotonic() - t0:.0f} s"
    )
