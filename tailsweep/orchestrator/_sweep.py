"""Run a sweep: validate everything, start (or join) Ray, open the MLflow parent run, fit the Tuner,
print and store the comparison."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ..analysis import summary as _report
from ..datasets import LabelTable, TableValidationError, check_table, label_stats, synth_garments
from ._plan import plan_trials, planned_count
from ._tracking import KIND_TAG, SWEEP_TAG, Tracking
from .spec import SpecError, SweepSpec, check_spec, search_warnings, spec_to_yaml

TRIAL_RESOURCE = "tailsweep_trial"  # custom resource held by each trial's driver (never a CPU)

# The lean per-trial path (``resources.lean``, on by default) and every private Ray API it uses live in
# ``_lean/`` (imported only when the path is on; on another Ray minor version the plain path runs).
log = logging.getLogger(__name__)


class SweepError(RuntimeError):
    pass


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    parent_run_id: str
    experiment_id: str
    report_dir: Path
    rows: list[dict]
    summary: list[dict]
    interrupted: bool = False  # Ctrl-C (or `launch stop`) ended it early: finish it with --resume


class LocalRayClaim:
    """One local Ray per tracking dir at a time: a sweep that starts its own local Ray holds an exclusive lock
    on ``<tracking.dir>/.local-ray.lock`` (``fcntl.flock``; the kernel drops it when the process ends, however
    it ends) until that Ray is shut down. A second sweep on the same tracking dir would start a second Ray
    sized to every CPU and the two would fight over the cores: it is refused, naming the sweep that holds it.
    A sweep that joins a running cluster (``RAY_ADDRESS``, or Ray already initialised) takes no claim."""

    FILE = ".local-ray.lock"

    def __init__(self, fd: int | None = None):
        self.fd = fd

    @classmethod
    def take(cls, root: Path, sweep_id: str) -> LocalRayClaim:
        import fcntl

        if os.environ.get("RAY_ADDRESS"):
            return cls()
        import ray

        if ray.is_initialized():
            return cls()
        root.mkdir(parents=True, exist_ok=True)
        path = root / cls.FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "another sweep"
            os.close(fd)
            raise SweepError(f"tracking.dir {root}: {holder} is running with its own local Ray; a second one on the "
                             "same machine would compete for the same CPUs. Wait for it to finish (its live table, "
                             f"or `launch ui --dir {root}`), or give this sweep another tracking.dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"sweep {sweep_id} (pid {os.getpid()}, started {time.strftime('%H:%M:%S')})".encode())
        return cls(fd)

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class _Interrupt:
    """Ctrl-C during ``Tuner.fit``: recorded, then handed to Tune as its documented graceful stop (SIGUSR1, the
    signal Tune always listens to; its own SIGINT handler is switched off with ``TUNE_DISABLE_SIGINT_HANDLER``),
    so the sweep still ends in order -- and the caller knows it was interrupted. A second Ctrl-C interrupts at
    once (KeyboardInterrupt). Only in the main thread, where Python delivers signals."""

    def __init__(self):
        self.seen = False
        self._previous = None
        self._env = None

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR1"):
            self._env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, sig, frame):
        import signal

        if self.seen:  # the second Ctrl-C: now (Tune's stop handler puts this one back after the first)
            raise KeyboardInterrupt
        self.seen = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.kill(os.getpid(), signal.SIGUSR1)

    def __exit__(self, *exc):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            if self._env is None:
                os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
            else:
                os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self._env
        return False


def prepare_data(spec: SweepSpec, console: Console) -> LabelTable:
    """The spec's table, generating the demo table on first use; validated (every problem at once)."""
    path = spec.data_path
    if spec.data.path is None and not path.exists():
        s = spec.data.synth
        console.print(f"Generating the demo dataset ({s.n_train}+{s.n_val}+{s.n_test} garment images, "
                      f"{s.image_size} px) at {path} ...")
        t0 = time.time()
        synth_garments(path, s.n_train, s.n_val, s.n_test, s.image_size, s.seed,
                       progress=lambda done, total: None)
        console.print(f"  done in {time.time() - t0:.0f} s")
    try:
        return check_table(path)
    except TableValidationError as exc:
        raise SpecError([str(exc)], "data") from None


