"""MLflow on the driver side: one parent run per sweep, one child run per trial.

Runs are got-or-created by tags: ``tailsweep.sweep_id`` for the parent; for a child, the sweep id
plus the trial's key in the deterministic trial plan (``tailsweep.trial_key``), so a resumed sweep
finds the same runs and never duplicates one. The driver creates every child run up front with
status SCHEDULED, which keeps all MLflow I/O off the trial's start path (each trial would otherwise
pay the mlflow import and a store round trip before its worker group starts).

Statuses are written by the driver-side :class:`RunStatusCallback`, the one place that sees every
ending (ASHA stops a trial by killing its actor, so code after ``fit()`` may never run): RUNNING
(+ the ``tune_trial_id`` tag) when Tune starts the trial; FINISHED when it completes with every
epoch reported; KILLED (+ ``stopped_early``) when it completes with fewer; FAILED (+ ``error``).
:meth:`Tracking.close_sweep` ends whatever a crash or Ctrl-C left SCHEDULED or RUNNING.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import tune

# re-exported: the driver's side writes what the analysis reads
from ..analysis.tags import (  # noqa: F401
    CONFIG_TAG,
    KIND_TAG,
    PARENT_TAG,
    STARTED_TAG,
    SWEEP_TAG,
    TRIAL_KEY_TAG,
    TRIAL_TAG,
)
from ..config import TrialConfig, flatten

log = logging.getLogger(__name__)

MAX_TAG = 8000  # MLflow's tag-value limit
MAX_PARAM = 6000


def _param_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s[:MAX_PARAM]


def tracking_server_problem(uri: str, timeout: float = 8.0) -> str | None:
    """None if the MLflow server at an ``http(s)://`` ``uri`` answers its ``/health`` within ``timeout`` seconds
    and accepts this machine's credentials (:func:`credentials_problem`), else what is wrong, naming the URI and
    the fix. Checked before a sweep writes anything (locally and for a cluster), so that a wrong address fails in
    seconds instead of after MLflow's minutes of retries, and a wrong password before any run exists."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(uri.rstrip("/") + "/health", headers={"User-Agent": "tailsweep"})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_tls_context()) as r:  # noqa: S310 (the user's URI)
            status = r.status
        why = f"HTTP {status}"
    except urllib.error.HTTPError as exc:
        status, why = exc.code, f"HTTP {exc.code}"
    except (OSError, urllib.error.URLError) as exc:
        status, why = None, str(getattr(exc, "reason", exc))
    if status == 200:
        return credentials_problem(uri, timeout)
    if "CERTIFICATE_VERIFY_FAILED" in why:
        return (
            f"tracking.uri = {uri!r}: the server's TLS certificate is not trusted here ({why}); point "
            "MLFLOW_TRACKING_SERVER_CERT_PATH at its certificate (or its CA's), as MLflow's clients take it"
        )
    return (
        f"tracking.uri = {uri!r}: the MLflow server does not answer ({why}); start it with "
        "`launch mlflow-server --dir DIR` (add --host 0.0.0.0 for a cluster's nodes) or check the address"
    )


# How MLflow's clients reach a server (mlflow.utils.credentials.get_default_host_creds): what a sweep's
# processes on other machines need too. The user name and password are read as the clients read them.
CLIENT_TLS_VARS = (
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_TRACKING_INSECURE_TLS",
)
CREDENTIALS_FIX = (
    "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or write them to ~/.mlflow/credentials: "
    "`launch mlflow-server` keeps them in that file's format under its --dir (admin-credentials, and "
    "sweeps-credentials with --sweeps-user), so copying one there is enough"
)


def _tls_context():
    """The TLS verification MLflow's clients apply (a CA file or none at all), for checks made with urllib."""
    import os
    import ssl

    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("true", "1"):
        return ssl._create_unverified_context()  # noqa: S323 -- what the user asked MLflow for
    if cafile := os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        return ssl.create_default_context(cafile=cafile)
    return None


