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
(:class:`SyncActorReuse`) instead of starting one per group.

Internal Ray Train V2 API (``TrainController``, ``DataParallelTrainer._initialize_and_run_controller``),
pinned to ray 2.60 by constraints.txt and covered by tests/integration (statuses, exactly-once metrics
after a worker restart, ASHA stops). The gain is measured by benchmarks/overhead.py (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import os

from ray import tune
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
from ray.train.v2._internal.execution.callback import WorkerGroupCallback
from ray.train.v2._internal.execution.controller import TrainController
from ray.train.v2._internal.execution.scaling_policy.fixed import FixedScalingPolicy
from ray.train.v2.api.callback import UserCallback

log = logging.getLogger(__name__)

PLACEMENT_GROUP_KEY = "trial/placement_group"  # in every result Tune sees from a lean trial
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

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if pg := result.get(PLACEMENT_GROUP_KEY):
            self._groups[trial.trial_id] = pg

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._release(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._release(trial)

    def _release(self, trial) -> None:
        pg = self._groups.pop(trial.trial_id, None)
        if pg is None:
            return
        import ray
        from ray.util.placement_group import PlacementGroup, placement_group_table

        try:
            if placement_group_table().get(pg, {}).get("state") not in (None, "REMOVED"):
                ray.util.remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg))))
                log.info("removed the placement group of trial %s", trial.trial_id)
        except Exception as exc:  # best effort: never fail the sweep over a cleanup
            log.warning("could not remove the placement group of trial %s: %s", trial.trial_id, exc)


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

    def options(self, **options):
        self._options = options
        return self

    def remote(self, **kwargs):
        import ray

        if self.handle is not None and self._args == kwargs:
            try:
                idle = ray.get([self.handle.get_counter.remote(), self.handle.get_required_ranks.remote()],
                               timeout=30)
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
        if actor is not self.handle:
            self._kill(actor)


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


class InlineTorchTrainer(TorchTrainer):
    """A ``TorchTrainer`` whose controller runs in the calling process (the Tune trial actor)."""

    def _create_default_callbacks(self):
        drop = (PlacementGroupCleanerCallback,) + (() if self.datasets else (DatasetsCallback,))
        return [c for c in super()._create_default_callbacks() if not isinstance(c, drop)]

    def _initialize_and_run_controller(self, **controller_init_kwargs):
        install_sync_actor_reuse()
        policy = controller_init_kwargs.get("scaling_policy")
        if os.environ.get(LOCAL_RAY_ENV) == "1" and type(policy) is FixedScalingPolicy:
            controller_init_kwargs["scaling_policy"] = LocalScaling(policy.scaling_config)
        controller = TrainController(**controller_init_kwargs)
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
