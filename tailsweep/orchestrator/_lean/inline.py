"""The lean trial path: the Ray Train controller runs inside the trial's own process.

A plain ``TorchTrainer.fit()`` inside a Tune trial starts, in series, a controller actor (a fresh Python
process that re-imports Ray Train, torch and the pickled callbacks' modules) and only then the worker
group; its ``TuneReportCallback`` adds a Ray ``Queue`` actor (one more process) to carry each report from
the controller back to the trial. ``InlineTorchTrainer`` runs the same ``TrainController`` -- same
placement group, workers, failure policy, checkpoints and callbacks -- on an event loop in the trial's
thread, and reports to Tune directly from that thread. A trial then starts two processes in series
(trial actor, reused between trials; Train worker) instead of three.

It also leaves out two actors the default callbacks start for every run (each a process, ~2 CPU-seconds
per trial, measured): the ``DatasetManager`` when the run has no Ray Datasets (tailsweep reads its
Parquet tables in the workers), and the detached ``PlacementGroupCleaner`` that removes the worker
group's placement group if the controller dies without shutting it down. Its job moves to the sweep
driver: each report carries the group's placement group id (``PLACEMENT_GROUP_KEY``) and
:class:`PlacementGroupSweeper` removes a trial's group when the trial ends, if it is still there.
And a trial process keeps Train's synchronisation actor from one worker group to the next
(:class:`SyncActorReuse`) instead of starting one per group -- a group of one worker needs none
(:class:`SoloBarrier`); where Tune reuses trial processes (FIFO),
it keeps its Train worker processes too when a run finishes cleanly, and the next trial's run starts on
them (:class:`WorkerReuse`): no process start and no Ray, torch, torchvision imports per trial.

A worker group that lost a node is retried like a preempted one, not charged to ``train.max_failures``
(:class:`NodeLossPolicy`).

Internal Ray Train V2 API (``TrainController``, ``DataParallelTrainer._initialize_and_run_controller``),
pinned to ray 2.60 by constraints.txt and covered by tests/integration (statuses, exactly-once metrics
after a worker restart, ASHA stops). The gain is measured by benchmarks/overhead.py (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from dataclasses import dataclass

from ray import tune
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
from ray.train.v2._internal.execution.callback import WorkerGroupCallback
from ray.train.v2._internal.execution.controller import TrainController
from ray.train.v2._internal.execution.failure_handling import DefaultFailurePolicy, FailureDecision
from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy
from ray.train.v2._internal.execution.worker_group import WorkerGroup
from ray.train.v2._internal.execution.worker_group import state as group_state
from ray.train.v2._internal.util import invoke_context_managers
from ray.train.v2.api.callback import UserCallback
from ray.train.v2.api.exceptions import WorkerGroupError

log = logging.getLogger(__name__)

PLACEMENT_GROUP_KEY = "trial/placement_group"  # in every result Tune sees from a lean trial
PARKED_NAMESPACE = "tailsweep-parked"  # GCS key-value namespace: one key per parked placement group (hex id)
LOCAL_RAY_ENV = "TAILSWEEP_LOCAL_RAY"  # "1" in every process of a local Ray the sweep started (_sweep._start_ray)


class TuneReport(UserCallback):
    """Hands each report to the Tune session of this thread (the trial's): no queue actor, no poll.
    Each row names the worker group's placement group, so that the driver can remove it if this
    process dies (see ``PlacementGroupNote``)."""

    placement_group: str | None = None

    def after_report(self, run_context, metrics, checkpoint):
        row = dict(metrics[0])
        if checkpoint is not None:
            row["checkpoint_path"] = checkpoint.path
        if self.placement_group:
            row[PLACEMENT_GROUP_KEY] = self.placement_group
        tune.report(row)


class PlacementGroupNote(WorkerGroupCallback):
    """Tells ``TuneReport`` (same process) the id of each worker group's placement group."""

    def __init__(self, report: TuneReport):
        self.report = report

    def after_worker_group_start(self, worker_group):
        state = worker_group.get_worker_group_state()
        self.report.placement_group = state.placement_group_handle.placement_group.id.hex()


def lean_callbacks() -> list:
    """The callbacks a lean trial adds after its metrics logger: report to Tune, note the placement group."""
    report = TuneReport()
    return [report, PlacementGroupNote(report)]


class PlacementGroupSweeper(tune.Callback):
    """Driver side: when a trial ends, removes its worker group's placement group if it is still there.

    A trial that returns has shut its group down already (nothing to do). A trial Tune stops (ASHA,
    or the last epoch under ASHA's ``max_t``) is in ``tune.report`` when the stop comes; Tune does not
    wait for its thread, so the process may exit before it releases the group -- and a placement group
    outlives the actor that created it (Ray keeps it until the job ends). A trial whose process died
    (error) is the same case."""

    def __init__(self):
        self._groups: dict[str, str] = {}
        self._parked: set[str] = set()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if pg := result.get(PLACEMENT_GROUP_KEY):
            self._groups[trial.trial_id] = pg

    def on_trial_complete(self, iteration, trials, trial, **info):
        pg = self._groups.get(trial.trial_id)
        if pg is not None and is_parked(pg):  # kept for the process's next trial (WorkerReuse)
            self._groups.pop(trial.trial_id)
            self._parked.add(pg)
            return
        self._release(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._release(trial)

    def on_experiment_end(self, trials, **info):
        for pg in sorted(self._parked):
            self._remove(pg, "a parked worker group")
        self._parked.clear()

    def _release(self, trial) -> None:
        pg = self._groups.pop(trial.trial_id, None)
        if pg is not None:
            self._remove(pg, f"trial {trial.trial_id}")

    @staticmethod
    def _remove(pg: str, what: str) -> None:
        import ray
        from ray.util.placement_group import PlacementGroup, placement_group_table

        try:
            if placement_group_table().get(pg, {}).get("state") not in (None, "REMOVED"):
                ray.util.remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg))))
                log.info("removed the placement group of %s", what)
            _kv("del", pg)
        except Exception as exc:  # best effort: never fail the sweep over a cleanup
            log.warning("could not remove the placement group of %s: %s", what, exc)


