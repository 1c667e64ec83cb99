"""`launch mlflow-server`'s choices and files, without starting a server (the real one: tests/integration/test_auth.py)."""

from __future__ import annotations

import socket
import stat

import pytest
from click.testing import CliRunner

from tailsweep.orchestrator._server import (
    AuthFiles,
    ServerError,
    credentials_text,
    is_loopback,
    plan_mlflow_server,
    prepare_auth,
    read_credentials,
)
from tailsweep.orchestrator._tracking import client_env
from tailsweep.orchestrator.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("host", "loopback"), [("127.0.0.1", True), ("127.0.1.1", True), ("::1", True), ("localhost", True)]
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.0.10") and not is_loopback("head.example.org")


def test_beyond_loopback_the_server_runs_mlflows_basic_auth_app_with_a_generated_admin_password(tmp_path):
    plan = plan_mlflow_server("0.0.0.0", _free_port(), tmp_path / "srv")
    assert plan.auth is not None and plan.cmd[-2:] == ["--app-name", "basic-auth"] and plan.admin_created
    files = plan.auth
    user, password = read_credentials(files.admin)
    assert user == "admin" and len(password) >= 24
    for secret in (files.admin, files.secret, files.db):  # the store holds the password hashes
        assert _mode(secret) == 0o600, secret
    assert plan.env["MLFLOW_AUTH_CONFIG_PATH"] == str(files.ini)
    assert plan.env["MLFLOW_AUTH_ADMIN_PASSWORD"] == password  # handed to MLflow on the first start only
    assert plan.env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == files.secret.read_text()
    assert f"sqlite:///{files.db}" in files.ini.read_text() and password not in files.ini.read_text()
    assert password not in repr(plan) and plan.warnings("0.0.0.0") == []


def test_a_second_start_keeps_the_password_and_the_secret(tmp_path):
    files = AuthFiles(tmp_path)
    env, created = prepare_auth(files)
    files.db.write_bytes(b"SQLite format 3\0")  # the server has created its users
    again, created_again = prepare_auth(files)
    assert created and not created_again
    assert again["MLFLOW_FLASK_SERVER_SECRET_KEY"] == env["MLFLOW_FLASK_SERVER_SECRET_KEY"]
    assert "MLFLOW_AUTH_ADMIN_PASSWORD" not in again  # the admin exists: nothing to hand over
    files.admin.unlink()
    with pytest.raises(ServerError, match="admin-credentials is gone but the user store"):
        prepare_auth(files)


def test_loopback_serves_without_auth_unless_asked_or_already_served_with_it(tmp_path):
    port = _free_port()
    assert plan_mlflow_server("127.0.0.1", port, tmp_path / "a").auth is None
    assert "--app-name" not in plan_mlflow_server("127.0.0.1", port, tmp_path / "a").cmd
    assert plan_mlflow_server("127.0.0.1", port, tmp_path / "b", auth=True).auth is not None
    assert plan_mlflow_server("127.0.0.1", port, tmp_path / "c", sweeps_user=True).auth is not None
    # a directory once served with authentication keeps it
    assert plan_mlflow_server("127.0.0.1", port, tmp_path / "b").auth is not None
    off = plan_mlflow_server("127.0.0.1", port, tmp_path / "b", insecure_no_auth=True)
    assert off.auth is None and "was served with authentication" in off.warnings("127.0.0.1")[0]


def test_insecure_no_auth_beyond_loopback_warns(tmp_path):
    plan = plan_mlflow_server("0.0.0.0", _free_port(), tmp_path / "srv", insecure_no_auth=True)
    assert plan.auth is None and not (tmp_path / "srv" / "admin-credentials").exists()
    (warning,) = plan.warnings("0.0.0.0")
    assert "without authentication" in warning and "read, change and delete every run" in warning


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--auth", "--insecure-no-auth"], "--auth and --insecure-no-auth contradict each other"),
        (["--sweeps-user", "--insecure-no-auth"], "--sweeps-user needs authentication"),
    ],
)
def test_contradicting_flags_exit_2_before_anything_is_written(tmp_path, flags, message):
    result = CliRunner().invoke(main, ["mlflow-server", "--dir", str(tmp_path / "srv"), *flags])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "srv").exists()


def test_a_taken_port_exits_2(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = CliRunner().invoke(main, ["mlflow-server", "--port", str(port), "--dir", str(tmp_path / "srv")])
    assert result.exit_code == 2 and "another process holds the port" in result.output


def test_the_credentials_files_are_what_mlflows_clients_read(tmp_path, monkeypatch):
    """Copied to ~/.mlflow/credentials, a file `launch mlflow-server` writes is read by MLflow's own client code;
    the environment wins over it, as in MLflow. client_env() is what a cluster's job receives."""
    from mlflow.utils.credentials import read_mlflow_creds

    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_SERVER_CERT_PATH"):
        monkeypatch.delenv(var, raising=False)
    assert client_env() == {}
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(credentials_text("sweeps", "from-the-file-0123"))
    assert tuple(read_mlflow_creds()) == ("sweeps", "from-the-file-0123")
    assert client_env() == {"MLFLOW_TRACKING_USERNAME": "sweeps", "MLFLOW_TRACKING_PASSWORD": "from-the-file-0123"}
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "from-the-environment")
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/shared/ca.pem")
    assert client_env() == {
        "MLFLOW_TRACKING_USERNAME": "sweeps",
        "MLFLOW_TRACKING_PASSWORD": "from-the-environment",
        "MLFLOW_TRACKING_SERVER_CERT_PATH": "/shared/ca.pem",
    }


def _self_signed(tmp_path):
    """A certificate and key for 127.0.0.1 (what README's TLS steps make with openssl)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tmp_path / "tls.crt", tmp_path / "tls.key"


def test_an_https_server_is_checked_with_mlflows_tls_settings(tmp_path, monkeypatch):
    """Behind a TLS proxy with its own certificate: untrusted -> the fix names MLFLOW_TRACKING_SERVER_CERT_PATH;
    trusted -> on to the password check (this endpoint, like MLflow's basic auth, answers its API with 401)."""
    import http.server
    import ssl
    import threading

    from tailsweep.orchestrator._tracking import tracking_server_problem

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 401)
            self.end_headers()

        def log_message(self, *args):
            pass

    cert, key = _self_signed(tmp_path)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    uri = f"https://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_INSECURE_TLS"):
        monkeypatch.delenv(var, raising=False)
    try:
        monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH", raising=False)
        untrusted = tracking_server_problem(uri, timeout=10)
        assert "TLS certificate is not trusted here" in untrusted and "MLFLOW_TRACKING_SERVER_CERT_PATH" in untrusted
        monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert))
        assert "requires a user name and password, and none was found" in tracking_server_problem(uri, timeout=10)
    finally:
        httpd.shutdown()
        httpd.server_close()
