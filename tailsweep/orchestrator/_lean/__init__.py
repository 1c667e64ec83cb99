"""The lean per-trial path (``resources.lean``): every use of Ray's private API, in one room.

* ``inline.py``: the Train controller inside the trial's process, worker and sync-actor reuse, the
  placement-group sweeper (Ray Train V2 internals: ``TrainController``, ``WorkerGroup`` steps, ...).
* ``on_worker.py``: what kept Train workers run between trials (process groups, GPU memory, a Ray Train fix).
* ``setup_worker.py``: the worker launcher of a local lean Ray (over ``ray_constants.SETUP_WORKER_FILENAME``).
* here: the version gate, the Ray Train settings a lean sweep sets, and the local-Ray start-up patches.

Tested on one Ray minor version (:data:`TESTED_RAY`, the pin of constraints.txt). On any other version
:func:`unsupported` says why and the sweep runs the plain Train V2 path (public API only) instead; the
signatures of every private method overridden or called are checked in ``tests/orchestrator/test_lean.py``,
so a Ray bump fails ``make test``, not a user's sweep. Nothing outside the lean path imports this package's
modules (``_sweep`` and ``_trial`` import them only when the lean path is on).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TESTED_RAY = "2.60"

# Internal Ray Train V2 settings of the lean path. Gains measured by benchmarks/overhead.py (docs/benchmarks.md).
LEAN_ENV = {
    # The Train controller polls its workers every 2 s: ~1 s before a report reaches Tune and a ~5 s
    # tail after the last one. Reports are queued, not lost, at any interval. Each poll costs CPU in
    # the controller and the worker: 0.1 s cost ~2 CPU-seconds per 40 s trial more than 0.5 s, which
    # two concurrent trials on 2 cores pay in training speed (benchmarks/overhead.py, 4% of sweep wall).
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",
    # A watcher thread per run for cloud preemption notices; this tool restarts failed groups itself.
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    # Train's Prometheus metrics: CPU per controller and worker that a sweep never reads.
    "RAY_TRAIN_METRICS_ENABLED": "0",
}
# Also for a local Ray that a lean sweep starts itself (never a cluster it joins):
# - workers start through setup_worker.py, which skips the Ray import of Ray's own setup_worker.py;
# - inline.LOCAL_RAY_ENV tells each trial's controller there is no autoscaler to send resource requests to;
# - without the dashboard, LOCAL_LEAN_ENV: the node's dashboard agent still samples every process's CPU and
#   memory every 5 s for metrics nothing reads here, once a minute instead.
# - unless --verbose prints worker output, no log monitor process.
LOCAL_LEAN_ENV = {"REPORTER_UPDATE_INTERVAL_MS": "60000"}


def unsupported(version: str | None = None) -> str | None:
    """None if the lean path may run on this Ray (``version``, default the installed one), else why not."""
    if version is None:
        import ray

        version = ray.__version__
    minor = ".".join(version.split(".")[:2])
    if minor == TESTED_RAY:
        return None
    return (
        f"resources.lean: Ray {version} is not the version the lean path was tested with ({TESTED_RAY}.x); "
        "running the plain Train V2 path instead (same results, more per-trial start-up)"
    )


@contextlib.contextmanager
def local_ray_start(runtime_env: dict, verbose: bool, dashboard: bool):
    """Around ``ray.init`` of a local Ray a lean sweep starts: workers through our launcher, no log monitor
    unless worker output is printed, the node agent's slower sampling; all restored afterwards."""
    import ray._private.ray_constants as ray_constants
    from ray._private.node import Node

    from .inline import LOCAL_RAY_ENV

    runtime_env["env_vars"][LOCAL_RAY_ENV] = "1"  # no autoscaler here: see inline.LocalScaling
    saved = {k: os.environ.get(k) for k in LOCAL_LEAN_ENV}
    if not dashboard:  # read by the node's dashboard agent, which inherits this process's environment
        os.environ.update(LOCAL_LEAN_ENV)
    setup_worker, start_log_monitor = ray_constants.SETUP_WORKER_FILENAME, Node.start_log_monitor
    # os.path.join(ray's workers dir, an absolute path) is that path: the raylet starts workers through ours
    ray_constants.SETUP_WORKER_FILENAME = str(Path(__file__).with_name("setup_worker.py"))
    if not verbose:
        # The log monitor tails every worker's log files to publish their lines to drivers that print
        # them; with log_to_driver off nothing subscribes. ~0.9 % of a core while a sweep runs (0.8 of
        # 92 CPU-seconds, measured), taken from two concurrent trials' training. Worker errors reach Tune
        # by exceptions, not logs; the log files stay in the session directory.
        Node.start_log_monitor = lambda node: None
    try:
        yield
    finally:
        ray_constants.SETUP_WORKER_FILENAME, Node.start_log_monitor = setup_worker, start_log_monitor
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
