"""cluster.yaml (AWS GPU) and cluster-local.yaml (on-premise) are valid Ray cluster-launcher configs
(Ray's own schema), and the pre-submission rules of `launch sweep --cluster` (no cluster needed)."""

import shlex
from pathlib import Path

import pytest
import yaml

from tailsweep.orchestrator._cluster import (
    EXCLUDES,
    Cluster,
    ClusterError,
    check_submission,
    entrypoint,
    find_token,
    load_cluster,
)
from tailsweep.orchestrator.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def _validate(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(config)
    validate_config(prepared)  # as `ray up` does: defaults filled, then the schema
    return prepared


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-local.yaml"])
def test_cluster_yamls_match_rays_schema(name):
    config = yaml.safe_load((ROOT / name).read_text())
    _validate(config)
    head = " ".join(config["head_start_ray_commands"])
    assert '"tailsweep_trial": 1000' in head and "RAY_AUTH_MODE=token" in head
    assert "RAY_AUTH_MODE=token" in " ".join(config["worker_start_ray_commands"])
    setup = " ".join(config["setup_commands"])
    assert "pip install" in setup and "-c ~/tailsweep/constraints.txt -e ~/tailsweep" in setup
    assert config["file_mounts"]["~/tailsweep"] == "." and "~/.ray/auth_token" in config["file_mounts"]
    assert config["metadata"]["tailsweep"]["shared_paths"]


def test_the_cloud_cluster_has_a_cpu_head_for_trial_drivers_and_gpu_workers():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert (
        head["resources"] == {"CPU": 8, "tailsweep_trial": 1000}
        and head["node_config"]["InstanceType"] == "m6i.2xlarge"
    )
    workers = {n: t for n, t in types.items() if n != config["head_node_type"]}
    assert workers and all(t["node_config"]["InstanceType"].startswith("g") for t in workers.values())
    assert all(t["min_workers"] == 0 and t["max_workers"] > 0 for t in workers.values())
    # every node type declares its CPUs and GPUs: the plan counts them before any such node exists
    assert {n: t["resources"] for n, t in workers.items()} == {
        "worker.gpu.1x": {"CPU": 4, "GPU": 1},
        "worker.gpu.4x": {"CPU": 48, "GPU": 4},
    }
    assert "gpu" in config["docker"]["image"]


def test_the_local_cluster_names_its_machines():
    config = yaml.safe_load((ROOT / "cluster-local.yaml").read_text())
    assert config["provider"]["type"] == "local" and config["provider"]["head_ip"] and config["provider"]["worker_ips"]


def test_the_schema_check_rejects_a_bad_key(tmp_path):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster-local.yaml").read_text())
    config["max_wrokers"] = 2
    with pytest.raises(Exception, match="max_wrokers"):
        validate_config(prepare_config(config))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ClusterError, match="Ray's cluster-launcher schema.*max_wrokers"):
        load_cluster(path)


def test_load_cluster_resolves_the_local_head_and_its_dashboard_port(tmp_path):
    c = load_cluster(ROOT / "cluster-local.yaml")
    assert c.provider == "local" and c.address == "http://192.168.0.10:8265"
    assert c.can_add_workers and c.shared_paths == ("/mnt/shared",)
    config = yaml.safe_load((ROOT / "cluster-local.yaml").read_text())
    config["head_start_ray_commands"][-1] = config["head_start_ray_commands"][-1].replace("8265", "9000")
    config["provider"]["worker_ips"] = []
    config["max_workers"] = 0
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(config))
    c = load_cluster(path, shared_dirs=("/nfs",))
    assert c.address == "http://192.168.0.10:9000" and not c.can_add_workers
    assert c.shared_paths == ("/mnt/shared", "/nfs")
    assert load_cluster(path, address="10.0.0.1:8265").address == "http://10.0.0.1:8265"


def test_the_cloud_head_comes_from_the_address_when_given():
    c = load_cluster(ROOT / "cluster.yaml", address="http://127.0.0.1:8265/")
    assert c.provider == "aws" and c.address == "http://127.0.0.1:8265" and c.can_add_workers


def _cluster(shared=(), can_add=True, hosts=("10.0.0.1", "10.0.0.2")) -> Cluster:
    return Cluster(Path("c.yaml"), "local", f"http://{hosts[0]}:8265", can_add, hosts, tuple(shared))


def _spec(*overrides):
    return load_spec(None, ["tracking.uri=http://10.0.0.1:5000", "tracking.dir=/mnt/shared/runs", *overrides])


def test_storage_rule_on_a_multi_node_cluster():
    shared = _cluster(["/mnt/shared"])
    assert check_submission(_spec(), shared, check_tracking=False) == []
    assert check_submission(_spec("data.path=/mnt/shared/tables/t"), shared, check_tracking=False) == []
    problems = check_submission(_spec("tracking.dir=/home/me/runs"), shared, check_tracking=False)
    assert len(problems) == 2  # checkpoints and the demo table
    assert "node-local" in problems[0] and "--shared-dir" in problems[0] and "s3://" in problems[0]
    # checkpoints in object storage, the table on the shared filesystem
    ok = _spec("tracking.dir=/home/me/runs", "tracking.storage=s3://bucket/ts", "data.path=/mnt/shared/t")
    assert check_submission(ok, shared, check_tracking=False) == []
    # a sibling path is not "under" the shared one
    assert check_submission(_spec("tracking.dir=/mnt/shared2/runs"), shared, check_tracking=False)
    # one node: the head's disk is fine
    assert (
        check_submission(
            _spec("tracking.dir=/home/me/runs"),
            _cluster(can_add=False, hosts=("10.0.0.1",)),
            ("10.0.0.1",),
            check_tracking=False,
        )
        == []
    )
    # ... unless more than one node is alive
    assert check_submission(
        _spec("tracking.dir=/home/me/runs"), _cluster(can_add=False), ("10.0.0.1", "10.0.0.1"), check_tracking=False
    )