def lean_or_plain(spec: SweepSpec, console: Console, version: str | None = None) -> SweepSpec:
    """``spec`` as it will run: the lean path only on the Ray minor version it was tested with; on any other the
    plain Train V2 path, said in one line (``version``: for tests, default the installed Ray's)."""
    if not spec.resources.lean:
        return spec
    from ._lean import unsupported

    if (why := unsupported(version)) is None:
        return spec
    console.print(f"[yellow]{why}[/]", highlight=False)
    return spec.model_copy(update={"resources": spec.resources.model_copy(update={"lean": False})})


def local_resources() -> dict:
    """The CPUs and GPUs a local Ray started here would report (for ``--dry-run``'s resource check)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    gpus = 0
    try:
        import torch

        gpus = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 (no CUDA build, no driver: no GPUs)
        gpus = 0
    return {"CPU": float(cpus), "GPU": float(gpus)}


def plan_resources(spec: SweepSpec, cluster: dict, n_trials: int) -> dict:
    """Concurrency and per-worker settings from the resources Ray reports; refuses plans that cannot run."""
    r = spec.resources
    cpus = float(cluster.get("CPU", 0))
    gpus = float(cluster.get("GPU", 0))
    use_gpu = (gpus > 0) if r.use_gpu is None else r.use_gpu
    per_trial_cpu = r.workers_per_trial * r.cpus_per_worker
    problems = []
    if per_trial_cpu > cpus + 1e-9:
        problems.append(f"resources: a trial needs {r.workers_per_trial} workers x {r.cpus_per_worker:g} CPU = "
                        f"{per_trial_cpu:g} CPUs but the cluster has {cpus:g}; lower resources.workers_per_trial or "
                        "resources.cpus_per_worker (a worker group that cannot be placed waits forever)")
    if use_gpu and r.workers_per_trial > gpus:
        problems.append(f"resources.use_gpu: a trial needs {r.workers_per_trial} GPUs (one per worker) but the "
                        f"cluster has {gpus:g}")
    held = max(1, int(r.cpus_per_worker))
    loaders = spec.train.loader_workers
    if spec.train.pipeline == "stream" and loaders is not None and loaders > held - 1:
        # Loader processes are not scheduled by Ray: more of them than the worker's spare CPUs would starve
        # the training process (and, with every CPU held by concurrent trials, the whole machine).
        problems.append(f"train.loader_workers = {loaders}: a Train worker holds resources.cpus_per_worker = "
                        f"{r.cpus_per_worker:g} CPU, of which the training process needs one, leaving {held - 1} for "
                        f"loader processes; lower train.loader_workers to {held - 1} or raise resources.cpus_per_worker "
                        f"to {loaders + 1}")
    if spec.train.pipeline == "stream" and spec.model.image_size is None:
        problems.append("train.pipeline = stream crops images to model.image_size; set model.image_size (e.g. 224)")
    if problems:
        raise SpecError(problems, "resource plan")
    by_cpu = math.floor(cpus / per_trial_cpu + 1e-9)
    by_gpu = math.floor(gpus / r.workers_per_trial) if use_gpu else by_cpu
    concurrent = max(1, min(by_cpu, by_gpu, n_trials, r.max_concurrent_trials or n_trials))
    return {"use_gpu": use_gpu, "max_concurrent_trials": concurrent,
            "threads": held, "loader_workers": held - 1 if loaders is None else loaders,
            "cluster_cpus": cpus, "cluster_gpus": gpus}


def sweep_shape(spec: SweepSpec) -> str:
    """The plan in words: settings x seeds, or what a tpe search runs."""
    if spec.search.algorithm == "tpe":
        searched = [s for s in spec.schemes if spec.searched(s)]
        fixed = len(spec.schemes) - len(searched)
        return (f"TPE: {spec.search.num_samples} configurations per searched scheme ({len(searched)}), first "
                f"{spec.search.startup()} at random, x {len(spec.seeds)} seeds"
                + (f"; {fixed} fixed scheme(s)" if fixed else ""))
    trials = plan_trials(spec)
    settings = len({t["group"] for t in trials})
    return (f"{settings} settings x {len(spec.seeds)} seeds" if len(trials) == settings * len(spec.seeds)
            else f"{settings} settings, some with their own seeds")


def _git_commit() -> str:
    if shipped := os.environ.get("TAILSWEEP_GIT_COMMIT"):  # a cluster job: the submitter's checkout (no .git shipped)
        return shipped
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("tailsweep", "torch", "torchvision", "ray", "mlflow", "pyarrow"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "missing"
    return out


def _start_ray(verbose: bool, lean: bool, dashboard: bool = False) -> bool:
    """Join ``RAY_ADDRESS`` if set, else start a local Ray. Returns True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.ERROR}
    if lean:  # job-wide: reaches every trial actor, Train controller and worker of this sweep
        from ._lean import LEAN_ENV

        quiet["runtime_env"] = {"env_vars": dict(LEAN_ENV)}
    if os.environ.get("RAY_ADDRESS"):
        # Joining an existing cluster: never pass num_cpus/resources (DESIGN.md).
        ray.init(**quiet)
        if TRIAL_RESOURCE not in ray.cluster_resources():
            raise SweepError(f"the Ray cluster at {os.environ['RAY_ADDRESS']} has no '{TRIAL_RESOURCE}' resource; "
                             f"start its head with --resources='{{\"{TRIAL_RESOURCE}\": 1000}}'")
        return False
    # Without the dashboard a local Ray runs fewer processes (~2 CPU-seconds per trial measured on 2
    # cores, in the concurrent trials' way); `resources.dashboard: true` brings it back.
    if not lean:
        ray.init(resources={TRIAL_RESOURCE: 10_000}, include_dashboard=dashboard, **quiet)
        return True
    from ._lean import local_ray_start

    with local_ray_start(quiet["runtime_env"], verbose, dashboard):
        ray.init(resources={TRIAL_RESOURCE: 10_000}, include_dashboard=dashboard, **quiet)
    return True


