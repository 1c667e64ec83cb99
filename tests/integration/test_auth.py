"""Authenticated tracking: `launch mlflow-server` started as README's cluster section starts it (beyond loopback,
so with MLflow's basic auth, and a sweeps user), and a real sweep against it with the credentials the README
copies to ~/.mlflow/credentials. The password shows up nowhere: the output, the server's log, MLflow's params,
tags and store, the sweep's folder, the artifacts, Ray's logs."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from tailsweep.orchestrator._server import read_credentials
from tailsweep.orchestrator.cli import main
from tests.conftest import make_features_table

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readme_commands(section: str) -> list[list[str]]:
    """The shell commands of a README section's first code block, as argument lists (comments dropped)."""
    text = README.read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    block = text.split("```bash\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


class Server:
    def __init__(self, root: Path):
        self.root = root
        self.dir = root / "mlflow"
        self.port = _free_port()
        self.log = root / "server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, args: list[str]) -> None:
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tailsweep.orchestrator.cli", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 600
        while "sweeps user: " not in self.log.read_text():  # printed once the server answers and the user exists
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)  # `launch mlflow-server` stops its server's process group
        try:
            self.proc.wait(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def credentials(self, who: str) -> tuple[str, str]:
        return read_credentials(self.dir / f"{who}-credentials")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    args = next(c for c in readme_commands("On a cluster") if c[:2] == ["launch", "mlflow-server"])[2:]
    assert "--insecure-no-auth" not in args and "--sweeps-user" in args
    srv = Server(tmp_path_factory.mktemp("auth"))
    args[args.index("--dir") + 1] = str(srv.dir)
    try:
        srv.start(["mlflow-server", *args, "--port", str(srv.port)])
        yield srv
    finally:
        srv.stop()


def _request(url: str, body: dict | None = None, who: tuple[str, str] | None = None, method: str | None = None):
    headers = {"Content-Type": "application/json"}
    if who:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{who[0]}:{who[1]}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _holding(secret: str, *roots: Path, skip: tuple[Path, ...] = ()) -> list[str]:
    """Every file under ``roots`` whose bytes contain ``secret``."""
    needle = secret.encode()
    found = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file() and not path.is_symlink() and path not in skip:
                with contextlib.suppress(OSError):
                    if needle in path.read_bytes():
                        found.append(str(path))
    return found


def test_without_credentials_every_request_is_refused(server):
    api = server.uri + "/api/2.0/mlflow"
    assert _request(server.uri + "/health")[0] == 200  # open: load balancers and `launch sweep` probe it
    for url, body in (
        (f"{api}/experiments/search?max_results=5", None),
        (f"{api}/experiments/create", {"name": "anonymous"}),
        (f"{api}/runs/search", {"experiment_ids": ["0"]}),
        (f"{server.uri}/api/2.0/mlflow-artifacts/artifacts", None),
    ):
        assert _request(url, body)[0] == 401, url
        assert _request(url, body, who=("admin", "not-the-password"))[0] == 401, url
    admin, sweeps = server.credentials("admin"), server.credentials("sweeps")
    assert _request(f"{api}/experiments/search?max_results=5", who=admin)[0] == 200
    # the sweeps user edits, and is no admin
    status, body = _request(f"{api}/users/current", who=sweeps)
    assert status == 200 and json.loads(body)["user"] == {"id": 2, "is_admin": False, "username": "sweeps"}
    assert _request(f"{api}/users/create", {"username": "x", "password": "x" * 16}, who=sweeps)[0] == 403
    for f in ("admin-credentials", "sweeps-credentials", "server-secret", "basic_auth.db"):
        assert (server.dir / f).stat().st_mode & 0o777 == 0o600, f
    log = server.log.read_text()
    assert f"admin credentials: {server.dir / 'admin-credentials'} (created now; mode 0600)" in " ".join(log.split())
    assert admin[1] not in log and sweeps[1] not in log


def _sweep_env(home: Path, ray_tmp: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS and not k.startswith("RAY_ADDRESS")}
    return {**env, "HOME": str(home), "RAY_TMPDIR": ray_tmp}


def test_a_sweep_with_the_sweeps_credentials_records_every_trial_and_shows_the_password_nowhere(
    server, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    from tailsweep.orchestrator._tracking import PARENT_TAG, SWEEP_TAG

    # as README says: the sweeps user's file becomes ~/.mlflow/credentials where sweeps are submitted
    home = tmp_path / "home"
    (home / ".mlflow").mkdir(parents=True)
    shutil.copy(server.dir / "sweeps-credentials", home / ".mlflow" / "credentials")
    table = make_features_table(tmp_path / "table", n=(60, 20, 20))
    ray_tmp = tempfile.mkdtemp(prefix="tsauth-", dir="/tmp")  # Ray's unix sockets need a short path
    try:
        t0 = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "tailsweep.orchestrator.cli", "sweep"]
            + [
                f"--set={kv}"
                for kv in (
                    f"data.path={table.root}",
                    "model.backbone=mlp",
                    "model.hidden=8",
                    "train.epochs=1",
                    "train.batch_size=32",
                    "schemes=[unweighted, inverse_frequency]",
                    "seeds=[0]",
                    f"tracking.dir={tmp_path / 'runs'}",
                    f"tracking.uri={server.uri}",
                    "tracking.experiment=auth-sweep",
                )
            ],
            env=_sweep_env(home, ray_tmp),
            capture_output=True,
            text=True,
            timeout=900,
        )
        wall = time.monotonic() - t0
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

        for var, value in zip(CREDENTIAL_VARS, server.credentials("admin"), strict=True):
            monkeypatch.setenv(var, value)
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name("auth-sweep")
        runs = client.search_runs([exp.experiment_id], max_results=100)
        parents = [r for r in runs if SWEEP_TAG in r.data.tags and PARENT_TAG not in r.data.tags]
        children = [r for r in runs if PARENT_TAG in r.data.tags]
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        assert sorted(r.data.tags["scheme"] for r in children) == ["inverse_frequency", "unweighted"]
        for r in children:
            assert r.info.status == "FINISHED" and "test/micro_auprc" in r.data.metrics
            assert r.data.tags.get("mlflow.user") in (None, "sweeps")  # written as the sweeps user

        password = server.credentials("sweeps")[1]
        shown = [
            *(f"param {k}" for r in runs for k, v in r.data.params.items() if password in v),
            *(f"tag {k}" for r in runs for k, v in r.data.tags.items() if password in v),
        ]
        assert shown == [] and password not in run.stdout + run.stderr
        # the sweep's folder (spec, report, Ray's results), the server's store and artifacts, Ray's session logs
        skip = (server.dir / "sweeps-credentials", server.dir / "admin-credentials")
        assert _holding(password, tmp_path / "runs", server.dir, server.log, Path(ray_tmp), skip=skip) == []
        print(f"\nauthenticated sweep: 2 trials x 1 epoch, {wall:.0f} s")
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.parametrize("password", [None, "a-wrong-password"], ids=["no-credentials", "wrong-password"])
def test_a_sweep_without_the_right_password_exits_2_before_anything_is_created(server, tmp_path, monkeypatch, password):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.mlflow/credentials
    for var, value in zip(CREDENTIAL_VARS, server.credentials("admin"), strict=True):
        monkeypatch.setenv(var, value)
    client = MlflowClient(server.uri)
    before = [e.experiment_id for e in client.search_experiments()]
    runs_before = len(client.search_runs(before, max_results=1000))
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "sweeps")
    if password is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    runs_dir = tmp_path / "runs"
    # the demo sweep: it would generate its table under tracking.dir first
    result = CliRunner().invoke(
        main, ["sweep", "--set", f"tracking.dir={runs_dir}", "--set", f"tracking.uri={server.uri}"]
    )
    out = " ".join(result.output.split())
    assert result.exit_code == 2, out
    if password is None:
        assert "requires a user name and password, and none was found" in out
    else:
        assert "refused user 'sweeps' with the password from the environment (HTTP 401" in out
        assert password not in out
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in out and "~/.mlflow/credentials" in out
    assert not runs_dir.exists()  # no data, no folder, no Ray results
    report = CliRunner().invoke(main, ["report", "latest", "--uri", server.uri, "--out", str(tmp_path / "report")])
    assert report.exit_code == 2 and f"--uri {server.uri!r}: " in " ".join(report.output.split()), report.output
    assert not (tmp_path / "report").exists()
    for var, value in zip(CREDENTIAL_VARS, server.credentials("admin"), strict=True):
        monkeypatch.setenv(var, value)
    assert [e.experiment_id for e in client.search_experiments()] == before  # no experiment
    assert len(client.search_runs(before, max_results=1000)) == runs_before  # no run
