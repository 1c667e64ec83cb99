"""MLflow logging used inside a Train run.

- :class:`MlflowMetricsCallback` runs in the Train *controller* (a Train V2 ``UserCallback``) and
  logs every report's metrics exactly once with the worker-reported ``epoch`` as the step. It is
  listed before ``TuneReportCallback``. (Logging from rank 0 duplicated steps after a worker
  restart or a ``Tuner.restore``; the controller saw each report once.)
- :func:`log_artifacts` is called by rank 0 only, for files (per-label tables, weight vectors).

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
        # Unpickled in the Train controller seconds before the first report: import mlflow and open
        # the store now, in the background, so the first report does not wait ~1.5 s for it.
        self.__dict__.update(state)
        self._client = None
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


def log_artifacts(tracking_uri: str, run_id: str, files: list[Path], artifact_path: str | None = None) -> None:
    """Upload files to a run (rank 0 only); warn instead of raising."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        for f in files:
            client.log_artifact(run_id, str(f), artifact_path)
    except Exception as exc:
        log.warning("MLflow: could not upload %s to run %s: %s", [f.name for f in files], run_id, exc)
