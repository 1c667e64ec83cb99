"""MLflow logging used inside a Train run.

- :class:`MlflowMetricsCallback` runs in the Train *controller* (a Train V2 ``UserCallback``) and
  logs every report's metrics exactly once with the worker-reported ``epoch`` as the step. It is
  listed before ``TuneReportCallback``. (Logging from rank 0 duplicated steps after a worker
  restart or a ``Tuner.restore``; the controller saw each report once.)
  It also logs the trial's files (per-label tables, weight vectors), which rank 0 writes into the
  final checkpoint's ``artifacts/``: mlflow is then imported only where the controller runs, never
  in a Train worker (~1.3 CPU-seconds per trial, benchmarks/overhead.py).

A tracking hiccup never kills training: failures are logged as warnings.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

from ray.train import UserCallback

log = logging.getLogger(__name__)

NON_METRIC_KEYS = {"epoch", "checkpoint_path"}
ARTIFACTS_DIR = "artifacts"  # in the final checkpoint: the files logged to the run's artifacts


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Keep finite numbers only (MLflow rejects NaN in some stores; None is not a metric)."""
    out = {}
    for k, v in metrics.items():
        if k in NON_METRIC_KEYS or isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if math.isfinite(float(v)):
            out[k] = float(v)
    return out


class MlflowMetricsCallback(UserCallback):
    """Log rank 0's reported metrics to the trial's MLflow child run, step = reported epoch."""

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
            self._client = client
        return self._client

    def after_report(self, run_context, metrics, checkpoint):
        from mlflow.entities import Metric

        if self._warm is not None:
            self._warm.join()
            self._warm = None
        reported = metrics[0]
        step = int(reported.get("epoch", 0))
        try:
            client = self._get_client()
        except Exception as exc:
            log.warning("MLflow: tracking store unreachable, epoch %s not logged: %s", step, exc)
            return
        if step and step <= self._last_epoch:
            return  # an epoch redone after a worker restart: already logged once
        ts = int(time.time() * 1000)
        batch = [Metric(k, v, ts, step) for k, v in numeric_metrics(reported).items()]
        try:
            client.log_batch(self.run_id, metrics=batch)
            self._last_epoch = max(self._last_epoch, step)
        except Exception as exc:  # never let tracking kill a trial
            log.warning("MLflow: could not log epoch %s metrics for run %s: %s", step, self.run_id, exc)
        if checkpoint is not None:
            self._log_checkpoint_artifacts(client, checkpoint)

    def _log_checkpoint_artifacts(self, client, checkpoint) -> None:
        try:
            with checkpoint.as_directory() as d:
                files = Path(d) / ARTIFACTS_DIR
                if files.is_dir():
                    client.log_artifacts(self.run_id, str(files))
        except Exception as exc:
            log.warning("MLflow: could not upload the trial's files to run %s: %s", self.run_id, exc)