class SyncActorReuse:
    """One Train ``SynchronizationActor`` per trial process, kept from one worker group to the next.

    Ray Train starts a fresh synchronisation actor (a process: ~1.9 CPU-seconds, measured) for every
    worker group and kills it with the group. A lean trial process runs one group at a time, so it
    keeps the actor and hands it to the next group -- of the next trial Tune gives this (reused)
    process, or the restart after a worker failure -- when the barrier is idle: no rank inside it
    (``get_counter() == 0``) and not narrowed to survivors (``get_required_ranks() is None``), the
    state a fresh actor has. Otherwise (a group stopped mid-barrier) it is killed and a fresh one made.
    It dies with this process (its owner).

    Installed by :func:`install_sync_actor_reuse` in the places Ray Train looks the class and its
    shutdown up (module globals of ray 2.60, pinned in constraints.txt).
    """

    def __init__(self, actor_cls, kill):
        self._cls, self._kill = actor_cls, kill
        self._options: dict = {}
        self.handle, self._args = None, None
        self.solo = False  # the next group has one worker: a SoloBarrier, no actor (set per run)

    def options(self, **options):
        self._options = options
        return self

    def remote(self, **kwargs):
        import ray

        if self.solo:
            self.retire()
            return SoloBarrier()
        if self.handle is not None and self._args == kwargs:
            try:
                idle = ray.get([self.handle.get_counter.remote(), self.handle.get_required_ranks.remote()], timeout=30)
            except Exception:
                idle = None
            if idle == [0, None]:
                return self.handle
        self.retire()
        self.handle, self._args = self._cls.options(**self._options).remote(**kwargs), kwargs
        return self.handle

    def retire(self) -> None:
        if self.handle is not None:
            self._kill(self.handle)
            self.handle = None

    def shutdown(self, actor) -> None:
        """Stands in for Ray Train's ``_shutdown_sync_actor``: keeps the reused actor alive."""
        if actor is not self.handle and not isinstance(actor, SoloBarrier):
            self._kill(actor)


