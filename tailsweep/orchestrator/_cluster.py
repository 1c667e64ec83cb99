"""Cluster submission: ``launch sweep --cluster CLUSTER.yaml`` and job control.

The sweep driver runs *on* the cluster as a Ray Job (Jobs API, not Ray Client): the project is
shipped as the job's working directory, the resolved spec as a file inside it, and the entrypoint
is an argument list joined with :func:`shlex.join` (no user value is ever interpolated into a shell
string). Everything that can be checked from here is checked before anything is submitted:

- the head: resolved from the cluster-launcher YAML (the local provider's ``head_ip``;
  ``ray get-head-ip`` for cloud providers) or given with ``--address``; its dashboard must answer;
- authentication: when the head runs with token auth (``/api/authentication_mode``), a token must
  be found the way Ray looks for one (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``,
  ``~/.ray/auth_token``) and be accepted; it is sent as a header and never printed;
- tracking: an ``http(s)://`` MLflow server that answers (``/health``) and accepts the user name and
  password MLflow's clients find here (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, else
  ``~/.mlflow/credentials``); a SQLite or file store cannot be shared by a cluster's nodes (fix:
  ``launch mlflow-server``). The user name and password travel in a mode-0600 file inside the job's working
  directory, which each of the job's processes reads (``tailsweep/_job_credentials.py``); the job's runtime env
  names only the file (Ray keeps the runtime env in the job's record and its runtime-env agent writes it to each
  node's ``runtime_env_agent.log``). The password is in no entrypoint, metadata, Ray log, or anything logged to
  MLflow (the cluster test searches them). MLflow's TLS settings travel as environment variables;
- storage (the rule): ``tracking.dir`` and ``data.path`` are paths *on the cluster* and must be
  absolute. On a cluster that has (or may add) more than one node, Ray's checkpoints
  (``tracking.storage``, default ``<tracking.dir>/ray``) must be an ``s3://``/``gs://`` URI or lie
  under a shared path, and the label table (``data.path``, or ``<tracking.dir>/data`` for the
  demo table) must lie under a shared path. Shared paths are declared in the cluster YAML
  (``metadata: {tailsweep: {shared_paths: [/mnt/shared]}}``; Ray ignores ``metadata``) or with
  ``--shared-dir``: a filesystem every node mounts at the same place.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ..inputs import InputError, read_yaml, url_problem
from .spec import SweepSpec, check_spec, spec_to_yaml

DASHBOARD_PORT = 8265
JOB_DIR = ".tailsweep-jobs"  # the spec of a submission travels here, inside the working dir
# Never shipped with the job (gitignore syntax, relative to the project root): data, stores, caches.
EXCLUDES = [
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    "/tailsweep-runs/",
    "/data/",
    "/runs/",
    "mlruns",
    "mlartifacts",
    "*.db",
    "/docs/results/",
]
REMOTE_STORAGE = ("s3://", "gs://")


def failed_job_exit_code(head, job_id: str) -> int:
    """The exit code for a submitted sweep that did not succeed: 2 when its driver exited 2 (a problem with the
    user's input or cluster it has already named, e.g. GPU nodes that never came), else 1 (a failure)."""
    try:
        code = head.client.get_job_info(job_id).driver_exit_code
    except Exception:  # noqa: BLE001 -- the job's end was already reported; its code is a refinement
        return 1
    return 2 if code == 2 else 1


def is_terminal(status) -> bool:
    """Whether a Ray job status (``JobStatus`` or its value) is final: Ray's own ``JobStatus.is_terminal``."""
    from ray.job_submission import JobStatus

    return JobStatus(status).is_terminal()


STOP_GRACE_S = 180  # after `launch stop`, how long the driver may take to end its runs before Ray kills it


class ClusterError(RuntimeError):
    """A problem that stops a submission before anything reached the cluster (one message, with the fix)."""


@dataclass(frozen=True)
class Cluster:
    """What tailsweep needs to know about a cluster-launcher YAML."""

    path: Path
    provider: str
    address: str  # the Jobs API / dashboard, http://HOST:PORT
    can_add_workers: bool  # the config lets the cluster have more than the head node
    node_hosts: tuple[str, ...]  # hosts named by the config (local provider), for the tracking check
    shared_paths: tuple[str, ...]
    node_types: tuple = ()  # worker node types the autoscaler may start (_autoscale.NodeType), from the YAML
    max_workers: int | None = None  # the YAML's cap on worker nodes
    head_resources: dict = field(default_factory=dict)  # the head node type's declared resources

    @property
    def autoscales(self) -> bool:
        """Whether the plan counts on node types (a cloud or fake provider with available_node_types)."""
        return bool(self.node_types)

    def shape(self, nodes: list[dict] | None = None):
        """The cluster as the plan sees it: the alive ``nodes`` (Ray's state API), else the head alone."""
        from ._autoscale import ClusterShape, alive_shape

        if nodes is None:
            return ClusterShape((dict(self.head_resources),), self.node_types, self.max_workers, str(self.path))
        return alive_shape(self.node_types, self.max_workers, nodes, str(self.path))

    @property
    def host(self) -> str:
        return urlsplit(self.address).hostname or ""


# --- the cluster YAML -----------------------------------------------------------------------------
def _dashboard_port(config: dict) -> int:
    """``--dashboard-port`` from the head's start commands, else Ray's default."""
    for cmd in config.get("head_start_ray_commands") or []:
        try:
            words = shlex.split(str(cmd))
        except ValueError:
            continue
        for i, w in enumerate(words):
            if w.startswith("--dashboard-port="):
                return int(w.split("=", 1)[1])
            if w == "--dashboard-port" and i + 1 < len(words):
                return int(words[i + 1])
    return DASHBOARD_PORT


def _ray_cli() -> str:
    beside = Path(sys.executable).parent / "ray"
    return str(beside) if beside.exists() else (shutil.which("ray") or "ray")


def _cloud_head_ip(path: Path) -> str:
    """``ray get-head-ip CLUSTER.yaml`` (asks the cloud provider), as an argument list."""
    try:
        out = subprocess.run([_ray_cli(), "get-head-ip", str(path)], capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClusterError(
            f"`ray get-head-ip {shlex.quote(str(path))}` did not run ({exc}); pass the head's dashboard with --address http://HOST:8265"
        ) from None
    lines = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    if out.returncode != 0 or not lines:
        why = ([ln for ln in out.stderr.splitlines() if ln.strip()] or ["no output"])[-1].strip()
        q = shlex.quote(str(path))
        raise ClusterError(
            f"`ray get-head-ip {q}` failed ({why}). Is the cluster up (`ray up {q}`) and are "
            "your cloud credentials set? Or pass the head's dashboard with --address http://HOST:8265 "
            f"(e.g. after `ray dashboard {q}`: --address http://127.0.0.1:8265)"
        )
    return lines[-1]


def worker_count_problems(config: dict) -> list[str]:
    """Node counts that are not whole numbers >= 0 (the top-level ``max_workers``, each node type's
    ``min_workers``/``max_workers``), named by key with the autoscaling plan's rule (``_autoscale._count``), before
    Ray's ``prepare_config`` compares them as numbers (a TypeError) or its schema names them less plainly."""
    from ._autoscale import _count

    problems: list[str] = []
    if "max_workers" in config:
        _count(config["max_workers"], "max_workers", problems)
    types = config.get("available_node_types")
    for name, spec in (types if isinstance(types, dict) else {}).items():
        for key in ("min_workers", "max_workers"):
            if isinstance(spec, dict) and key in spec:
                _count(spec[key], f"available_node_types.{name}.{key}", problems)
    return problems


def load_cluster(path: str | Path, address: str | None = None, shared_dirs: tuple[str, ...] = ()) -> Cluster:
    """Read and validate (Ray's own schema) a cluster-launcher YAML; resolve the head's Jobs API address."""
    path = Path(path)
    if not path.is_file():
        raise ClusterError(f"{path}: file not found (a Ray cluster-launcher YAML, e.g. cluster-local.yaml)")
    try:
        config = read_yaml(path, "cluster-launcher config")
    except InputError as exc:
        raise ClusterError(str(exc)) from None
    if not isinstance(config, dict) or not isinstance(config.get("provider"), dict):
        raise ClusterError(f"{path}: not a Ray cluster-launcher config (no provider section)")
    if problems := worker_count_problems(config):  # before Ray's validator, which compares them as numbers
        raise ClusterError(f"{path}: " + "; ".join(problems))
    try:
        from ray.autoscaler._private.util import prepare_config, validate_config

        if config["provider"].get("type") == "fake_multinode":  # Ray's test provider: its wheel ships no defaults
            validate_config(json.loads(json.dumps(config)))
        else:
            validate_config(prepare_config(json.loads(json.dumps(config))))
    except ImportError as exc:  # Ray's validator (or a module it needs) is missing: the installation, not the YAML
        raise ClusterError(
            f"cannot check {path} against Ray's cluster-launcher schema: {type(exc).__name__}: {exc} "
            "-- an installation problem, not your config; reinstall with `make install` "
            "(ray[default] and its jsonschema)"
        ) from None
    except Exception as exc:  # noqa: BLE001 -- jsonschema/ValueError/KeyError: the user's config problem
        where = ".".join(str(k) for k in getattr(exc, "absolute_path", ()) or ())
        bad = f"{where} = {json.dumps(exc.instance)}: " if where and hasattr(exc, "instance") else ""
        raise ClusterError(
            f"{path}: does not match Ray's cluster-launcher schema: {bad}{str(exc).splitlines()[0]}"
        ) from None
    provider = config["provider"]
    kind = str(provider.get("type", ""))
    hosts: tuple[str, ...] = ()
    if kind == "local":
        hosts = tuple(str(h) for h in [provider.get("head_ip"), *(provider.get("worker_ips") or [])] if h)
        can_add = bool(provider.get("worker_ips")) or int(config.get("max_workers") or 0) > 0
    else:
        types = config.get("available_node_types") or {}
        total = int(config.get("max_workers") or 0)
        per_type = [int(t.get("max_workers", total)) for n, t in types.items() if n != config.get("head_node_type")]
        can_add = total > 0 and (not types or any(m > 0 for m in per_type))
    meta = (config.get("metadata") or {}).get("tailsweep") or {}
    shared = tuple(str(p) for p in [*(meta.get("shared_paths") or []), *shared_dirs])
    given = address is not None
    if address is None:
        if kind == "local":
            head = provider.get("head_ip")
            if not head:
                raise ClusterError(f"{path}: provider.head_ip is missing (the machine that runs Ray's head)")
        else:
            head = _cloud_head_ip(path)
        address = f"http://{head}:{_dashboard_port(config)}"
    if "://" not in address:
        address = f"http://{address}"
    if (why := url_problem(address, "--address" if given else f"{path}: the head's dashboard")) is not None:
        raise ClusterError(f"{why}; e.g. --address http://HOST:8265")
    return Cluster(path, kind, address.rstrip("/"), can_add, hosts, shared, *_node_types(config, path, kind))


def _node_types(config: dict, path: Path, kind: str) -> tuple[tuple, int | None, dict]:
    """An autoscaling config's worker node types, its cap on workers and the head type's resources."""
    if kind == "local" or not config.get("available_node_types"):
        return (), None, {}
    from ._autoscale import NodeTypeError, node_types

    try:
        types, head, cap = node_types(config, str(path))
    except NodeTypeError as exc:
        raise ClusterError("; ".join(exc.problems)) from None
    return types, cap, head


# --- the head: reachable, authenticated -----------------------------------------------------------
def find_token() -> tuple[str | None, str]:
    """The Ray auth token and where it came from (Ray's order); the token itself is never printed."""
    if token := os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return token, "RAY_AUTH_TOKEN"
    if env_path := os.environ.get("RAY_AUTH_TOKEN_PATH"):
        p = Path(env_path).expanduser()
        try:
            token = p.read_text().strip()
        except OSError as exc:
            raise ClusterError(f"RAY_AUTH_TOKEN_PATH={env_path}: cannot read it ({exc.strerror})") from None
        if not token:
            raise ClusterError(f"RAY_AUTH_TOKEN_PATH={env_path}: the file is empty")
        return token, f"RAY_AUTH_TOKEN_PATH ({p})"
    default = Path.home() / ".ray" / "auth_token"
    if default.is_file() and (token := default.read_text().strip()):
        return token, str(default)
    return None, ""


def _get(url: str, headers: dict | None = None, timeout: float = 15) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"User-Agent": "tailsweep", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@dataclass
class Head:
    """A checked connection to a cluster's Jobs API."""

    cluster: Cluster
    auth_mode: str
    token_source: str
    _headers: dict = field(default_factory=dict, repr=False)  # holds the token: never print or log
    _client: object = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return self.cluster.address

    @property
    def client(self):
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            self._client = JobSubmissionClient(self.address, headers=dict(self._headers))
        return self._client

    def get_json(self, endpoint: str, timeout: float = 30) -> dict:
        status, body = _get(self.address + endpoint, self._headers, timeout)
        if status != 200:
            raise ClusterError(f"{self.address}{endpoint}: HTTP {status}: {body[:300]}")
        return json.loads(body)

    def nodes(self) -> list[dict]:
        """Alive nodes (Ray's state API): node_id, node_ip, is_head_node, resources_total."""
        from dataclasses import asdict, is_dataclass

        from ray.util.state import StateApiClient
        from ray.util.state.common import ListApiOptions, StateResource

        client = StateApiClient(address=self.address, headers={"Content-Type": "application/json", **self._headers})
        rows = client.list(StateResource.NODES, ListApiOptions(limit=1000, detail=True), raise_on_missing_output=False)
        rows = [asdict(n) if is_dataclass(n) else dict(n) for n in rows]
        return [n for n in rows if n.get("state") == "ALIVE"]


def connect(cluster: Cluster, timeout: float = 15) -> Head:
    """Check the head answers and accepts our token; raises ClusterError naming the fix."""
    where = f"the Ray head's dashboard at {cluster.address} (from {cluster.path})"
    try:  # public (no token needed) and served by the dashboard itself
        status, body = _get(cluster.address + "/api/authentication_mode", timeout=timeout)
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClusterError(
            f"cannot reach {where}: {reason}. Is the cluster up (`ray up {shlex.quote(str(cluster.path))}`)? If the head is "
            f"up but its dashboard port is not reachable from here, forward it (`ray dashboard {shlex.quote(str(cluster.path))}`) "
            "and pass --address http://127.0.0.1:8265; on-premise, start the head with --dashboard-host=0.0.0.0"
        ) from None
    try:
        mode = json.loads(body)["authentication_mode"] if status == 200 else None
    except (ValueError, KeyError, TypeError):
        mode = None
    if mode is None:
        raise ClusterError(
            f"{where} answered HTTP {status} but not as a Ray {_ray_version()} dashboard does: is "
            "that the head's dashboard port (`ray start --head --dashboard-port=...`)?"
        )
    headers: dict = {}
    source = ""
    if mode == "token":
        token, source = find_token()
        if token is None:
            raise ClusterError(
                f"{where} requires a Ray authentication token and none was found: copy the head's token (run "
                "`ray get-auth-token` on the head) into ~/.ray/auth_token here, or point RAY_AUTH_TOKEN_PATH at a "
                "file holding it (RAY_AUTH_TOKEN also works)"
            )
        headers = {"Authorization": f"Bearer {token}"}
    status, _ = _get(cluster.address + "/api/version", headers, timeout)
    if status in (401, 403):
        raise ClusterError(
            f"{where} rejected the Ray authentication token from {source or 'nowhere'} (HTTP {status}): it is not "
            "the cluster's token. Copy the head's token (`ray get-auth-token` on the head) into that file"
        )
    if status != 200:
        raise ClusterError(f"{where} answered HTTP {status} on /api/version; is it a Ray {_ray_version()} head?")
    return Head(cluster, mode, source, headers)


def _ray_version() -> str:
    from importlib.metadata import version

    return version("ray")


# --- checks before submission ---------------------------------------------------------------------
def _under(path: str, roots: tuple[str, ...]) -> bool:
    p = PurePosixPath(os.path.normpath(path))
    return any(
        p == PurePosixPath(os.path.normpath(r)) or PurePosixPath(os.path.normpath(r)) in p.parents for r in roots
    )


def _loopback(host: str | None) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _this_machine() -> set[str]:
    """Addresses of this machine: a node at one of them reaches a tracking server on 127.0.0.1 here."""
    ips = {"127.0.0.1", "::1", "localhost"}
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))  # UDP: picks the outgoing interface, sends nothing
        ips.add(s.getsockname()[0])
    with contextlib.suppress(OSError):
        ips |= {str(a[4][0]) for a in socket.getaddrinfo(socket.gethostname(), None)}
    return ips


