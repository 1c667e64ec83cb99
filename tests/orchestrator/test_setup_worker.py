"""The worker launcher of a local lean Ray (orchestrator/_lean/setup_worker.py), run as the raylet runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tailsweep.orchestrator._lean.setup_worker as setup_worker

SCRIPT = Path(setup_worker.__file__)


def launch(tmp_path, context: dict | None, language="PYTHON"):
    """Start a stand-in worker through the launcher; returns what it saw (argv, environment)."""
    worker = tmp_path / "worker.py"
    worker.write_text(
        "import json, os, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items() "
        "if k.startswith('TS_')}, 'ray': 'ray' in sys.modules}))\n"
    )
    args = [str(worker), "--node-ip-address=127.0.0.1", "--startup-token=7"]
    if context is not None:
        args.append(f"--serialized-runtime-env-context={json.dumps(context)}")
    args.append(f"--language={language}")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TS_HOME": "/h"},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_plain_context_execs_the_worker_with_its_environment(tmp_path):
    seen = launch(
        tmp_path,
        {
            "env_vars": {"TS_A": "x${TS_HOME}", "TS_B": "${TS_NOPE}y", "TS_C": "${TS_A}z"},
            "py_executable": sys.executable,
            "command_prefix": [],
            "java_jars": [],
            "override_worker_entrypoint": None,
        },
    )
    # the worker gets every argument but the two the launcher reads, in order
    assert seen["argv"] == ["--node-ip-address=127.0.0.1", "--startup-token=7"]
    # the same expansion as Ray's update_envs: in order, unknown ${X} -> ""
    assert seen["env"] == {"TS_HOME": "/h", "TS_A": "x/h", "TS_B": "y", "TS_C": "x/hz"}


def test_no_context_is_a_plain_context(tmp_path):
    assert launch(tmp_path, None)["argv"] == ["--node-ip-address=127.0.0.1", "--startup-token=7"]


def test_any_other_context_goes_to_rays_own_launcher(tmp_path):
    # a command prefix (containers use one) is Ray's to apply: its launcher runs `bash -c "PREFIX exec python ..."`
    seen = launch(tmp_path, {"command_prefix": ["TS_FROM_PREFIX=1"], "env_vars": {"TS_A": "1"}})
    assert seen["env"] == {"TS_HOME": "/h", "TS_A": "1", "TS_FROM_PREFIX": "1"}
    assert seen["argv"] == ["--node-ip-address=127.0.0.1", "--startup-token=7"]


@pytest.mark.parametrize(
    "context",
    [
        {"py_executable": "/opt/other/python"},
        {"override_worker_entrypoint": "/w.py"},
        {"java_jars": ["a.jar"]},
        {"something_new": 1},
    ],
)
def test_contexts_it_leaves_to_ray(context):
    assert setup_worker.plain_exec(context, "PYTHON") is None
    assert setup_worker.plain_exec({}, "JAVA") is None
    assert setup_worker.plain_exec({"env_vars": {"A": "1"}}, "PYTHON") == sys.executable


def test_rays_launcher_is_where_ray_has_it():
    assert Path(setup_worker.ray_setup_worker()).is_file()


def test_the_context_ray_writes_for_a_sweep_takes_the_fast_path():
    # what Ray's runtime-env agent hands the raylet for a job whose runtime env is only variables (a lean
    # sweep's): a Ray upgrade that adds a field makes this fail rather than every worker fall back silently
    from ray._private.runtime_env.context import RuntimeEnvContext

    context = json.loads(RuntimeEnvContext(env_vars={"TAILSWEEP_LOCAL_RAY": "1"}).serialize())
    assert setup_worker.plain_exec(context, "PYTHON") == sys.executable