SYNC_ACTOR_ENV = "TAILSWEEP_SYNC_ACTOR"  # "1": one-worker groups get Ray's actor too (escape hatch, and A/B runs)


class _Local:
    """``.remote(...)`` of a :class:`SoloBarrier` method: runs it here, returns its value as an ObjectRef."""

    def __init__(self, fn):
        self._fn = fn

    def remote(self, *args, **kwargs):
        import ray

        return ray.put(self._fn(*args, **kwargs))


class SoloBarrier:
    """Stands in for Train's ``SynchronizationActor`` in a worker group of one worker.

    The actor is a barrier across ranks: every ``ray.train.report`` (and ``ray.train.collective`` call)
    sends it one call per rank and waits until all ranks are in, then hands rank 0's value to each. With
    one rank it only returns that value, yet it costs a process per trial process (~1.9 CPU-seconds to
    start, importing Ray Train and pandas, and ~2 % of a core while it lives, measured): work that two
    concurrent trials on 2 cores pay in training speed. This object answers the same calls (the four
    Ray Train 2.60 makes, pinned) in the calling process -- the worker, for reports; the controller, for
    ``reset`` / ``set_required_ranks`` -- and travels to the worker with its train context by pickling.
    A call from a rank other than 0 of 1 (a group that grew) is an error, not a silent pass."""

    @staticmethod
    def _broadcast(world_rank: int, world_size: int, data, caller_method_name: str = "", **_):
        if (world_rank, world_size) != (0, 1):
            raise RuntimeError(
                f"{caller_method_name or 'a collective'}: rank {world_rank} of {world_size} reached the "
                "one-worker barrier (SoloBarrier); only a group of one worker may use it"
            )
        return data

    broadcast_from_rank_zero = _Local(_broadcast)
    set_required_ranks = _Local(lambda ranks: True)  # nothing to narrow with one rank
    reset = _Local(lambda: None)  # no rank can be waiting inside
    get_counter = _Local(lambda: 0)
    get_required_ranks = _Local(lambda: None)


_reuse: SyncActorReuse | None = None


def install_sync_actor_reuse() -> SyncActorReuse:
    """Idempotent; for this process (a lean trial's)."""
    global _reuse
    if _reuse is None:
        from ray.train.v2._internal.execution.worker_group import state, worker_group

        _reuse = SyncActorReuse(worker_group.SynchronizationActor, state._shutdown_sync_actor)
        worker_group.SynchronizationActor = _reuse
        state._shutdown_sync_actor = _reuse.shutdown
    return _reuse


def _kv(op: str, pg_hex: str):
    from ray.experimental import internal_kv

    fn = {
        "put": lambda k: internal_kv._internal_kv_put(k, b"1", namespace=PARKED_NAMESPACE),
        "del": lambda k: internal_kv._internal_kv_del(k, namespace=PARKED_NAMESPACE),
        "has": lambda k: internal_kv._internal_kv_exists(k, namespace=PARKED_NAMESPACE),
    }[op]
    return fn(pg_hex.encode())


def is_parked(pg_hex: str) -> bool:
    """Whether a trial process holds this placement group's workers for its next trial (driver side)."""
    try:
        return bool(_kv("has", pg_hex))
    except Exception:
        return False


@dataclass
class _Parked:
    key: tuple
    pg_handle: object  # ray.train's PlacementGroupHandle
    workers: list  # ray.train's Worker records, rank order
    runs: int  # Train runs these processes have served

    @property
    def pg_hex(self) -> str:
        return self.pg_handle.placement_group.id.hex()