def check_submission(
    spec: SweepSpec, cluster: Cluster, node_ips: tuple[str, ...] = (), check_tracking: bool = True
) -> list[str]:
    """Every reason this spec cannot run on this cluster (empty = fine). ``node_ips``: one per alive node."""
    problems = []
    multi = cluster.can_add_workers or len(node_ips) > 1
    shared_hint = (
        f"mount a filesystem at the same path on every node, list it in {cluster.path} under "
        "metadata: {tailsweep: {shared_paths: [/mnt/shared]}} (or pass --shared-dir /mnt/shared) and "
        "use a path under it"
    )
    # tracking: a server every node reaches
    uri = spec.tracking_uri
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        problems.append(
            f"tracking.uri = {uri!r}: a cluster needs an MLflow tracking server that every node reaches -- a SQLite "
            "or file store is local to one machine. Start one with `launch mlflow-server --host 0.0.0.0 --dir "
            "/shared/mlflow` on a machine the nodes reach and pass --set tracking.uri=http://THAT_HOST:5000"
        )
    elif parts.username or parts.password:
        problems.append(
            "tracking.uri carries credentials (user:password@): they would be stored with the sweep's "
            "spec; give the server's address without them"
        )
    else:
        hosts = set(cluster.node_hosts) | set(node_ips) | {cluster.host}
        if _loopback(parts.hostname) and not all(_loopback(h) or h in _this_machine() for h in hosts):
            problems.append(
                f"tracking.uri = {uri!r}: on the cluster's nodes {parts.hostname} is each node itself, "
                "not this machine; use an address of the tracking server that every node reaches"
            )
        elif check_tracking:
            from ._tracking import tracking_server_problem

            if (why := tracking_server_problem(uri, timeout=20)) is not None:
                problems.append(why)
    # storage: paths on the cluster; shared when there are several nodes
    for key, value in (
        ("tracking.dir", spec.tracking.dir),
        ("data.path", spec.data.path),
        ("tracking.storage", spec.tracking.storage),
    ):
        if value and "://" not in value and not (value.startswith("/") or value.startswith("~")):
            problems.append(
                f"{key} = {value!r} is relative: on the cluster it would land in the job's temporary "
                "working directory; give an absolute path on the cluster"
            )
    if multi:
        storage = spec.tracking.storage or f"{spec.tracking.dir.rstrip('/')}/ray"
        if not storage.startswith(REMOTE_STORAGE) and not _under(storage, cluster.shared_paths):
            key = "tracking.storage" if spec.tracking.storage else "tracking.dir"
            problems.append(
                f"{key}: Ray's checkpoints would go to {storage}, a node-local path, but this cluster has several "
                f"nodes and a trial may resume on another one. Either {shared_hint}, or keep checkpoints in object "
                "storage with --set tracking.storage=s3://BUCKET/PREFIX (or gs://)"
            )
        data = spec.data.path or f"{spec.tracking.dir.rstrip('/')}/data"
        if not _under(data, cluster.shared_paths):
            key = "data.path" if spec.data.path else "tracking.dir (the demo table is generated under it)"
            problems.append(
                f"{key}: the label table at {data} must be readable from every node of this multi-node "
                f"cluster, and that path is node-local; {shared_hint}"
            )
    return problems


