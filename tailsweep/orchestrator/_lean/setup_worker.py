"""Starts a Ray worker process without importing Ray twice (the local Ray a lean sweep starts).

Ray's raylet starts every Python worker as ``python setup_worker.py default_worker.py ARGS``: that script
imports Ray (0.35-0.5 CPU-seconds here, measured) only to read the worker's runtime-env context, then
execs ``bash -c "exec python default_worker.py ARGS"``, which imports Ray again. A sweep starts a fresh
Train worker process for every trial, so on 2 busy cores that first import is taken from the other
trial's training. For the contexts a tailsweep sweep gives its workers -- environment variables at most:
no command prefix (container), no other interpreter (conda, uv, pip), no entry-point override, not Java
-- this script does the same exec with the standard library alone (the same variable expansion as
``ray._private.utils.update_envs``); any other context goes to Ray's own ``setup_worker.py`` unchanged.

Run as a script by the raylet, never imported by the package: standard library only. Installed by
``_lean.local_ray_start`` for the Ray it starts itself (``resources.lean``), over ray 2.60's
``ray_constants.SETUP_WORKER_FILENAME`` (pinned by constraints.txt; every integration test starts its
workers through it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from importlib.util import find_spec

KNOWN_KEYS = {"command_prefix", "env_vars", "py_executable", "override_worker_entrypoint", "java_jars"}


def plain_exec(context: dict, language: str | None) -> str | None:
    """The interpreter for a context this script can start by itself, else None."""
    if os.name != "posix" or language != "PYTHON" or set(context) - KNOWN_KEYS:
        return None  # (on Windows an exec is a new process: the raylet would lose the worker's pid)
    if context.get("command_prefix") or context.get("override_worker_entrypoint") or context.get("java_jars"):
        return None
    py = context.get("py_executable") or sys.executable
    return py if py == sys.executable else None


def update_env(env_vars: dict[str, str] | None) -> None:
    """As ``ray._private.utils.update_envs``: in order, ${X} expands from the environment so far, an
    unknown ${X} becomes ""."""
    for key, value in (env_vars or {}).items():
        os.environ[key] = re.sub(r"\$\{[A-Z0-9_]+\}", "", os.path.expandvars(value))


def ray_setup_worker() -> str:
    spec = find_spec("ray")  # locates the package without importing it
    return os.path.join(os.path.dirname(spec.origin), "_private", "workers", "setup_worker.py")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(add_help=False)  # the same two options as Ray's setup_worker.py
    parser.add_argument("--serialized-runtime-env-context", type=str)
    parser.add_argument("--language", type=str)
    args, rest = parser.parse_known_args(argv)
    try:
        context = json.loads(args.serialized_runtime_env_context or "{}")
    except ValueError:
        context = None
    plan = plain_exec(context, args.language) if isinstance(context, dict) else None
    if plan is None:
        os.execv(sys.executable, [sys.executable, ray_setup_worker(), *argv])
    update_env(context.get("env_vars"))
    os.execv(plan, [plan, *rest])


if __name__ == "__main__":
    main(sys.argv[1:])