def _holds_gpus(key: tuple) -> bool:
    """Whether a worker group of this shape (``ReusingWorkerGroup._shape``: resources per worker second) has GPUs."""
    try:
        return float(dict(key[1]).get("GPU", 0)) > 0
    except (TypeError, ValueError, IndexError):
        return False


def gpus_wanted_elsewhere() -> bool:
    """Whether a placement group that asks for GPUs is pending (a worker group waiting for them)."""
    from ray.util.placement_group import placement_group_table

    try:
        table = placement_group_table()
    except Exception:
        return False
    return any(
        pg.get("state") == "PENDING" and any("GPU" in b for b in (pg.get("bundles") or {}).values())
        for pg in table.values()
    )


class WorkerReuse:
    """Keeps a finished worker group's processes for the next Train run of this trial process.

    A fresh worker group costs each trial a new Python process per worker that imports Ray, Ray Train,
    torch and torchvision before its first step (~4.5 CPU-seconds for a resnet trial, measured:
    docs/benchmarks.md) -- two concurrent trials on 2 cores pay it out of each other's training. When a
    run ends with every worker finished and none failed, ``ReusingWorkerGroup.shutdown`` runs Ray
    Train's shutdown hooks (the torch process group is destroyed as usual) but parks the worker actors
    and their placement group here instead of killing them; the next run in this process with the same
    group shape (workers, resources per worker, strategy, runtime env) starts on them: Ray Train sets up
    a new run context, ranks and process group as for new actors. Anything else -- a failed or stopped
    run, another shape, workers that died meanwhile, ``MAX_RUNS`` runs served -- kills them as Ray
    Train would. Only where Tune reuses trial actors (FIFO scheduler, ``resources.lean``).

    A placement group outlives the process that created it, so a parked group is also marked in the
    GCS (``PARKED_NAMESPACE``) for the driver's :class:`PlacementGroupSweeper`, which leaves it to this
    process and removes it when the sweep ends; and a group left parked ``IDLE_S`` seconds (Tune gave
    this process no further trial) is released here -- a group on GPUs as soon as another worker group waits
    for GPUs. Before parking, each worker destroys its process group (an NCCL communicator never outlives its
    run; the next run builds a new one) and frees what the run left on its GPU (``on_worker.end_process_group``).
    Measured (docs/benchmarks.md, interleaved A/B, 6 three-epoch resnet18 trials): sweep wall 91 -> 66 s one
    at a time, 56 -> 45 s two at a time; a later trial's first step 5 s -> 0.6 s after its start.
    Risk: module state of the training function carries over between trials in a worker process, as it
    does in a reused trial actor; tailsweep's worker keeps none (it seeds and sets threads per run).
    Internal Ray Train API (``WorkerGroup`` steps, ``TrainController.worker_group_cls``), ray 2.60 pinned;
    tests/integration/test_sweep.py covers the hand-over after a worker restart and the release rules."""

    IDLE_S = 30.0
    POLL_S = 0.5
    MAX_RUNS = 50

    def __init__(self):
        self._lock = threading.Lock()
        self._parked: _Parked | None = None

    def claim(self, key: tuple) -> _Parked | None:
        with self._lock:
            parked, self._parked = self._parked, None
        if parked is None:
            return None
        if parked.key == key and parked.runs < self.MAX_RUNS and self._alive(parked):
            _kv("del", parked.pg_hex)
            return parked
        self._retire(parked)
        return None

    def park(self, key: tuple, state, runs: int) -> None:
        import ray

        from .on_worker import end_process_group

        ray.get([w.execute_async(end_process_group) for w in state.workers], timeout=60)
        done = [w.actor.shutdown.remote() for w in state.workers]  # the workers' shutdown hooks, as Train runs them
        ray.wait(done, num_returns=len(done), timeout=5)
        group_state._shutdown_sync_actor(state.sync_actor)  # looked up at call time: SyncActorReuse keeps it
        parked = _Parked(key, state.placement_group_handle, list(state.workers), runs)
        _kv("put", parked.pg_hex)
        with self._lock:
            old, self._parked = self._parked, parked
        if old is not None:
            self._retire(old)
        threading.Thread(target=self._watch, args=(parked,), daemon=True, name="parked-workers").start()

    def release(self) -> None:
        with self._lock:
            parked, self._parked = self._parked, None
        if parked is not None:
            self._retire(parked)

    def _watch(self, parked: _Parked) -> None:
        """Release the parked group after ``IDLE_S``, or at once when it holds GPUs and another worker group
        waits for GPUs (a pending placement group asking for them): GPUs are not kept idle for our next trial
        while another trial could use them."""
        import time

        gpus = _holds_gpus(parked.key)
        deadline = time.monotonic() + self.IDLE_S
        while time.monotonic() < deadline:
            time.sleep(self.POLL_S)
            if self._parked is not parked:
                return
            if gpus and gpus_wanted_elsewhere():
                log.info("another worker group waits for GPUs: releasing the parked one")
                break
        self._expire(parked)

    def _expire(self, parked: _Parked) -> None:
        with self._lock:
            if self._parked is not parked:
                return
            self._parked = None
        log.info("releasing an idle worker group (%d workers)", len(parked.workers))
        self._retire(parked)

    @staticmethod
    def _alive(parked: _Parked) -> bool:
        import ray

        try:
            ray.get([w.actor.get_metadata.remote() for w in parked.workers], timeout=30)
            return True
        except Exception:
            return False

    @staticmethod
    def _retire(parked: _Parked) -> None:
        import ray

        for w in parked.workers:
            with contextlib.suppress(Exception):
                ray.kill(w.actor)
        try:
            parked.pg_handle.shutdown()
        except Exception as exc:
            log.warning("could not remove a parked worker group's placement group: %s", exc)
        with contextlib.suppress(Exception):
            _kv("del", parked.pg_hex)


