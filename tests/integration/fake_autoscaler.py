"""Ray's fake multi-node autoscaler, started by hand (never ``ray.cluster_utils.AutoscalingCluster``: the 2.60 wheel
lacks the file it reads, and it runs ``ray stop --force``, which kills every Ray on the machine).

A CPU head runs the real autoscaler (``--autoscaling-config``) with the ``fake_multinode`` provider, which starts
each worker node as local raylet processes with the resources its node type declares (here GPUs that do not
exist). Everything runs under its own temp dir and HOME and is stopped by PID (never ``ray stop``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.integration.test_cluster import _free_port, _get, _stop, _wait

BIN = Path(sys.executable).parent
IDLE_TIMEOUT_MIN = 0.05  # 3 s idle before the autoscaler removes a node (the update interval adds ~1 s)
GPU_NODE = {"CPU": 2, "GPU": 2}


def autoscaling_config(gcs_port: int, max_gpu_nodes: int = 2) -> dict:
    """The autoscaling config (the keys of Ray's fake_multi_node/example.yaml), a cluster-launcher YAML too."""
    return {
        "cluster_name": "tailsweep-fake",
        "max_workers": max_gpu_nodes,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": f"127.0.0.1:{gcs_port}",
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1, "tailsweep_trial": 1000}, "node_config": {}, "max_workers": 0},
            "gpu_node": {
                "resources": dict(GPU_NODE),
                "node_config": {},
                "min_workers": 0,
                "max_workers": max_gpu_nodes,
            },
        },
        "head_node_type": "ray.head.default",
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": IDLE_TIMEOUT_MIN,
        "auth": {},
        "docker": {},
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


class FakeAutoscaler:
    def __init__(self, root: Path, env: dict | None = None):
        self.root = root
        self.temp_dir = tempfile.mkdtemp(prefix="tsfake-")  # short: unix socket paths live under it
        self.home = root / "home"  # no ~/.ray/auth_token: no token auth on this cluster
        self.home.mkdir()
        self.gcs_port, self.dashboard_port = _free_port(), _free_port()
        self.config = autoscaling_config(self.gcs_port)
        self.config_file = root / "fake-cluster.yaml"
        self.config_file.write_text(json.dumps(self.config))  # JSON is YAML
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
        self.env = {
            **base,
            **(env or {}),
            "HOME": str(self.home),
            "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}",
            "RAY_FAKE_CLUSTER": "1",
            "AUTOSCALER_UPDATE_INTERVAL_S": "1",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_DASHBOARD_STARTUP_TIMEOUT_S": "600",
            "RAY_worker_register_timeout_seconds": "300",
        }
        self.procs: list[subprocess.Popen] = []

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def start(self) -> float:
        t0 = time.time()
        log = open(self.root / "head.log", "w")  # noqa: SIM115 -- closed with the process
        args = [
            str(BIN / "ray"),
            "start",
            "--head",
            f"--port={self.gcs_port}",
            f"--autoscaling-config={self.config_file}",
            "--num-cpus=1",
            '--resources={"tailsweep_trial": 1000}',
            f"--temp-dir={self.temp_dir}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_port}",
            f"--ray-client-server-port={_free_port()}",
            "--object-store-memory=100000000",
            "--disable-usage-stats",
        ]
        # Not --block: a blocking `ray start` ends the whole head when one of its processes exits, and on a
        # saturated machine Ray's client server does ("Timed out waiting for node info"), which this test never
        # uses. The head's processes are found by their temp dir when the cluster stops.
        p = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        if p.wait(timeout=300) != 0:
            raise RuntimeError(f"`ray start --head` exited with {p.returncode}: see {self.root / 'head.log'}")
        _wait("fake autoscaler head", lambda: _get(self.address + "/api/version")[0] == 200, timeout=300)
        return time.time() - t0

    def gpu_nodes(self) -> list[dict]:
        """Alive nodes with GPUs (Ray's state API)."""
        status, body = _get(f"{self.address}/api/v0/nodes?limit=1000&detail=true", timeout=30)
        assert status == 200, body[:300]
        nodes = json.loads(body)["data"]["result"]["result"]
        return [n for n in nodes if n["state"] == "ALIVE" and (n.get("resources_total") or {}).get("GPU")]

    def stop(self) -> None:
        logs = Path(self.temp_dir) / "session_latest" / "logs"
        for f in logs.glob("monitor.*"):  # the autoscaler's log, kept beside the test's files
            shutil.copy(f, self.root / f.name)
        _stop(self.procs, self.temp_dir, grace_s=3)  # nothing to save: a short grace, then SIGKILL
        _stop([], f":{self.gcs_port}", grace_s=3)  # Ray's client server names only the head's address
        shutil.rmtree(self.temp_dir, ignore_errors=True)
