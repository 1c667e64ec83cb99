"""Server processes: ``launch mlflow-server`` (a tracking server for a cluster's sweeps) and ``launch ui``.

``launch mlflow-server`` serves a SQLite store and proxied artifacts under ``--dir``. Bound beyond loopback it
runs MLflow's basic-auth app (``mlflow server --app-name basic-auth``, the ``mlflow[auth]`` extra); ``--auth``
turns it on for a loopback address too (a TLS reverse proxy on the same machine), and a ``--dir`` that has been
served with authentication keeps it. ``--insecure-no-auth`` is the only way to serve beyond loopback without it.

The auth app's files, all under ``--dir`` and all written by this module (the secrets with mode 0600, created
once and never printed):

- ``basic_auth.ini`` -- MLflow's auth configuration (``MLFLOW_AUTH_CONFIG_PATH``): the user store
  ``basic_auth.db`` beside it, the admin user ``admin``, ``default_permission = READ`` (a user may read every
  experiment, and edits only those granted or created). Rewritten on every start, so the directory can move.
- ``admin-credentials`` -- the admin's user name and a generated password, in the format of MLflow's own
  credentials file (``~/.mlflow/credentials``), so that copying it there is all a client needs. MLflow ships no
  default admin password: the first start hands this one over (``MLFLOW_AUTH_ADMIN_PASSWORD``).
- ``sweeps-credentials`` (``--sweeps-user``) -- user ``sweeps``: no admin, EDIT on every experiment through a
  role (``roles/permissions``, resource ``experiment``, pattern ``*``), MANAGE on the experiments it creates
  (MLflow grants a creator that).
- ``server-secret`` -- Flask's secret key (``MLFLOW_FLASK_SERVER_SECRET_KEY``, CSRF), stable across restarts.

Both commands run the server in its own process group and stop the whole group on Ctrl-C or SIGTERM (MLflow
starts uvicorn workers: stopping only the first process would leave them holding the port).
"""

from __future__ import annotations

import configparser
import contextlib
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ADMIN_USER = "admin"
SWEEPS_USER = "sweeps"
SWEEPS_ROLE = "tailsweep-sweeps"
# MLflow's credentials-file keys (mlflow.utils.credentials: the environment variables' names, lower case)
USER_KEY, PASSWORD_KEY = "mlflow_tracking_username", "mlflow_tracking_password"


class ServerError(RuntimeError):
    """A problem that stops ``launch mlflow-server`` before or while it starts (one message, with the fix)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def port_problem(host: str, port: int) -> str | None:
    """None if ``host:port`` can be listened on now, else why not (another process holds it, say)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # as servers bind (uvicorn does): only a listening socket refuses, not connections in TIME_WAIT
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return (
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another process holds the port; "
                f"pass --port with a free one (e.g. --port {port + 1}) or stop that process"
            )
    return None


# --- the auth app's files -------------------------------------------------------------------------
@dataclass(frozen=True)
class AuthFiles:
    """Where the basic-auth app's configuration and secrets live under a server's ``--dir``."""

    root: Path

    @property
    def ini(self) -> Path:
        return self.root / "basic_auth.ini"

    @property
    def db(self) -> Path:
        return self.root / "basic_auth.db"

    @property
    def admin(self) -> Path:
        return self.root / "admin-credentials"

    @property
    def sweeps(self) -> Path:
        return self.root / "sweeps-credentials"

    @property
    def secret(self) -> Path:
        return self.root / "server-secret"

    def in_use(self) -> bool:
        """Whether this directory has been served with authentication before."""
        return self.db.exists() or self.admin.exists()


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only (0600 from the start: never a moment world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def credentials_text(username: str, password: str) -> str:
    """A credentials file as MLflow's clients read it (``~/.mlflow/credentials``)."""
    return f"[mlflow]\n{USER_KEY} = {username}\n{PASSWORD_KEY} = {password}\n"


def read_credentials(path: Path) -> tuple[str, str]:
    """(user name, password) from a credentials file written by :func:`credentials_text`."""
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(path.read_text())
        section = config["mlflow"]
        return section[USER_KEY], section[PASSWORD_KEY]
    except (OSError, configparser.Error, KeyError) as exc:
        raise ServerError(
            f"{path}: not a readable credentials file ([mlflow] with {USER_KEY} and {PASSWORD_KEY}): {exc}"
        ) from None


def _new_password() -> str:
    return secrets.token_urlsafe(24)  # 32 characters; MLflow asks for at least 12


def prepare_auth(files: AuthFiles) -> tuple[dict[str, str], bool]:
    """Write the auth app's configuration (and, on first start, its secrets); returns the server's environment
    and whether the admin password was created now."""
    files.root.mkdir(parents=True, exist_ok=True)
    config = configparser.ConfigParser(interpolation=None)
    config["mlflow"] = {
        "default_permission": "READ",
        "database_uri": f"sqlite:///{files.db.resolve()}",
        "admin_username": ADMIN_USER,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        # MLflow checks the password hash on every request (scrypt: 0.9 s per request measured here, on a
        # loaded 2-core machine; a sweep makes ~120). Its cache skips the check for a credential seen in the last
        # 5 minutes. With one worker (--workers 1) a password change through the API reaches it at once.
        "auth_cache_ttl_seconds": "300",
    }
    with open(files.ini, "w") as f:
        f.write("# Written by `launch mlflow-server` on every start (tailsweep/orchestrator/_server.py).\n")
        config.write(f)
    fresh = not files.db.exists() or files.db.stat().st_size == 0  # no user yet
    created = False
    if not files.admin.exists():
        if not fresh:
            raise ServerError(
                f"{files.admin} is gone but the user store {files.db} still holds the admin user, whose password "
                "only that file had. Restore the file, or start over without the users: move "
                f"{files.db} away (runs and artifacts are kept) and start again"
            )
        _write_private(files.admin, credentials_text(ADMIN_USER, _new_password()))
        created = True
    for path, text in ((files.secret, secrets.token_hex(32)), (files.db, "")):  # the store holds password hashes
        if not path.exists():
            _write_private(path, text)
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(files.ini),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": files.secret.read_text().strip(),
    }
    if fresh:  # MLflow reads it only to create the admin user, on the first start
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = read_credentials(files.admin)[1]
    return env, created