_workers = WorkerReuse()


class ReusingWorkerGroup(WorkerGroup):
    """Ray Train's worker group, starting on parked workers where :class:`WorkerReuse` has some and
    parking its own after a clean finish. Overrides three steps of ``WorkerGroup._start_impl`` (ray 2.60,
    pinned) and its ``shutdown``; everything between (callbacks, ranks, context, process group) is Ray's."""

    _key: tuple | None = None
    _claimed: _Parked | None = None
    _reused = False
    _runs = 0

    def _shape(self, scaling_config, ctx) -> tuple | None:
        if scaling_config.use_tpu:
            return None
        env = WorkerGroup._get_worker_runtime_env(
            custom_runtime_env=self._train_run_context.run_config.worker_runtime_env
        )
        return (
            ctx.num_workers,
            tuple(sorted(ctx.resources_per_worker.items())),
            ctx.placement_strategy,
            repr(ctx.label_selector),
            repr(sorted(dict(env).get("env_vars", {}).items())),
            repr({k: v for k, v in dict(env).items() if k != "env_vars"}),
        )

    def _create_placement_group(self, scaling_config, worker_group_context):
        self._key = self._shape(scaling_config, worker_group_context)
        self._claimed = _workers.claim(self._key) if self._key is not None else None
        if self._claimed is not None:
            return self._claimed.pg_handle
        return super()._create_placement_group(scaling_config, worker_group_context)

    def _create_workers(
        self,
        num_workers,
        placement_group,
        resources_per_worker,
        placement_group_bundle_indices=None,
        starting_world_rank=0,
        world_size=None,
        replica_group_size=None,
    ):
        parked, self._claimed = self._claimed, None
        if (
            parked is not None
            and placement_group_bundle_indices is None
            and len(parked.workers) == num_workers
            and parked.pg_handle.placement_group.id == placement_group.id
        ):
            self._reused, self._runs = True, parked.runs
            from ray.train.v2._internal.execution.worker_group.worker import Worker

            workers = [
                Worker(
                    w.actor,
                    w.metadata,
                    resources_per_worker,
                    placement_group_bundle_index=w.placement_group_bundle_index,
                )
                for w in parked.workers
            ]
            return WorkerGroup._assign_worker_ranks(workers, starting_world_rank, world_size, replica_group_size)
        if parked is not None:  # not expected (the shape matched): free its bundles for new workers
            import ray

            _kv("del", parked.pg_hex)
            for w in parked.workers:
                with contextlib.suppress(Exception):
                    ray.kill(w.actor)
        self._reused, self._runs = False, 0
        return super()._create_workers(
            num_workers,
            placement_group,
            resources_per_worker,
            placement_group_bundle_indices,
            starting_world_rank,
            world_size,
            replica_group_size,
        )

    def _init_train_context(self, workers, sync_actor) -> None:
        super()._init_train_context(workers, sync_actor)
        if self._reused:
            import ray

            from .on_worker import fresh_checkpoint_upload_pool

            ray.get([w.execute_async(fresh_checkpoint_upload_pool) for w in workers])

    def shutdown(self):
        status = self.get_latest_poll_status()
        clean = status is not None and status.finished and not status.errors
        if not (clean and self._key is not None and self.has_started()):
            return super().shutdown()
        self._assert_active()
        with invoke_context_managers([cb.on_worker_group_shutdown for cb in self._callbacks]):
            for cb in self._callbacks:
                cb.before_worker_group_shutdown(self)
            state = self._worker_group_state
            try:
                _workers.park(self._key, state, self._runs + 1)
            except Exception as exc:
                log.warning("could not keep the worker group for the next trial (%s); shutting it down", exc)
                state.shutdown()
            self._clear_state()
            for cb in self._callbacks:
                cb.after_worker_group_shutdown(self._worker_group_context)


