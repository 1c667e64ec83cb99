"""MLflow logging used inside a Train run.

- :class:`MlflowMetricsCallback` runs in the Train *controller* (a Train V2 ``UserCallback``) and
  logs every report's metrics exactly once with the worker-reported ``epoch`` as the step. It is
  listed before ``TuneReportCallback``. (Logging from rank 0 duplicated steps after a worker
  restart or a ``Tuner.restore``; the controller saw each report once.)
  It also logs the trial's files (per-label tables, weight vectors), which rank 0 writes into the
  final checkpoint's ``artifacts/``: mlflow is then imported only where the controller runs, never
  in a Train worker (~1.3 CPU-seconds per trial, benchmarks/overhead.py).

A tracking hiccup never kills training, and loses no metric: an epoch whose write fails (after MLflow's own
retries) is kept and written, in order, at the next report once the store answers; at the trial's last report
(the one with test metrics) the callback waits up to ``FINAL_WAIT_S`` for the store. Each report then carries
``tracking/late_points`` (points written after a failed try) and ``tracking/unwritten_points`` (still not
written), which the sweep's summary reports.

A restart of the trial's worker group (a worker process or its node lost, an error retried under
``train.max_failures``) is recorded on the run: the count (``tailsweep.retries``) and, per restart, why and the
epoch it resumed at (``tailsweep.retry``: "restart 1: node 3f2a... (10.0.0.7) lost; resumed at epoch 2"); each
report carries ``trial/retries`` for the sweep's summary. Ray Train's controller callbacks (developer API, ray
2.60 pinned) say when a group starts (its workers' nodes) and when the controller restarts it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

from ray.train import UserCallback
from ray.train.v2._internal.execution.callback import ControllerCallback, WorkerGroupCallback

from ..analysis.tags import RETRIES_TAG, RETRY_TAG
from ._artifacts import ARTIFACTS_DIR

log = logging.getLogger(__name__)

NON_METRIC_KEYS = {"epoch", "checkpoint_path"}
LATE_KEY, UNWRITTEN_KEY = "tracking/late_points", "tracking/unwritten_points"
FINAL_WAIT_S = 60.0  # at a trial's last report: how long to keep retrying points the store refused
RETRIES_KEY = "trial/retries"  # in every report Tune sees: restarts of the trial's worker group so far


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Keep finite numbers only (MLflow rejects NaN in some stores; None is not a metric)."""
    out = {}
    for k, v in metrics.items():
        if k in NON_METRIC_KEYS or isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if math.isfinite(float(v)):
            out[k] = float(v)
    return out


def lost_nodes(nodes: dict[str, str]) -> list[str]:
    """Which of ``nodes`` (node id -> IP) the cluster no longer has alive (``ray.nodes()``); [] when unknown."""
    import ray

    try:
        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
    except Exception:  # noqa: BLE001 -- no answer from the GCS: say nothing rather than guess
        return []
    return [n for n in nodes if n not in alive]


def restart_cause(error: BaseException, nodes: dict[str, str]) -> str:
    """Why a worker group was restarted, in a few words: the nodes it lost, else the error's first line."""
    if lost := lost_nodes(nodes):
        return ", ".join(f"node {n[:12]} ({nodes[n]}) lost" for n in lost)
    failures = getattr(error, "worker_failures", None) or {None: error}  # a WorkerGroupError: each rank's error
    rank, first = next(iter(failures.items()))
    lines = [x.strip() for x in str(first).splitlines() if x.strip()]
    where = f"rank {rank}: " if rank is not None else ""
    return f"{where}{type(first).__name__}: {lines[0] if lines else ''}"[:200]


class RestartWatch(WorkerGroupCallback, ControllerCallback):
    """Hands a metrics logger the worker group's starts and the controller's restarts (Ray Train gives a
    ``UserCallback`` its own hooks only; this one is listed beside it: ``MlflowMetricsCallback.restart_watch``)."""

    def __init__(self, logger: MlflowMetricsCallback):
        self.logger = logger

    def after_worker_group_start(self, worker_group) -> None:
        self.logger.group_started(worker_group)

    def after_controller_state_update(self, previous_state, current_state) -> None:
        self.logger.state_changed(current_state)