def client_env() -> dict[str, str]:
    """The environment a sweep's driver elsewhere (a Ray job) needs to reach the tracking server as this machine
    does: the user name and password MLflow's clients read here (environment, else ~/.mlflow/credentials) and the
    TLS settings. Holds the password: for a job's runtime environment only, never to be printed or logged."""
    import os

    from mlflow.utils.credentials import read_mlflow_creds

    creds = read_mlflow_creds()
    env = {
        k: v for k, v in (("MLFLOW_TRACKING_USERNAME", creds.username), ("MLFLOW_TRACKING_PASSWORD", creds.password))
    }
    env |= {var: os.environ[var] for var in CLIENT_TLS_VARS if os.environ.get(var)}
    return {k: v for k, v in env.items() if v}


def credentials_problem(uri: str, timeout: float = 8.0) -> str | None:
    """None if the server at ``uri`` lets this machine's MLflow client read experiments (what every sweep does
    first); else why not, with the fix. A server without authentication always lets it."""
    import os

    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(uri)
    try:
        resp = http_request(
            creds,
            "/api/2.0/mlflow/experiments/search",
            "GET",
            max_retries=0,
            timeout=timeout,
            params={"max_results": 1},
        )
    except Exception as exc:  # noqa: BLE001 -- MLflow wraps connection and TLS errors in its own exception
        return f"tracking.uri = {uri!r}: the MLflow server answers /health but not its API ({exc})"
    if resp.status_code == 200:
        return None
    source = "the environment" if os.environ.get("MLFLOW_TRACKING_PASSWORD") else "~/.mlflow/credentials"
    if resp.status_code == 401 and not (creds.username and creds.password):
        return f"tracking.uri = {uri!r}: the MLflow server requires a user name and password, and none was found; {CREDENTIALS_FIX}"
    if resp.status_code == 401:
        return (
            f"tracking.uri = {uri!r}: the MLflow server refused user {creds.username!r} with the password from "
            f"{source} (HTTP 401: wrong user name or password); {CREDENTIALS_FIX}"
        )
    if resp.status_code == 403:
        return (
            f"tracking.uri = {uri!r}: user {creds.username!r} may not read experiments on this server (HTTP 403); "
            "ask its admin for a user with EDIT rights (`launch mlflow-server --sweeps-user` creates one)"
        )
    return f"tracking.uri = {uri!r}: the MLflow server answered HTTP {resp.status_code} on its API; is it an MLflow server?"