class ReusingController(TrainController):
    worker_group_cls = ReusingWorkerGroup


class LocalScaling(FixedScalingPolicy):
    """Train's fixed scaling policy without its autoscaler requests, for the local Ray a sweep starts.

    Every run registers its workers' resources with a cluster-wide ``AutoscalingCoordinator`` actor
    (started with the first run: a process that imports Ray Data), re-sends them every 20 s and cancels
    them at the end, so that an autoscaler can add nodes. A local Ray has no autoscaler; the requests only
    cost CPU. Used only where the sweep started Ray itself (``LOCAL_RAY_ENV``)."""

    def _send_resource_request(self):
        pass

    def _maybe_send_resource_request(self):
        pass

    def _cancel_resource_request(self):
        pass


class NodeWatch(WorkerGroupCallback):
    """The nodes (id -> IP) the current worker group's workers run on."""

    def __init__(self):
        self.nodes: dict[str, str] = {}

    def after_worker_group_start(self, worker_group):
        self.nodes = {w.metadata.node_id: w.metadata.node_ip for w in worker_group.get_workers()}


NODE_LOSS_WAIT_S = 60.0  # how long a failure decision waits for the GCS to say whether a worker's node died


def _failed_actors(error: WorkerGroupError) -> list[str]:
    """Hex ids of the worker actors a worker-group failure reports as dead or unreachable (not a user error)."""
    from ray.exceptions import RayActorError
    from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError

    out = []
    for failure in error.worker_failures.values():
        if isinstance(failure, WorkerHealthCheckFailedError):
            failure = failure.health_check_failure
        if isinstance(failure, RayActorError) and failure.actor_id:
            out.append(failure.actor_id)
    return out


def lost_node_of(actors: list[str], nodes: dict[str, str], wait_s: float = NODE_LOSS_WAIT_S) -> list[str]:
    """The group's nodes the cluster lost, waiting until the GCS has settled the failed actors' fate.

    A worker whose node vanishes is first *unreachable* (its connection reset) and only declared dead once the
    GCS's health checks give up on the node (about 15 s with Ray's defaults); a worker process that died on a
    live node is declared dead at once by its raylet. So: poll until a node of the group is dead (a node loss),
    or every failed actor is DEAD with its node alive (not one), or ``wait_s`` passes (not one)."""
    import time

    import ray._private.state as gcs

    from ...trainables._tracking import lost_nodes

    deadline = time.monotonic() + wait_s
    while True:
        if lost := lost_nodes(nodes):
            return lost
        try:
            settled = all(gcs.actors(actor_id=a).get("State") == "DEAD" for a in actors)
        except Exception:  # noqa: BLE001 -- the GCS did not answer: keep waiting
            settled = False
        if settled or time.monotonic() >= deadline:
            return lost_nodes(nodes)
        time.sleep(1.0)