def _rest(uri: str, credentials: tuple[str, str], endpoint: str, method: str, **kwargs):
    """One call to the server's REST API as ``credentials`` (MLflow's own HTTP client); the response."""
    from mlflow.utils.rest_utils import MlflowHostCreds, http_request

    creds = MlflowHostCreds(uri, username=credentials[0], password=credentials[1])
    return http_request(creds, endpoint, method, max_retries=2, timeout=60, **kwargs)


def _expect(resp, what: str, *ok: int) -> dict:
    if resp.status_code not in (200, *ok):
        raise ServerError(f"{what}: HTTP {resp.status_code}: {resp.text[:300]}")
    return resp.json() if resp.content and resp.status_code == 200 else {}


def create_sweeps_user(uri: str, files: AuthFiles) -> bool:
    """Make sure user ``sweeps`` exists with EDIT on every experiment and no admin rights, its password in
    ``sweeps-credentials``; returns whether anything was created now."""
    from mlflow.server.auth import routes

    admin = read_credentials(files.admin)
    if not files.sweeps.exists():
        if _rest(uri, admin, routes.GET_USER, "GET", params={"username": SWEEPS_USER}).status_code == 200:
            raise ServerError(
                f"user '{SWEEPS_USER}' exists on this server but {files.sweeps}, which held its password, is gone; "
                f"delete the user (as admin: DELETE {routes.DELETE_USER}) or restore the file"
            )
        _write_private(files.sweeps, credentials_text(SWEEPS_USER, _new_password()))
    password = read_credentials(files.sweeps)[1]
    created = _rest(uri, admin, routes.CREATE_USER, "POST", json={"username": SWEEPS_USER, "password": password})
    created = _expect(created, f"creating user '{SWEEPS_USER}'", 400, 409).get("user") is not None
    roles = _expect(_rest(uri, admin, routes.LIST_ROLES, "GET", params={"workspace": "default"}), "listing roles")
    role = next((r for r in roles.get("roles", []) if r.get("name") == SWEEPS_ROLE), None)
    if role is None:
        body = {"workspace": "default", "name": SWEEPS_ROLE, "description": "tailsweep sweeps: EDIT on experiments"}
        role = _expect(_rest(uri, admin, routes.CREATE_ROLE, "POST", json=body), "creating a role")["role"]
        grant = {"role_id": role["id"], "resource_type": "experiment", "resource_pattern": "*", "permission": "EDIT"}
        _expect(_rest(uri, admin, routes.ADD_ROLE_PERMISSION, "POST", json=grant), "granting EDIT on experiments")
        created = True
    assigned = _rest(uri, admin, routes.ASSIGN_ROLE, "POST", json={"username": SWEEPS_USER, "role_id": role["id"]})
    _expect(assigned, f"giving user '{SWEEPS_USER}' its role", 400, 409)
    return created


# --- the servers ----------------------------------------------------------------------------------
@dataclass
class ServerPlan:
    """What ``launch mlflow-server`` will run, checked and prepared; nothing is listening yet."""

    cmd: list[str]
    url: str  # as printed: the machine's name when bound to every interface
    local_url: str  # where this machine reaches it
    store: Path
    auth: AuthFiles | None
    admin_created: bool = False
    sweeps_user: bool = False
    env: dict[str, str] = field(default_factory=dict, repr=False)  # holds secrets: never print it

    def warnings(self, host: str) -> list[str]:
        if self.auth is None and not is_loopback(host):
            return [
                f"--insecure-no-auth: listening on {host} without authentication: anyone who reaches port "
                f"{self.url.rsplit(':', 1)[1]} can read, change and delete every run and artifact"
            ]
        if self.auth is None and AuthFiles(self.store).in_use():
            return [f"--insecure-no-auth: {self.store} was served with authentication; now it is served without"]
        return []