class Tracking:
    """A thin, picklable wrapper over ``MlflowClient`` (the client itself is created lazily)."""

    def __init__(self, uri: str, experiment: str = "tailsweep", artifact_root: Path | None = None):
        self.uri = uri
        self.experiment = experiment
        self.artifact_root = artifact_root
        self._client = None
        self._experiment_id: str | None = None

    def __getstate__(self):
        return {**self.__dict__, "_client": None}

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(self.uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                location = self.artifact_root.as_uri() if self.artifact_root else None
                self._experiment_id = self.client.create_experiment(self.experiment, artifact_location=location)
            else:
                self._experiment_id = exp.experiment_id
        return self._experiment_id

    def find_run(self, **tags: str):
        flt = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self.client.search_runs([self.experiment_id], filter_string=flt, max_results=2)
        return runs[0] if runs else None

    def get_or_create_run(
        self,
        match: Mapping[str, str],
        name: str,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> str:
        run = self.find_run(**match)
        if run is not None:
            if run.info.status != "RUNNING":  # resumed: it runs again
                self.client.update_run(run.info.run_id, status="RUNNING")
            return run.info.run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags={**match, **(tags or {})})
        if params:
            self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = flatten(params)
        # one call: MlflowClient.log_batch splits into MLflow's per-request limits itself
        self.client.log_batch(run_id, params=[Param(k, _param_value(v)) for k, v in flat.items()])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        if tags:  # one request, not one per tag
            self.client.log_batch(run_id, tags=[RunTag(k, str(v)[:MAX_TAG]) for k, v in tags.items()])

    def end(self, run_id: str, status: str, only_if_running: bool = False) -> None:
        if only_if_running and self.client.get_run(run_id).info.status != "RUNNING":
            return
        self.client.set_terminated(run_id, status=status)

    def plan_child_runs(
        self,
        parent_run_id: str,
        sweep_id: str,
        trials: list[TrialConfig],
        inputs: list | None = None,
    ) -> list[str]:
        """Get or create one child run per planned trial (new ones SCHEDULED, with the table as their dataset
        ``inputs``); returns their ids."""
        existing = {r.data.tags.get(TRIAL_KEY_TAG): r for r in self.children(parent_run_id)}
        return [self.child_run(parent_run_id, sweep_id, t, inputs, existing) for t in trials]

    def child_run(
        self,
        parent_run_id: str,
        sweep_id: str,
        trial: TrialConfig,
        inputs: list | None = None,
        existing: Mapping[str, Any] | None = None,
    ) -> str:
        """The child run of one trial: found again by its key in the sweep (``existing``: key -> run, else looked
        up), or created SCHEDULED, with the trial's config as its params. A run found under the key with a
        different configuration (a search suggestion that a killed driver made after its last saved state,
        suggested differently after the resume) is deleted and made again, so MLflow holds each trial once, with
        the parameters it ran with."""
        key = trial_key(trial)
        fingerprint = config_fingerprint(trial)
        run = (
            (existing or {}).get(key)
            if existing is not None
            else self.find_run(**{SWEEP_TAG: sweep_id, TRIAL_KEY_TAG: key, PARENT_TAG: parent_run_id})
        )
        if run is not None:
            if run.data.tags.get(CONFIG_TAG, fingerprint) == fingerprint:
                return run.info.run_id
            self.client.delete_run(run.info.run_id)
        run = self.client.create_run(
            self.experiment_id,
            run_name=trial.label,
            tags={
                SWEEP_TAG: sweep_id,
                TRIAL_KEY_TAG: key,
                PARENT_TAG: parent_run_id,
                CONFIG_TAG: fingerprint,
                "scheme": trial.scheme,
                "seed": str(trial.seed),
            },
        )
        run_id = run.info.run_id
        self.log_params(run_id, trial.params())
        if inputs:
            self.client.log_inputs(run_id, datasets=inputs)
        self.client.update_run(run_id, status="SCHEDULED")
        return run_id

    def children(self, parent_run_id: str):
        return self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'", max_results=5000
        )

    def close_sweep(self, parent_run_id: str, status: str) -> None:
        """End the parent and any child a crash or interrupt left SCHEDULED or RUNNING (-> KILLED)."""
        for run in self.children(parent_run_id):
            if run.info.status in ("RUNNING", "SCHEDULED"):
                self.set_tags(run.info.run_id, {"stopped_early": "sweep ended before the trial finished"})
                self.client.set_terminated(run.info.run_id, status="KILLED")
        self.client.set_terminated(parent_run_id, status=status)