# --- submission -----------------------------------------------------------------------------------
def project_root() -> Path:
    """The checkout that is shipped (the folder holding pyproject.toml above this package)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise ClusterError(f"{root}: not a tailsweep checkout (no pyproject.toml); submit from a source checkout")
    return root


def entrypoint(spec_rel: str, verbose: bool = False, resume: str | None = None) -> str:
    """The job's shell command, from an argument list: nothing user-given is interpolated unquoted."""
    args = ["python", "-m", "tailsweep.orchestrator.cli", "sweep", spec_rel]
    if verbose:
        args.append("--verbose")
    if resume:
        args += ["--resume", resume]
    return shlex.join(args)


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=root)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _ship_credentials(job_dir: Path, job_rel: str) -> dict[str, str]:
    """The tracking server's user name and password as MLflow's clients read them here, to a 0600 file in the job's
    working dir (``tailsweep/_job_credentials.py`` reads it in each of the job's processes); returns the job's
    environment variables: the file's relative path and the TLS settings, never the password (Ray logs a job's
    runtime env)."""
    from .._job_credentials import ENV, KEYS, write
    from ._tracking import client_env

    env = client_env()
    if any(env.get(var) for var in KEYS):
        write(job_dir / "mlflow-credentials", env)
        env[ENV] = f"{job_rel}/mlflow-credentials"
    return {k: v for k, v in env.items() if k not in KEYS}


