"""The lean path's fence (issue 19): every private Ray method it overrides or calls keeps the signature it was
written against, and on another Ray minor version a sweep takes the plain Train V2 path and says so.

A Ray upgrade that changes any of these fails here, in ``make test``, instead of in a user's sweep."""

from __future__ import annotations

import inspect
import io

import pytest
from rich.console import Console

from tailsweep.orchestrator import _lean
from tailsweep.orchestrator._sweep import lean_or_plain
from tailsweep.orchestrator.spec import load_spec


def _private_api():
    import ray._private.ray_constants as ray_constants
    from ray._private.node import Node
    from ray.experimental import internal_kv
    from ray.train.torch import TorchTrainer
    from ray.train.v2._internal.execution.checkpoint.sync_actor import SynchronizationActor
    from ray.train.v2._internal.execution.controller import TrainController
    from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy
    from ray.train.v2._internal.execution.worker_group import WorkerGroup, state, worker_group
    from ray.train.v2._internal.execution.worker_group.worker import Worker
    from ray.train.v2._internal.util import invoke_context_managers

    return {
        # overridden by inline.ReusingWorkerGroup
        WorkerGroup._create_placement_group: ["self", "scaling_config", "worker_group_context"],
        WorkerGroup._create_workers: [
            "self",
            "num_workers",
            "placement_group",
            "resources_per_worker",
            "placement_group_bundle_indices",
            "starting_world_rank",
            "world_size",
            "replica_group_size",
        ],
        WorkerGroup._init_train_context: ["self", "workers", "sync_actor"],
        WorkerGroup.shutdown: ["self"],
        # called by it
        WorkerGroup._get_worker_runtime_env: ["custom_runtime_env"],
        WorkerGroup._assign_worker_ranks: ["workers", "starting_world_rank", "world_size", "replica_group_size"],
        WorkerGroup.get_latest_poll_status: ["self"],
        WorkerGroup.has_started: ["self"],
        WorkerGroup._assert_active: ["self"],
        WorkerGroup._clear_state: ["self"],
        Worker.__init__: [
            "self",
            "actor",
            "metadata",
            "resources",
            "distributed_context",
            "log_file_path",
            "placement_group_bundle_index",
        ],
        invoke_context_managers: ["context_managers"],
        # overridden by inline.LocalScaling
        FixedScalingPolicy.__init__: ["self", "scaling_config"],
        FixedScalingPolicy._send_resource_request: ["self"],
        FixedScalingPolicy._maybe_send_resource_request: ["self"],
        FixedScalingPolicy._cancel_resource_request: ["self"],
        # overridden by inline.InlineTorchTrainer, and the controller it runs in-process
        TorchTrainer._create_default_callbacks: ["self"],
        TorchTrainer._initialize_and_run_controller: ["self", "controller_init_kwargs"],
        TrainController.run: ["self"],
        TrainController.get_worker_group: ["self"],
        TrainController.get_result: ["self"],
        # replaced by inline.SyncActorReuse / SoloBarrier
        state._shutdown_sync_actor: ["sync_actor"],
        SynchronizationActor.broadcast_from_rank_zero: None,  # existence (an actor method)
        SynchronizationActor.set_required_ranks: None,
        SynchronizationActor.reset: None,
        SynchronizationActor.get_counter: None,
        SynchronizationActor.get_required_ranks: None,
        # the parked-group marks (inline.WorkerReuse) and the local Ray start (_lean.local_ray_start)
        internal_kv._internal_kv_put: ["key", "value", "overwrite", "namespace"],
        internal_kv._internal_kv_del: ["key", "del_by_prefix", "namespace"],
        internal_kv._internal_kv_exists: ["key", "namespace"],
        Node.start_log_monitor: ["self"],
    }, (worker_group, ray_constants)


def test_private_ray_signatures_are_the_ones_the_lean_path_was_written_against():
    api, (worker_group, ray_constants) = _private_api()
    changed = []
    for fn, params in api.items():
        if params is None:
            continue
        got = list(inspect.signature(fn).parameters)
        if got != params:
            changed.append(f"{fn.__qualname__}: {got} (written against {params})")
    assert not changed, "Ray's private API changed under the lean path (tailsweep/orchestrator/_lean): " + "; ".join(
        changed
    )
    assert hasattr(worker_group, "SynchronizationActor")  # replaced by SyncActorReuse
    assert ray_constants.SETUP_WORKER_FILENAME == "setup_worker.py"  # replaced by _lean/setup_worker.py


def test_lean_runs_only_on_the_tested_ray_minor_version():
    import ray

    assert ray.__version__.startswith(_lean.TESTED_RAY + ".")  # the pin and the gate agree
    assert _lean.unsupported("2.60.3") is None
    why = _lean.unsupported("2.61.0")
    assert "Ray 2.61.0 is not the version the lean path was tested with (2.60.x)" in why and "plain" in why


@pytest.mark.parametrize(("version", "lean"), [("2.60.0", True), ("2.61.0", False), ("3.0.1", False)])
def test_another_ray_minor_version_takes_the_plain_path_and_says_so(version, lean):
    out = io.StringIO()
    spec = lean_or_plain(load_spec(None, []), Console(file=out, width=300), version)
    assert spec.resources.lean is lean
    assert ("running the plain Train V2 path" in out.getvalue()) is not lean
    off = lean_or_plain(load_spec(None, ["resources.lean=false"]), Console(file=io.StringIO()), "2.61.0")
    assert off.resources.lean is False


def test_the_plain_path_does_not_import_the_private_api():
    import subprocess
    import sys

    code = (
        "import sys; import tailsweep.orchestrator._sweep, tailsweep.orchestrator._trial, "
        "tailsweep.orchestrator.cli; "
        "print(any(m.startswith('tailsweep.orchestrator._lean.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