class NodeLossPolicy(DefaultFailurePolicy):
    """Ray Train's failure policy, except that a worker group which lost a node (a node of its failed workers
    is no longer alive) is charged to ``FailureConfig.max_preemption_failures`` (unlimited by default) instead
    of ``max_failures``, as Ray charges a node the autoscaler drained for preemption. Ray tells a preemption
    from other deaths only by that drain; a spot node reclaimed without it, or a machine that dies, would
    otherwise fail the trial under tailsweep's default ``train.max_failures: 0``, which is meant for errors of
    the training itself (retrying a bug repeats it)."""

    def __init__(self, failure_config, watch: NodeWatch):
        super().__init__(failure_config)
        self.watch = watch
        self.node_losses = 0

    def make_decision(self, training_failed_error):
        actors = _failed_actors(training_failed_error) if isinstance(training_failed_error, WorkerGroupError) else []
        lost = lost_node_of(actors, self.watch.nodes) if actors else []
        if not lost:
            return super().make_decision(training_failed_error)
        self.node_losses += 1
        limit = self.failure_config.max_preemption_failures
        decision = FailureDecision.RETRY if limit == -1 or self.node_losses <= limit else FailureDecision.RAISE
        log.warning(
            "worker group lost node(s) %s: %s (node loss %d of %s allowed)",
            ", ".join(lost),
            decision.value,
            self.node_losses,
            "unlimited" if limit == -1 else limit,
        )
        return decision


class InlineTorchTrainer(TorchTrainer):
    """A ``TorchTrainer`` whose controller runs in the calling process (the Tune trial actor).
    ``reuse_workers``: start on, and keep, worker processes of this process's earlier runs (:class:`WorkerReuse`)."""

    def __init__(self, *args, reuse_workers: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.reuse_workers = reuse_workers

    def _create_default_callbacks(self):
        drop = (PlacementGroupCleanerCallback,) + (() if self.datasets else (DatasetsCallback,))
        return [c for c in super()._create_default_callbacks() if not isinstance(c, drop)]

    def _initialize_and_run_controller(self, **controller_init_kwargs):
        install_sync_actor_reuse().solo = self.scaling_config.num_workers == 1 and os.environ.get(SYNC_ACTOR_ENV) != "1"
        policy = controller_init_kwargs.get("scaling_policy")
        if os.environ.get(LOCAL_RAY_ENV) == "1" and type(policy) is FixedScalingPolicy:
            controller_init_kwargs["scaling_policy"] = LocalScaling(policy.scaling_config)
        if not self.reuse_workers:
            _workers.release()
        watch = NodeWatch()
        controller_init_kwargs["callbacks"] = [*controller_init_kwargs.get("callbacks", []), watch]
        controller_init_kwargs["failure_policy"] = NodeLossPolicy(self.run_config.failure_config, watch)
        controller = (ReusingController if self.reuse_workers else TrainController)(**controller_init_kwargs)
        try:
            asyncio.run(controller.run())
        except BaseException:
            # Tune stopping the trial (ASHA, Ctrl-C) raises out of ``ray.tune.report`` in this thread:
            # release the workers and their placement group now rather than when the actor dies.
            group = controller.get_worker_group()
            if group is not None:
                try:
                    group.shutdown()
                except Exception as exc:  # the original exception is the one to surface
                    log.warning("shutting down the worker group after a stop failed: %s", exc)
            raise
        return controller.get_result()