def mlflow_server_command(host: str, port: int, store_dir: str | Path, auth: bool = False) -> list[str]:
    """``mlflow server`` with a SQLite store and proxied artifacts under ``store_dir`` (+ the basic-auth app)."""
    d = Path(store_dir).expanduser().resolve()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{d / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", str(d / "artifacts"), "--host", host, "--port", str(port), "--workers", "1"]
    return [*cmd, "--app-name", "basic-auth"] if auth else cmd


def plan_mlflow_server(
    host: str,
    port: int,
    store_dir: str | Path,
    auth: bool = False,
    insecure_no_auth: bool = False,
    sweeps_user: bool = False,
) -> ServerPlan:
    """Check the options and the port, write the auth app's files; raises ServerError naming the fix."""
    if auth and insecure_no_auth:
        raise ServerError("--auth and --insecure-no-auth contradict each other; pass one")
    if sweeps_user and insecure_no_auth:
        raise ServerError("--sweeps-user needs authentication; drop --insecure-no-auth")
    if (why := port_problem(host, port)) is not None:
        raise ServerError(why)
    store = Path(store_dir).expanduser().resolve()
    files = AuthFiles(store)
    on = not insecure_no_auth and (auth or sweeps_user or not is_loopback(host) or files.in_use())
    shown = socket.getfqdn() if host in ("0.0.0.0", "::") else host
    url = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    local = {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(host, host)
    local_url = f"http://{f'[{local}]' if ':' in local else local}:{port}"
    try:
        store.mkdir(parents=True, exist_ok=True)
        env, created = prepare_auth(files) if on else ({}, False)
    except OSError as exc:
        raise ServerError(f"--dir {store}: cannot write there ({exc.strerror or exc}); pass a writable --dir") from None
    # MLflow's GenAI job runner (an extra consumer process) serves nothing a sweep uses
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = os.environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return ServerPlan(
        mlflow_server_command(host, port, store, on),
        url,
        local_url,
        store,
        files if on else None,
        created,
        sweeps_user,
        env,
    )


def _wait_until_up(proc: subprocess.Popen, url: str, timeout: float = 600) -> bool:
    """Poll ``/health`` (open to everyone, also with the auth app) until it answers; False if the server
    exited first."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), urllib.request.urlopen(url + "/health", timeout=5) as r:  # noqa: S310
            if r.status == 200:
                return True
        time.sleep(0.5)
    raise ServerError(f"the MLflow server at {url} did not answer within {timeout:.0f} s")


def run_mlflow_server(plan: ServerPlan, say: Callable[[str], None]) -> int:
    """Serve until Ctrl-C or SIGTERM; with ``--sweeps-user``, create that user once the server answers (``say``
    reports it). Returns the server's exit code (0 when stopped by a signal)."""

    def ready(proc: subprocess.Popen) -> None:
        if not plan.sweeps_user or plan.auth is None:
            return
        if not _wait_until_up(proc, plan.local_url):
            return  # the server exited: serve() returns its code
        created = create_sweeps_user(plan.local_url, plan.auth)
        say(
            f"sweeps user: {plan.auth.sweeps} ({'created now; ' if created else ''}mode 0600; user "
            f"'{SWEEPS_USER}', EDIT on every experiment, not an admin)"
        )

    return serve(plan.cmd, {**os.environ, **plan.env}, ready)


def ui_command(uri: str, host: str, port: int) -> list[str]:
    """``mlflow ui`` on a sweep's store."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]


def run_ui(uri: str, host: str, port: int) -> int:
    # MLflow's GenAI job runner (huey consumer processes) serves nothing the runs view uses
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),
    }
    return serve(ui_command(uri, host, port), env)


def serve(
    cmd: list[str], env: dict[str, str] | None = None, ready: Callable[[subprocess.Popen], None] | None = None
) -> int:
    """Run a server command in its own process group until it exits, Ctrl-C or SIGTERM; either signal stops the
    whole group. ``ready(proc)`` runs once right after the start (a ServerError from it stops the server and is
    raised). Returns the exit code (0 when stopped by a signal)."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    stopped = []

    def stop(sig, frame):
        stopped.append(sig)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if ready is not None:
            ready(proc)
        code = _wait(proc)
        if stopped:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=15)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
    return 0 if stopped else code


def _wait(proc: subprocess.Popen) -> int:
    while True:
        try:
            return proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