# What `--resume` may override: where results go and how trials are placed -- never what the trials are.
RESUME_OVERRIDABLE = ("tracking.dir", "tracking.uri", "tracking.storage", "resources.")


def resume_override_problems(overrides) -> list[str]:
    """Every ``--set`` a resumed sweep cannot take (it would change the trial plan), naming the key."""
    from .spec import parse_override

    problems = []
    for item in overrides:
        keys, _ = parse_override(item)
        key = ".".join(keys)
        if not any(key == k or (k.endswith(".") and key.startswith(k)) for k in RESUME_OVERRIDABLE):
            problems.append(f"--set {key}: a resumed sweep keeps the settings it started with (they define its "
                            "trials); --resume takes only tracking.dir, tracking.uri, tracking.storage and "
                            "resources.* -- start a new sweep to change the others")
    return problems


def find_resumable(root: Path, sweep: str, overrides=()) -> tuple[SweepSpec, str]:
    """The stored spec and id of a sweep under ``root`` (its tracking.dir) to resume: an id, a unique
    prefix of one, or ``latest``. Its spec is the one it started with (``sweeps/<id>/spec.yaml``), with
    ``overrides`` that cannot change its trials (:data:`RESUME_OVERRIDABLE`) applied."""
    from .spec import load_spec

    found = sorted((d for d in (root / "sweeps").glob("*") if (d / "spec.yaml").is_file()),
                   key=lambda d: d.stat().st_mtime)
    if not found:
        raise SweepError(f"no sweeps to resume under {root}/sweeps; pass the spec file the sweep ran with "
                         "(its tracking.dir locates the sweep), or start one with `launch sweep`")
    hits = found[-1:] if sweep == "latest" else [d for d in found if d.name.startswith(sweep)]
    if len(hits) != 1:
        known = ", ".join(d.name for d in found[-10:])
        raise SweepError(f"--resume {sweep}: {'matches no sweep' if not hits else 'matches several sweeps'} under "
                         f"{root}/sweeps; known (latest 10): {known}, or 'latest'")
    sweep_dir = hits[0]
    # The stored spec may name tracking.dir relative to where the sweep started: pin it to where it was found.
    spec = load_spec(sweep_dir / "spec.yaml", [*overrides, f"tracking.dir={root}"])
    _check_restorable(spec, sweep_dir.name)  # before any data, MLflow or Ray work
    return spec, sweep_dir.name


def _check_restorable(spec: SweepSpec, sweep_id: str) -> str:
    from ray import tune

    path = f"{str(spec.storage_path).rstrip('/')}/{sweep_id}"
    if not tune.Tuner.can_restore(path):
        raise SweepError(f"sweep {sweep_id} has no Tune state at {path} (it stopped before Tune started, or "
                         "tracking.storage changed); start it again without --resume")
    return path