def submit(
    head: Head, spec: SweepSpec, verbose: bool = False, env: dict | None = None, resume: str | None = None
) -> str:
    """Ship the project + the spec, start the sweep driver as a Ray Job; returns the job's submission id.
    With ``resume`` (a sweep id or ``latest``) the driver finishes that sweep under the spec's tracking.dir."""
    root = project_root()
    job_id = f"tailsweep-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    spec_dir = root / JOB_DIR / job_id
    spec_dir.mkdir(parents=True)
    spec_rel = f"{JOB_DIR}/{job_id}/spec.yaml"
    try:
        (root / spec_rel).write_text(spec_to_yaml(spec))
        # `launch stop` (Ray's stop_job) interrupts the driver like Ctrl-C: Tune stops the trials in order and
        # the sweep ends its MLflow runs KILLED. Ray's default is SIGTERM and SIGKILL 3 s later, which leaves
        # runs RUNNING. Both settings are read by the job's supervisor, which runs in this runtime env.
        env_vars = {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_GRACE_S)}
        if spec.tracking_uri.startswith(("http://", "https://")):
            env_vars |= _ship_credentials(spec_dir, f"{JOB_DIR}/{job_id}")
        env_vars |= env or {}
        if cluster_types := getattr(head.cluster, "node_types", ()):  # the driver plans against what it can grow to
            from ._autoscale import NODE_TYPES_ENV, types_to_env

            env_vars[NODE_TYPES_ENV] = types_to_env(cluster_types, head.cluster.max_workers)
        if commit := _git_commit(root):
            env_vars["TAILSWEEP_GIT_COMMIT"] = commit
        runtime_env: dict = {"working_dir": str(root), "excludes": EXCLUDES, "env_vars": env_vars}
        return head.client.submit_job(
            entrypoint=entrypoint(spec_rel, verbose, resume),
            submission_id=job_id,
            runtime_env=runtime_env,
            metadata={"tailsweep.spec": spec.name},
        )
    finally:  # uploaded with the working dir (or not at all): the local copy is no longer needed
        shutil.rmtree(spec_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            (root / JOB_DIR).rmdir()


def follow(head: Head, job_id: str, out=None, poll_s: float = 2.0) -> str:
    """Stream the job's logs until it ends; returns its final status. Ctrl-C raises KeyboardInterrupt
    at once (the job keeps running): the stream is read in a daemon thread, so the main thread only
    waits, and a busy or stuck websocket cannot hold the interrupt back."""
    out = out or sys.stdout
    streamed = threading.Event()

    async def tail():
        async for chunk in head.client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    def reader():
        try:
            asyncio.run(tail())
        except Exception as exc:  # the log stream broke off: fall back to polling the status
            out.write(f"\n[tailsweep] log stream interrupted ({exc}); waiting for the job to end ...\n")
        finally:
            streamed.set()

    threading.Thread(target=reader, daemon=True, name="job-logs").start()
    while not streamed.wait(poll_s):
        pass
    while not is_terminal(status := str(head.client.get_job_status(job_id).value)):
        time.sleep(poll_s)
    return status


def reattach_hint(job_id: str, cluster: Cluster, address_given: bool) -> str:
    flags = shlex.join(["--cluster", str(cluster.path)] + (["--address", cluster.address] if address_given else []))
    return (
        f"detached: the sweep keeps running on the cluster as job {job_id}.\n"
        f"  follow it again:  launch logs {job_id} {flags} --follow\n"
        f"  its state:        launch status {job_id} {flags}\n"
        f"  stop it:          launch stop {job_id} {flags}"
    )


def prepare(spec: SweepSpec, spec_source: str, cluster: Cluster) -> tuple[Head, list[dict]]:
    """All checks before a submission, in order; raises SpecError/ClusterError with every problem."""
    from .spec import SpecError

    problems = check_spec(spec, check_data=bool(spec.data.path) and Path(spec.data.path).expanduser().exists())
    if cluster.autoscales:  # what the node types can never hold: refused before the head is even asked
        try:
            node_plan(spec, None, cluster)
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems, spec_source)
    head = connect(cluster)
    nodes = head.nodes()
    from ._sweep import TRIAL_RESOURCE

    if not any(TRIAL_RESOURCE in (n.get("resources_total") or {}) for n in nodes):
        raise ClusterError(
            f"the cluster at {cluster.address} offers no '{TRIAL_RESOURCE}' resource (trial drivers "
            f"hold it); start its head with --resources='{{\"{TRIAL_RESOURCE}\": 1000}}' "
            "(see cluster.yaml)"
        )
    problems = check_submission(spec, cluster, tuple(str(n.get("node_ip", "")) for n in nodes))
    try:
        node_plan(spec, nodes, cluster)  # what the cluster's nodes could not place: refused before submitting
    except SpecError as exc:
        problems += exc.problems
    if problems:
        raise SpecError(problems, f"{spec_source} on {cluster.path}")
    return head, nodes