def dataset_inputs(table, train_splits) -> list:
    """The label table as an MLflow dataset input (the runs table's Dataset column): the table's name, content
    digest, location and rows per split, with the splits a trial trains on, selects on and tests on."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    rows = {}
    for split in ("train", "val", "test"):
        with contextlib.suppress(Exception):
            rows[split] = table.read(split, ["id"]).num_rows
    dataset = Dataset(
        name=table.name,
        digest=table.digest()[:12],
        source_type="local",
        source=json.dumps({"uri": str(table.root)}),
        schema=json.dumps(
            {"input": table.input_kind, "labels": table.num_labels, "hierarchy": bool(table.is_hierarchical)}
        ),
        profile=json.dumps({"rows": rows}),
    )
    # one input per dataset and run (MLflow keeps the first of a dataset's inputs): its context names the roles
    context = f"train: {'+'.join(train_splits)}; select: val; test: test"
    return [
        DatasetInput(
            dataset,
            tags=[
                InputTag("mlflow.data.context", context),
                InputTag("rows", " ".join(f"{k}={v}" for k, v in rows.items())),
            ],
        )
    ]


def config_fingerprint(trial: TrialConfig) -> str:
    """What tells two configurations of one setting apart (a searched trial suggested again after a resume)."""
    return json.dumps(
        {"scheme_params": trial.scheme_params, "lr": trial.train.lr, "weight_decay": trial.train.weight_decay},
        sort_keys=True,
        default=str,
    )[:MAX_TAG]


class ChildRuns:
    """Picklable ``trial -> run id`` for a searcher that suggests trials while the sweep runs (the driver side)."""

    def __init__(self, tracking: Tracking, parent_run_id: str, sweep_id: str, inputs: list | None = None):
        self.tracking, self.parent_run_id, self.sweep_id = tracking, parent_run_id, sweep_id
        self.inputs = inputs

    def __call__(self, trial: TrialConfig) -> str:
        return self.tracking.child_run(self.parent_run_id, self.sweep_id, trial, self.inputs)


def trial_key(trial: TrialConfig) -> str:
    """A trial's identity within its sweep: its group (scheme index : draw) and seed."""
    return f"{trial.group}/seed={trial.seed}"


class RunStatusCallback(tune.Callback):
    """Driver-side: writes every child-run status transition (see the module docstring)."""

    def __init__(self, tracking: Tracking, epochs: int):
        self.tracking = tracking
        self.epochs = epochs

    def _safe(self, fn, *args):
        try:
            fn(*args)
        except Exception as exc:  # tracking down: close_sweep (or a resume) fixes statuses later
            log.warning("MLflow: could not update a trial run: %s", exc)

    @staticmethod
    def _run_id(trial) -> str:
        return TrialConfig.of(trial.config).run_id

    def on_trial_start(self, iteration, trials, trial, **info):
        def start(run_id):
            # the run was created when the sweep was planned; this is when the trial itself started
            self.tracking.set_tags(run_id, {TRIAL_TAG: trial.trial_id, STARTED_TAG: f"{time.time():.3f}"})
            self.tracking.client.update_run(run_id, status="RUNNING")

        self._safe(start, self._run_id(trial))

    def on_trial_complete(self, iteration, trials, trial, **info):
        epoch = int((trial.last_result or {}).get("epoch", 0))

        def complete(run_id):
            # With a separate Train controller (resources.lean = false) a trial ASHA stops can still
            # finish its last epoch while Tune's stop is in flight: the controller then logs every epoch
            # and the test metrics. The run is judged by what MLflow holds, so a run with complete
            # figures is FINISHED, never KILLED. (With the controller in the trial's process, the report
            # ASHA stops on is the last one logged.)
            complete_in_mlflow = "test/micro_auprc" in self.tracking.client.get_run(run_id).data.metrics
            if epoch >= self.epochs or complete_in_mlflow:
                self.tracking.end(run_id, "FINISHED")
            else:
                self.tracking.set_tags(run_id, {"stopped_early": f"stopped by the scheduler after epoch {epoch}"})
                self.tracking.end(run_id, "KILLED")

        self._safe(complete, self._run_id(trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        def error(run_id):
            self.tracking.set_tags(run_id, {"error": trial_error_text(trial)})
            self.tracking.end(run_id, "FAILED")

        self._safe(error, self._run_id(trial))


def trial_error_text(trial) -> str:
    path = getattr(trial, "error_file", None) or getattr(getattr(trial, "run_metadata", None), "error_filename", None)
    for candidate in (path, Path(trial.local_path or "") / "error.txt" if getattr(trial, "local_path", None) else None):
        if candidate and Path(candidate).is_file():
            text = Path(candidate).read_text(errors="replace")
            return text[-MAX_TAG:]
    return "trial failed (no error file found; see the Ray logs)"