def _open_sweep(spec: SweepSpec, table, stats, trials: list[dict], sweep_id: str, resume: bool):
    """The sweep's folder, stored spec and MLflow parent run (found again on a resume)."""
    report_dir = spec.root / "sweeps" / sweep_id
    report_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (report_dir / "spec.yaml").write_text(spec_to_yaml(spec.resolved()))  # absolute paths: resumable anywhere

    digest = table.digest()
    # A tracking server keeps the artifacts itself (proxied): a local folder would be on whichever node logs.
    served = spec.tracking_uri.startswith(("http://", "https://"))
    tracking = Tracking(spec.tracking_uri, spec.tracking.experiment, None if served else spec.root / "mlartifacts")
    parent_run_id = tracking.get_or_create_run(
        # matched on the kind too: the sweep's child runs carry its sweep id as well
        {SWEEP_TAG: sweep_id, KIND_TAG: "sweep"}, name=sweep_id,
        tags={"dataset": table.name, "git_commit": _git_commit()},
        params={"spec": spec.resolved().model_dump(mode="json"), "dataset_digest": digest, "num_trials": planned_count(spec),
                "versions": _versions()})
    if not resume:  # the sweep's table as the parent run's dataset too (its row in the runs table shows it)
        from ._tracking import dataset_inputs

        tracking.client.log_inputs(parent_run_id, datasets=dataset_inputs(table, tuple(spec.train.train_splits)))
    stats_rows = stats.summary()
    _report.write_csv(report_dir / "label_stats.csv", stats_rows)
    tracking.client.log_artifact(parent_run_id, str(report_dir / "spec.yaml"))
    tracking.client.log_artifact(parent_run_id, str(report_dir / "label_stats.csv"))
    return report_dir, tracking, parent_run_id, digest


def run_sweep(spec: SweepSpec, console: Console | None = None, verbose: bool = False,
              sweep_id: str | None = None, callbacks: list | None = None, resume: bool = False) -> SweepResult:
    """Validate, then run the whole sweep; returns the per-trial rows and the comparison.

    Args:
        callbacks: extra driver-side ``ray.tune.Callback`` objects (benchmarks, observers).
        resume: finish the interrupted sweep ``sweep_id`` (Tune's restore): finished trials are kept,
            unfinished ones resume from their last Train checkpoint in the same MLflow child runs.
    """
    if resume and not sweep_id:
        raise SweepError("resume needs the sweep id")
    console = console or Console()
    if not verbose:
        # Tune's own reporter stays behind --verbose: the legacy reporter with verbose=0 prints nothing.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read by mlflow when it is imported
        import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

        logging.getLogger("mlflow").setLevel(logging.WARNING)
    problems = check_spec(spec)
    if problems:
        raise SpecError(problems)
    for warning in search_warnings(spec):
        console.print(f"[yellow]{warning}[/]", highlight=False)
    spec = lean_or_plain(spec, console)
    table = prepare_data(spec, console)
    stats = label_stats(table)
    if table.input_kind == "features" and spec.model.backbone != "mlp":
        raise SpecError([f"model.backbone = {spec.model.backbone!r}: the table has features; use 'mlp'"])
    trials = plan_trials(spec)
    if spec.tracking_uri.startswith(("http://", "https://")):
        from ._tracking import tracking_server_problem

        if (why := tracking_server_problem(spec.tracking_uri)) is not None:
            raise SpecError([why], "tracking")  # before any sweep folder or run exists
    sweep_id = sweep_id or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    claim = LocalRayClaim.take(spec.root, sweep_id)  # before anything is written: one local Ray per tracking.dir
    try:
        report_dir, tracking, parent_run_id, digest = _open_sweep(spec, table, stats, trials, sweep_id, resume)
    except BaseException:
        claim.release()
        raise

    # Tune saves its experiment state (what `--resume` restores) every few seconds instead of its
    # adaptive default (up to minutes apart): a killed driver then loses at most that much of the record
    # of which trials finished. The state is a small JSON per trial.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    started = False
    status = "FAILED"
    try:
        started = _start_ray(verbose, spec.resources.lean, spec.resources.dashboard)
        import ray

        total = planned_count(spec)
        resources = plan_resources(spec, ray.cluster_resources(), total)
        console.print(f"Sweep [bold]{sweep_id}[/]: {total} trials ({len(spec.schemes)} schemes, {sweep_shape(spec)}), "
                      f"up to {resources['max_concurrent_trials']} at a time, "
                      f"{spec.resources.workers_per_trial} worker(s) each"
                      f"{' on GPU' if resources['use_gpu'] else ''}; MLflow: {spec.tracking_uri}")
        with _Interrupt() as interrupt:
            results = _fit(spec, table, stats, trials, sweep_id, parent_run_id, tracking, resources, console, verbose,
                           callbacks or [], resume)
        rows = _report.trial_rows(results)
        summary = _report.summarise(rows, spec.search.metric, spec.search.mode)
        _report.write_csv(report_dir / "trials.csv", rows)
        md = (f"# Sweep {sweep_id}\n\nDataset `{table.name}` ({digest}), {len(rows)} trials, "
              f"metric `{spec.search.metric}`, seeds {spec.seeds}.\n\n" + _report.as_markdown(summary, spec.search.metric))
        (report_dir / "report.md").write_text(md)
        for f in ("trials.csv", "report.md", "optuna.db"):  # optuna.db: a tpe search's studies (_search.py)
            if (report_dir / f).is_file():
                tracking.client.log_artifact(parent_run_id, str(report_dir / f))
        _report.print_table(summary, spec.search.metric, console)
        if (late := _report.tracking_summary(rows)) is not None:
            console.print(f"[yellow]{late}[/]", highlight=False)
        _log_summary(tracking, parent_run_id, summary)
        try:  # the full report (tables, tests, plots) from what MLflow now holds; logged under report/
            from ..analysis.report import write_report

            md, _ = write_report(tracking.uri, sweep_id, report_dir / "report", experiment=spec.tracking.experiment)
            console.print(f"report: {md} (and report.html beside it; in MLflow under the parent run's report/)")
        except Exception as exc:  # noqa: BLE001 -- a plotting failure must not lose the sweep's results
            console.print(f"[yellow]the full report was not written ({type(exc).__name__}: {exc}); "
                          f"run `launch report {sweep_id}` to retry[/]")
        errors = sum(r["status"] == "ERROR" for r in rows)
        tracking.set_tags(parent_run_id, {"trials_failed": errors})
        # Tune ends a sweep early and in order on Ctrl-C; with FIFO every trial that did not fail
        # must have run all its epochs, so missing epochs mean the sweep was interrupted.
        cut_short = [r for r in rows if r["status"] != "ERROR" and (r["epochs"] or 0) < spec.train.epochs]
        interrupted = interrupt.seen or bool(cut_short and spec.scheduler.name == "fifo")
        status = "KILLED" if interrupted else "FINISHED"
        if interrupted:
            console.print(f"[yellow]sweep interrupted: {len(cut_short)} trial(s) did not finish[/]")
        return SweepResult(sweep_id, parent_run_id, tracking.experiment_id, report_dir, rows, summary, interrupted)
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        try:
            tracking.close_sweep(parent_run_id, status)
        except Exception as exc:
            log.warning("MLflow: could not close sweep %s: %s", sweep_id, exc)
        if started:
            import ray

            ray.shutdown()
        claim.release()