def node_plan(spec: SweepSpec, nodes: list[dict] | None, cluster: Cluster | None = None) -> tuple[dict, dict]:
    """The cluster's resources (summed over its alive ``nodes``) and the sweep's resource plan (``plan_resources``;
    raises SpecError with what cannot be placed). On an autoscaling cluster the plan counts the node types the
    autoscaler can add (``nodes`` None: the head alone, before the head is asked)."""
    from ._plan import planned_count
    from ._sweep import plan_resources

    total: dict[str, float] = {}
    for n in nodes or []:
        for k, v in (n.get("resources_total") or {}).items():
            total[k] = total.get(k, 0.0) + float(v)
    shape = cluster.shape(nodes) if cluster is not None and cluster.autoscales else None
    return total, plan_resources(spec, total, planned_count(spec), shape)


def dry_run_lines(spec: SweepSpec, nodes: list[dict], cluster: Cluster | None = None) -> list[str]:
    """What ``launch sweep --cluster ... --dry-run`` prints after every check passed."""
    from ._plan import planned_count

    total, plan = node_plan(spec, nodes, cluster)
    r = spec.resources
    worker = f"{r.workers_per_trial} worker(s) x {r.cpus_per_worker:g} CPU" + (
        f" + {plan['gpus_per_worker']:g} GPU" if plan["use_gpu"] else ""
    )
    if not plan["add_nodes"]:
        return [
            f"{planned_count(spec)} trials, up to {plan['max_concurrent_trials']} at a time on the cluster's "
            f"{total.get('CPU', 0):g} CPU(s) and {total.get('GPU', 0):g} GPU(s), {worker} each; every check "
            "passed; nothing submitted"
        ]
    types = {t.name: t for t in cluster.node_types}
    starts = ", ".join(f"{n} x {types[name].describe()}" for name, n in plan["add_nodes"].items())
    return [
        f"node types the sweep will start: {starts} (the autoscaler starts them when the sweep asks; it waits up to "
        f"resources.node_wait_s = {r.node_wait_s:g} s, and they scale down after the cluster's idle timeout)",
        f"{planned_count(spec)} trials, up to {plan['max_concurrent_trials']} at a time once they are up, "
        f"{worker} each ({plan['node_slots']} worker(s) per node, {plan['worker_cpus']} CPU(s) each for torch "
        "threads and loader processes); every check passed; nothing submitted",
    ]