class MlflowMetricsCallback(UserCallback):
    """Log rank 0's reported metrics to the trial's MLflow child run, step = reported epoch; record the
    worker group's restarts on the run (told by its :meth:`restart_watch`)."""

    def __init__(self, tracking_uri: str, run_id: str):
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self._client = None
        self._warm: threading.Thread | None = None

    def __getstate__(self):
        return {"tracking_uri": self.tracking_uri, "run_id": self.run_id}

    _last_epoch: int = 0  # highest epoch logged to this run (epochs redone after a restart are skipped)

    def __setstate__(self, state):
        # Unpickled in a separate Train controller (resources.lean = false), and in every Train worker
        # (the run config travels with the train context): no mlflow import here, workers never log.
        self.__dict__.update(state)
        self._client = None
        self._warm = None

    def warm_up(self) -> None:
        """Import mlflow and open the store in the background, so the first report does not wait
        ~1.5 s for it. Called by the trial driver when the controller runs in its process."""
        if self._client is None and self._warm is None:
            self._warm = threading.Thread(target=self._get_client, daemon=True, name="mlflow-warmup")
            self._warm.start()

    def _get_client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(self.tracking_uri)
            # Opens the store, and picks up where an earlier controller of this run stopped logging
            # (after Tuner.restore a new controller starts; its redone epochs must not be logged again).
            history = client.get_metric_history(self.run_id, "train/loss")
            self._last_epoch = max([m.step for m in history], default=0)
            if self._retries == 0:  # restarts an earlier controller of this run recorded
                tags = client.get_run(self.run_id).data.tags
                self._retries = int(tags.get(RETRIES_TAG, 0))
                self._retry_notes = [n for n in tags.get(RETRY_TAG, "").split(" | ") if n]
            self._client = client
        return self._client

    # --- restarts of the worker group -----------------------------------------------------------------
    _retries: int = 0
    _retry_notes: list | None = None  # one per restart, oldest first
    _restart_cause: str | None = None  # the latest restart's, until its first report says where it resumed
    _nodes: dict | None = None  # node id -> IP of the current worker group's workers

    def restart_watch(self) -> RestartWatch:
        """The callback to list beside this one in the Train run's callbacks."""
        return RestartWatch(self)

    def group_started(self, worker_group) -> None:
        try:
            self._nodes = {w.metadata.node_id: w.metadata.node_ip for w in worker_group.get_workers()}
        except Exception:  # noqa: BLE001 -- only feeds the restart note
            self._nodes = {}

    def state_changed(self, current_state) -> None:
        from ray.train.v2._internal.execution.controller.state import RestartingState

        if not isinstance(current_state, RestartingState):
            return
        self._retries += 1
        self._restart_cause = restart_cause(current_state.training_failed_error, self._nodes or {})
        log.warning("trial run %s: worker group restart %d: %s", self.run_id, self._retries, self._restart_cause)
        self._write_retries(self._try_client(), [f"restart {self._retries}: {self._restart_cause}"])

    def _note_resume(self, client, epoch: int) -> None:
        """The first report after a restart: where it resumed (the epoch after its checkpoint's)."""
        self._retry_notes = [
            *(self._retry_notes or []),
            f"restart {self._retries}: {self._restart_cause}; resumed at epoch {epoch}",
        ]
        self._restart_cause = None
        self._write_retries(client, [])

    def _write_retries(self, client, pending: list[str]) -> None:
        if client is None:
            return
        notes = " | ".join([*(self._retry_notes or []), *pending])
        try:
            client.set_tag(self.run_id, RETRIES_TAG, str(self._retries))
            client.set_tag(self.run_id, RETRY_TAG, notes[-5000:])
        except Exception as exc:  # never let tracking kill a trial
            log.warning("MLflow: could not record the restart of run %s: %s", self.run_id, exc)

    _pending: list | None = None  # (epoch, metrics batch) the store refused, oldest first
    _late: int = 0

    def after_report(self, run_context, metrics, checkpoint):
        from mlflow.entities import Metric

        if self._warm is not None:
            self._warm.join()
            self._warm = None
        if self._pending is None:
            self._pending = []
        reported = metrics[0]
        step = int(reported.get("epoch", 0))
        final = any(k.startswith("test/") for k in reported)  # the trial's last report carries its test metrics
        batch = [Metric(k, v, int(time.time() * 1000), step) for k, v in numeric_metrics(reported).items()]
        try:
            client = self._get_client()
        except Exception as exc:
            log.warning("MLflow: tracking store unreachable, epoch %s kept to write later: %s", step, exc)
            client = None
        if self._restart_cause is not None:
            self._note_resume(client, step)
        if client is not None and step and step <= self._last_epoch:
            batch = []  # an epoch redone after a worker restart: already logged once
        fresh = (step, batch) if batch else None
        if fresh is not None:
            self._pending.append(fresh)
        deadline = time.monotonic() + (FINAL_WAIT_S if final else 0.0)
        tries = 0
        while True:
            client = client or self._try_client()
            if client is not None:
                self._flush(client, fresh if tries == 0 else None)
            tries += 1
            if not self._pending or time.monotonic() >= deadline:
                break
            time.sleep(2.0)
        if self._pending:
            epochs = [e for e, _ in self._pending]
            log.warning(
                "MLflow: run %s: %d point(s) of epoch(s) %s not written yet%s",
                self.run_id,
                sum(len(b) for _, b in self._pending),
                epochs,
                " (the trial has ended)" if final else "",
            )
        reported[LATE_KEY] = self._late
        reported[RETRIES_KEY] = self._retries
        reported[UNWRITTEN_KEY] = sum(len(b) for _, b in self._pending)
        if checkpoint is not None and client is not None:
            self._log_checkpoint_artifacts(client, checkpoint)

    def _try_client(self):
        try:
            return self._get_client()
        except Exception:
            return None

    def _flush(self, client, fresh=None) -> None:
        """Write the kept batches in order; stop at the first the store refuses (kept for the next try). A batch
        written after the report that made it (any but ``fresh``) counts as late."""
        while self._pending:
            step, batch = self._pending[0]
            try:
                client.log_batch(self.run_id, metrics=batch)
            except Exception as exc:  # never let tracking kill a trial
                log.warning(
                    "MLflow: could not log epoch %s metrics for run %s (kept to retry): %s", step, self.run_id, exc
                )
                return
            entry = self._pending.pop(0)
            if entry is not fresh:
                self._late += len(batch)
            self._last_epoch = max(self._last_epoch, step)

    def _log_checkpoint_artifacts(self, client, checkpoint) -> None:
        try:
            with checkpoint.as_directory() as d:
                files = Path(d) / ARTIFACTS_DIR
                if files.is_dir():
                    client.log_artifacts(self.run_id, str(files))
        except Exception as exc:
            log.warning("MLflow: could not upload the trial's files to run %s: %s", self.run_id, exc)