def _restore(spec: SweepSpec, sweep_id: str, trainable, trials: list[dict] | None, driver_callbacks: list, progress):
    """Tune's restore of an interrupted sweep: finished and failed trials stay as they ended, unfinished
    ones start again (their Train run, named after the trial id, resumes from its checkpoint)."""
    from ray import tune

    path = _check_restorable(spec, sweep_id)
    # A searched sweep (tpe) has no grid: its searcher, restored from the experiment state, suggests the rest.
    grid = {} if trials is None else {"param_space": {"trial": tune.grid_search(trials)}}
    tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=False, **grid)
    # The experiment state holds the callbacks of the first run (pickled): this run's take their place.
    tuner._local_tuner.get_run_config().callbacks = driver_callbacks  # noqa: SLF001 (pinned ray 2.60, tested)
    try:
        return tuner.fit()
    finally:
        progress.close()


def _log_summary(tracking: Tracking, run_id: str, summary: list[dict]) -> None:
    """Mean over seeds of each setting's headline metrics on the parent run (`<setting>/<metric>`)."""
    import re

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = []
    for e in summary:
        key = re.sub(r"[^A-Za-z0-9_.\-/ ]", "", e["setting"]).replace(" ", "_")
        for col, _ in _report.COLUMNS:
            mean = e[col][0]
            if not math.isnan(mean):
                metrics.append(Metric(f"{key}/{col.replace('/', '_')}", mean, now, 0))
    tracking.client.log_batch(run_id, metrics=metrics)  # MlflowClient splits it into MLflow's limits itself


def _lean_sweeper() -> list:
    from ._lean.inline import PlacementGroupSweeper

    return [PlacementGroupSweeper()]