def test_relative_paths_and_local_tracking_are_refused_on_a_cluster():
    problems = check_submission(load_spec(None, []), _cluster(["/mnt/shared"]), check_tracking=False)
    text = "\n".join(problems)
    assert "SQLite" in text and "launch mlflow-server" in text
    assert "tracking.dir = 'tailsweep-runs' is relative" in text
    problems = check_submission(
        _spec("tracking.uri=http://127.0.0.1:5000"), _cluster(["/mnt/shared"]), check_tracking=False
    )
    assert len(problems) == 1 and "each node itself" in problems[0]
    loop = _cluster(["/mnt/shared"], hosts=("127.0.0.1", "127.0.0.1"))
    assert check_submission(_spec("tracking.uri=http://127.0.0.1:5000"), loop, check_tracking=False) == []
    problems = check_submission(
        _spec("tracking.uri=http://u:secret@10.0.0.1:5000"), _cluster(["/mnt/shared"]), check_tracking=False
    )
    assert len(problems) == 1 and "credentials" in problems[0] and "secret" not in problems[0]


def test_an_unreachable_tracking_server_is_refused():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = _cluster(["/mnt/shared"], hosts=("127.0.0.1",))
    problems = check_submission(_spec(f"tracking.uri=http://127.0.0.1:{port}"), loop)
    assert len(problems) == 1 and "does not answer" in problems[0] and "launch mlflow-server" in problems[0]


def test_the_entrypoint_is_an_argument_list_never_a_shell_string():
    cmd = entrypoint(".tailsweep-jobs/x; rm -rf ~ $(id)/spec.yaml", verbose=True)
    assert shlex.split(cmd) == [
        "python",
        "-m",
        "tailsweep.orchestrator.cli",
        "sweep",
        ".tailsweep-jobs/x; rm -rf ~ $(id)/spec.yaml",
        "--verbose",
    ]


def test_the_job_ships_code_not_data():
    for pattern in (".venv", ".git", "/tailsweep-runs/", "/data/", "*.db", "__pycache__", "/docs/results/"):
        assert pattern in EXCLUDES


def test_the_token_is_found_where_ray_looks(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_token() == (None, "")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\n")
    assert find_token() == ("from-home", str(tmp_path / ".ray" / "auth_token"))
    (tmp_path / "t").write_text("from-path")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "t"))
    assert find_token()[0] == "from-path"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert find_token() == ("from-env", "RAY_AUTH_TOKEN")
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(ClusterError, match="cannot read"):
        find_token()


def test_the_tracking_password_travels_in_a_0600_file_not_in_the_runtime_env(tmp_path, monkeypatch):
    """What --cluster ships (tests/integration/test_cluster.py runs it on two nodes): the runtime env names the
    file, the file is its owner's only, and a job's process that imports tailsweep gets MLflow's variables."""
    import os
    import subprocess
    import sys

    from tailsweep._job_credentials import ENV
    from tailsweep.orchestrator._cluster import _ship_credentials

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "sweeps")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-pw")
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    job = tmp_path / ".tailsweep-jobs" / "job1"
    job.mkdir(parents=True)
    env = _ship_credentials(job, ".tailsweep-jobs/job1")
    assert env == {ENV: ".tailsweep-jobs/job1/mlflow-credentials", "MLFLOW_TRACKING_INSECURE_TLS": "true"}
    assert "s3cret-pw" not in repr(env)
    shipped = job / "mlflow-credentials"
    assert shipped.stat().st_mode & 0o777 == 0o600
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")} | env
    got = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, tailsweep; print(os.environ['MLFLOW_TRACKING_USERNAME'], "
            "os.environ['MLFLOW_TRACKING_PASSWORD'])",
        ],
        cwd=tmp_path,
        env=clean | {"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        check=True,
    )
    assert got.stdout.split() == ["sweeps", "s3cret-pw"]


def test_a_failed_jobs_exit_code_is_its_drivers_2_else_1():
    """`launch sweep --cluster` exits 2 when the sweep's driver did (it named the input or cluster problem, e.g.
    GPU nodes that never came), 1 for any other failure or when the head cannot say."""
    from types import SimpleNamespace

    from tailsweep.orchestrator._cluster import failed_job_exit_code

    def head(code=None, error=None):
        def get_job_info(job_id):
            if error:
                raise error
            return SimpleNamespace(driver_exit_code=code)

        return SimpleNamespace(client=SimpleNamespace(get_job_info=get_job_info))

    assert failed_job_exit_code(head(2), "raysubmit_1") == 2
    assert failed_job_exit_code(head(1), "raysubmit_1") == 1
    assert failed_job_exit_code(head(-9), "raysubmit_1") == 1  # killed
    assert failed_job_exit_code(head(None), "raysubmit_1") == 1  # not recorded (older Ray, driver never ran)
    assert failed_job_exit_code(head(error=ConnectionError("head gone")), "raysubmit_1") == 1