def _fit(spec, table, stats, trials, sweep_id, parent_run_id, tracking, resources, console, verbose, callbacks,
         resume=False):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from ._progress import ProgressView
    from ._tracking import RunStatusCallback
    from ._trial import TrialContext, run_trial

    m, t = spec.model, spec.train
    worker_defaults = {
        "data": str(table.root), "stats": stats.to_dict(), "scheme": "", "backbone": m.backbone,
        "image_size": m.image_size, "weights": m.weights, "freeze": m.freeze, "hidden": m.hidden, "layers": m.layers, "dropout": m.dropout,
        "epochs": t.epochs, "batch_size": t.batch_size, "eval_batch_size": t.eval_batch_size,
        "optimizer": t.optimizer, "train_splits": tuple(t.train_splits), "final_model": t.final_model,
        "checkpoint_every_s": t.checkpoint_every_s, "lr": t.lr, "lr_schedule": t.lr_schedule,
        "warmup_epochs": t.warmup_epochs, "weight_decay": t.weight_decay, "momentum": t.momentum,
        "augment": t.augment, "pipeline": t.pipeline, "loader_workers": resources["loader_workers"],
        "select_metric": spec.search.metric, "threads": resources["threads"],
        "precision": t.precision, "thresholds": spec.eval.thresholds, "prediction_rows": spec.eval.prediction_rows,
    }
    common = {k: v for k, v in worker_defaults.items() if k not in ("stats", "scheme", "lr")}
    from ._tracking import dataset_inputs

    inputs = dataset_inputs(table, tuple(t.train_splits))
    search_alg = None
    if spec.search.algorithm == "tpe":  # trials are suggested as results come in; each makes its run then
        from ._search import PerSchemeSearch, study_storage
        from ._tracking import ChildRuns

        search_alg = PerSchemeSearch(spec, sweep_id, study_storage(spec.root / "sweeps" / sweep_id),
                                     ChildRuns(tracking, parent_run_id, sweep_id, common, inputs), fixed=trials)
    else:
        run_ids = tracking.plan_child_runs(parent_run_id, sweep_id, trials, common, inputs)
        trials = [{**t, "run_id": run_id} for t, run_id in zip(trials, run_ids, strict=True)]
    total = planned_count(spec)
    # Reuse trial actors (saves a process start and imports per trial); run_trial keeps no
    # global state, so nothing leaks from one trial into the next. Not with ASHA: a stopped
    # trial's function thread is still inside fit() when Tune resets the actor, the reset
    # times out and Tune fails the *next* trial ("Could not re-use actor", seen on ray 2.60).
    # Where Tune reuses them, each keeps its Train workers for its next trial (_lean/inline.py: WorkerReuse).
    reuse = spec.resources.lean and spec.scheduler.name == "fifo"
    ctx = TrialContext(tracking_uri=tracking.uri, storage_path=str(spec.storage_path), worker_defaults=worker_defaults,
                       num_workers=spec.resources.workers_per_trial, cpus_per_worker=spec.resources.cpus_per_worker,
                       use_gpu=resources["use_gpu"], max_failures=t.max_failures, lean=spec.resources.lean,
                       reuse_workers=reuse)
    if spec.scheduler.name == "asha":
        scheduler = ASHAScheduler(time_attr="epoch", max_t=t.epochs, grace_period=min(spec.scheduler.grace_period, t.epochs),
                                  reduction_factor=spec.scheduler.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    progress = ProgressView(total, t.epochs, spec.search.metric, spec.search.mode,
                            resources["max_concurrent_trials"], console)
    trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=ctx), {TRIAL_RESOURCE: 1})
    driver_callbacks = [RunStatusCallback(tracking, t.epochs), progress, *callbacks,
                        *(_lean_sweeper() if spec.resources.lean else [])]
    if resume:
        return _restore(spec, sweep_id, trainable, None if search_alg else trials, driver_callbacks, progress)
    tuner = tune.Tuner(
        trainable,
        param_space={} if search_alg else {"trial": tune.grid_search(trials)},
        tune_config=tune.TuneConfig(
            metric=spec.search.metric, mode=spec.search.mode, scheduler=scheduler,
            **({"search_alg": search_alg, "num_samples": total} if search_alg else {}),
            max_concurrent_trials=resources["max_concurrent_trials"],
            reuse_actors=reuse,
            trial_name_creator=lambda tr: f"{tr.config['trial']['scheme']}-{tr.trial_id}",
            trial_dirname_creator=lambda tr: tr.trial_id,
        ),
        run_config=tune.RunConfig(
            name=sweep_id, storage_path=str(spec.storage_path), verbose=1 if verbose else 0,
            callbacks=driver_callbacks,
        ),
    )
    try:
        return tuner.fit()
    finally:
        progress.close()
