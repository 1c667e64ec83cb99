"""Run a sweep: validate everything, start (or join) Ray, open the MLflow parent run, fit the Tuner,
print and store the comparison."""

from __future__ import annotations

import logging
import math
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ..analysis import summary as _summary
from ..config import TrialConfig
from ..datasets import synth_garments
from ._plan import plan_trials, trial_base
from ._tracking import KIND_TAG, SWEEP_TAG, Tracking
from .spec import SpecError, SweepSpec, spec_to_yaml
from .validate import SweepPlan, plan_problems, validate

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
            raise SweepError(
                f"tracking.dir {root}: {holder} is running with its own local Ray; a second one on the "
                "same machine would compete for the same CPUs. Wait for it to finish (its live table, "
                f"or `launch ui --dir {shlex.quote(str(root))}`), or give this sweep another tracking.dir"
            ) from None
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


def ensure_demo_table(spec: SweepSpec, console: Console) -> None:
    """Generate the demo table on first use (``data.path`` null); validation follows with every other rule."""
    path = spec.data_path
    if spec.data.path is not None or path.exists():
        return
    s = spec.data.synth
    console.print(
        f"Generating the demo dataset ({s.n_train}+{s.n_val}+{s.n_test} garment images, {s.image_size} px) at {path} ..."
    )
    t0 = time.time()
    synth_garments(path, s.n_train, s.n_val, s.n_test, s.image_size, s.seed, progress=lambda done, total: None)
    console.print(f"  done in {time.time() - t0:.0f} s")


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


def plan_resources(spec: SweepSpec, cluster: dict, n_trials: int, shape=None) -> dict:
    """Concurrency and per-worker settings from the resources Ray reports (``cluster``, summed over its nodes), or,
    on an autoscaling cluster (``shape``: an ``_autoscale.ClusterShape`` with node types), from what the cluster can
    grow to; refuses plans that cannot run (SpecError)."""
    from ._autoscale import grow, slots

    r = spec.resources
    cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    growing = shape is not None and bool(shape.types)
    use_gpu = _resolve_gpu(r.use_gpu, gpus, shape if growing else None)
    gpw = r.gpus_per_worker if use_gpu else 0.0
    wanted = max(1, min(n_trials, r.max_concurrent_trials or n_trials))
    add: dict = {}
    if growing:
        growth = grow(shape, r.cpus_per_worker, gpw, r.workers_per_trial, wanted)
        problems = [growth.short] if growth.concurrent == 0 else []
        concurrent, add = max(1, growth.concurrent), growth.add
        node, per_node = growth.lands_on or {}, growth.per_node
    else:
        problems = _static_problems(spec, cpus, gpus, use_gpu, gpw)
        node = {"CPU": cpus, "GPU": gpus}
        per_node = slots(node, r.cpus_per_worker, gpw)
        concurrent = max(1, min(wanted, per_node // r.workers_per_trial))
    held = max(1, int(r.cpus_per_worker))
    # On a GPU node the GPUs bound how many workers land there: each may use the node's CPUs / its workers for
    # loader processes (issue 29: GPU node types have 4-12 vCPUs per GPU), not just the CPUs Ray holds for it.
    usable = max(held, math.floor(float(node.get("CPU", 0)) / per_node + 1e-9)) if use_gpu and per_node else held
    problems += _loader_problems(spec, usable)
    if spec.train.decode == "gpu" and not use_gpu and r.use_gpu is None:
        problems.append(
            f"train.decode = 'gpu' decodes images on the GPU, but the cluster has {gpus:g} GPUs; set "
            "train.decode: cpu (or auto)"
        )
    if problems:
        raise SpecError(problems, "resource plan")
    loaders = spec.train.loader_workers
    return {
        "use_gpu": use_gpu,
        "max_concurrent_trials": concurrent,
        "threads": held,
        "loader_workers": usable - 1 if loaders is None else loaders,
        "cluster_cpus": cpus,
        "cluster_gpus": gpus,
        "workers_per_trial": r.workers_per_trial,
        "cpus_per_worker": r.cpus_per_worker,
        "gpus_per_worker": gpw,
        "node_wait_s": r.node_wait_s,
        "add_nodes": add,  # node type -> nodes the sweep asks the autoscaler for
        "node_slots": per_node,  # workers per node where they land
        "node_note": ", ".join(f"{k} x {n}" for k, n in add.items()) or "no new nodes",
        "worker_cpus": usable,  # CPUs a worker may use where it lands (torch threads + loader processes)
    }


def _resolve_gpu(asked: bool | None, gpus: float, shape) -> bool:
    """``resources.use_gpu``; null = GPU when the cluster has a GPU node or (``shape``) can add one."""
    if asked is not None:
        return asked
    if shape is not None:
        from ._autoscale import gpu_node_possible

        return gpu_node_possible(shape)
    return gpus > 0


def _static_problems(spec: SweepSpec, cpus: float, gpus: float, use_gpu: bool, gpw: float) -> list[str]:
    """What a fixed cluster (its summed resources) cannot place."""
    r = spec.resources
    per_trial_cpu = r.workers_per_trial * r.cpus_per_worker
    problems = []
    if per_trial_cpu > cpus + 1e-9:
        problems.append(
            f"resources: a trial needs {r.workers_per_trial} workers x {r.cpus_per_worker:g} CPU = "
            f"{per_trial_cpu:g} CPUs but the cluster has {cpus:g}; lower resources.workers_per_trial or "
            "resources.cpus_per_worker (a worker group that cannot be placed waits forever)"
        )
    if use_gpu and r.workers_per_trial * gpw > gpus + 1e-9:
        problems.append(
            f"resources.use_gpu: a trial needs {r.workers_per_trial * gpw:g} GPUs ({gpw:g} per worker, "
            f"resources.gpus_per_worker) but the cluster has {gpus:g}"
        )
    return problems


def _loader_problems(spec: SweepSpec, usable: int) -> list[str]:
    loaders = spec.train.loader_workers
    if spec.train.pipeline == "stream" and loaders is not None and loaders > usable - 1:
        # Loader processes are not scheduled by Ray: more of them than the worker's spare CPUs would starve
        # the training process (and, with every CPU held by concurrent trials, the whole machine).
        return [
            f"train.loader_workers = {loaders}: a Train worker holds resources.cpus_per_worker = "
            f"{spec.resources.cpus_per_worker:g} CPU, of which the training process needs one, leaving "
            f"{usable - 1} for loader processes; lower train.loader_workers to {usable - 1} or raise "
            f"resources.cpus_per_worker to {loaders + 1}"
        ]
    return []


def sweep_shape(spec: SweepSpec) -> str:
    """The plan in words: settings x seeds, or what a tpe search runs."""
    if spec.search.algorithm == "tpe":
        searched = [s for s in spec.schemes if spec.searched(s)]
        fixed = len(spec.schemes) - len(searched)
        return (
            f"TPE: {spec.search.num_samples} configurations per searched scheme ({len(searched)}), first "
            f"{spec.search.startup()} at random, x {len(spec.seeds)} seeds"
            + (f"; {fixed} fixed scheme(s)" if fixed else "")
        )
    trials = plan_trials(spec)
    settings = len({t.group for t in trials})
    return (
        f"{settings} settings x {len(spec.seeds)} seeds"
        if len(trials) == settings * len(spec.seeds)
        else f"{settings} settings, some with their own seeds"
    )


def _git_commit() -> str:
    if shipped := os.environ.get("TAILSWEEP_GIT_COMMIT"):  # a cluster job: the submitter's checkout (no .git shipped)
        return shipped
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
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
    from ..trainables._context import FAKE_GPU_ENV, FAKE_GPU_LOG_ENV

    # job-wide: reaches every trial actor, Train controller and worker of this sweep (the test-only switch too)
    env = {k: os.environ[k] for k in (FAKE_GPU_ENV, FAKE_GPU_LOG_ENV) if k in os.environ}
    if lean:
        from ._lean import LEAN_ENV

        env |= LEAN_ENV
    if env:
        quiet["runtime_env"] = {"env_vars": env}
    if os.environ.get("RAY_ADDRESS"):
        # Joining an existing cluster: never pass num_cpus/resources (DESIGN.md).
        ray.init(**quiet)
        if TRIAL_RESOURCE not in ray.cluster_resources():
            raise SweepError(
                f"the Ray cluster at {os.environ['RAY_ADDRESS']} has no '{TRIAL_RESOURCE}' resource; "
                f"start its head with --resources='{{\"{TRIAL_RESOURCE}\": 1000}}'"
            )
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
            problems.append(
                f"--set {key}: a resumed sweep keeps the settings it started with (they define its "
                "trials); --resume takes only tracking.dir, tracking.uri, tracking.storage and "
                "resources.* -- start a new sweep to change the others"
            )
    return problems


def find_resumable(root: Path, sweep: str, overrides=()) -> tuple[SweepSpec, str]:
    """The stored spec and id of a sweep under ``root`` (its tracking.dir) to resume: an id, a unique
    prefix of one, or ``latest``. Its spec is the one it started with (``sweeps/<id>/spec.yaml``), with
    ``overrides`` that cannot change its trials (:data:`RESUME_OVERRIDABLE`) applied."""
    from .spec import load_spec

    found = sorted(
        (d for d in (root / "sweeps").glob("*") if (d / "spec.yaml").is_file()), key=lambda d: d.stat().st_mtime
    )
    if not found:
        raise SweepError(
            f"no sweeps to resume under {root}/sweeps; pass the spec file the sweep ran with "
            "(its tracking.dir locates the sweep), or start one with `launch sweep`"
        )
    hits = found[-1:] if sweep == "latest" else [d for d in found if d.name.startswith(sweep)]
    if len(hits) != 1:
        known = ", ".join(d.name for d in found[-10:])
        raise SweepError(
            f"--resume {sweep}: {'matches no sweep' if not hits else 'matches several sweeps'} under "
            f"{root}/sweeps; known (latest 10): {known}, or 'latest'"
        )
    sweep_dir = hits[0]
    # The stored spec may name tracking.dir relative to where the sweep started: pin it to where it was found.
    spec = load_spec(sweep_dir / "spec.yaml", [*overrides, f"tracking.dir={root}"])
    _check_restorable(spec, sweep_dir.name)  # before any data, MLflow or Ray work
    return spec, sweep_dir.name


def _check_restorable(spec: SweepSpec, sweep_id: str) -> str:
    from ray import tune

    path = f"{str(spec.storage_path).rstrip('/')}/{sweep_id}"
    if not tune.Tuner.can_restore(path):
        raise SweepError(
            f"sweep {sweep_id} has no Tune state at {path} (it stopped before Tune started, or "
            "tracking.storage changed); start it again without --resume"
        )
    return path


def _open_sweep(plan: SweepPlan, sweep_id: str, resume: bool) -> OpenSweep:
    """The sweep's folder, stored spec and MLflow parent run (found again on a resume)."""
    spec, table, stats = plan.spec, plan.table, plan.stats
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
        {SWEEP_TAG: sweep_id, KIND_TAG: "sweep"},
        name=sweep_id,
        tags={"dataset": table.name, "git_commit": _git_commit()},
        params={
            "spec": spec.resolved().model_dump(mode="json"),
            "dataset_digest": digest,
            "num_trials": plan.total,
            "versions": _versions(),
        },
    )
    if not resume:  # the sweep's table as the parent run's dataset too (its row in the runs table shows it)
        from ._tracking import dataset_inputs

        tracking.client.log_inputs(parent_run_id, datasets=dataset_inputs(table, tuple(spec.train.train_splits)))
    stats_rows = stats.summary()
    _summary.write_csv(report_dir / "label_stats.csv", stats_rows)
    tracking.client.log_artifact(parent_run_id, str(report_dir / "spec.yaml"))
    tracking.client.log_artifact(parent_run_id, str(report_dir / "label_stats.csv"))
    return OpenSweep(sweep_id, report_dir, tracking, parent_run_id, digest)


@dataclass(frozen=True)
class OpenSweep:
    """A sweep once its folder and MLflow parent run exist."""

    sweep_id: str
    report_dir: Path
    tracking: Tracking
    parent_run_id: str
    digest: str


def cluster_view(spec: SweepSpec, verbose: bool = False) -> tuple[dict, object]:
    """The resources the sweep will be planned against: a cluster it joins (``RAY_ADDRESS``, or a Ray this process
    already runs) with, on an autoscaling cluster, its node types (``_autoscale.joined_shape``), else what a local
    Ray started here would have (nothing is started for that) and no shape."""
    import ray

    if ray.is_initialized() or os.environ.get("RAY_ADDRESS"):
        _start_ray(verbose, spec.resources.lean, spec.resources.dashboard)  # joins; starts nothing
        from ._autoscale import joined_shape

        return dict(ray.cluster_resources()), joined_shape()
    return local_resources(), None


def prepare(spec: SweepSpec, console: Console, verbose: bool = False, source: str = "sweep spec") -> SweepPlan:
    """The one validation before a sweep (dry or real): the run path (lean or plain), the demo table made on first
    use, then every rule at once against the cluster's resources (``validate.validate``)."""
    spec = lean_or_plain(spec, console)
    cluster, shape = cluster_view(spec, verbose)
    if spec.data.path is None and not spec.data_path.exists():  # nothing is generated for a spec that cannot run
        _, problems = plan_problems(spec, cluster, shape)
        if problems:
            raise SpecError(problems, source)
        ensure_demo_table(spec, console)
    return validate(spec, cluster, source, shape=shape)


def _quiet(verbose: bool) -> None:
    if verbose:
        return
    # Tune's own reporter stays behind --verbose: the legacy reporter with verbose=0 prints nothing.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read by mlflow when it is imported
    import mlflow  # noqa: F401  (configures its loggers on import; quiet them after)

    logging.getLogger("mlflow").setLevel(logging.WARNING)


def run_sweep(
    plan: SweepPlan | SweepSpec,
    console: Console | None = None,
    verbose: bool = False,
    sweep_id: str | None = None,
    callbacks: list | None = None,
    resume: bool = False,
) -> SweepResult:
    """Run a validated sweep (a spec is validated first: ``prepare``); returns the per-trial rows and the
    comparison. Steps: claim the local Ray, open the sweep (folder, spec, MLflow parent run), start Ray, fit the
    Tuner, summarise; the parent run ends FINISHED, KILLED or FAILED whatever happens.

    Args:
        callbacks: extra driver-side ``ray.tune.Callback`` objects (benchmarks, observers).
        resume: finish the interrupted sweep ``sweep_id`` (Tune's restore): finished trials are kept,
            unfinished ones resume from their last Train checkpoint in the same MLflow child runs.
    """
    if resume and not sweep_id:
        raise SweepError("resume needs the sweep id")
    console = console or Console()
    _quiet(verbose)
    if not isinstance(plan, SweepPlan):
        plan = prepare(plan, console, verbose)
    for warning in plan.warnings:
        console.print(warning, style="yellow", highlight=False, markup=False)  # "[labels 'a']" is no markup
    spec = plan.spec
    sweep_id = sweep_id or f"{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with _nodes_for(plan, console):  # an autoscaling cluster: its nodes up before anything is written
        return _run_on(plan, console, verbose, sweep_id, callbacks, resume)


def _nodes_for(plan: SweepPlan, console: Console):
    """On an autoscaling cluster that must grow for this sweep: ask the autoscaler for the workers' bundles and wait
    until they fit (the live view says how many nodes are up); SweepError naming the node type after
    ``resources.node_wait_s``. The context withdraws the request when the sweep ends, so the nodes can scale down."""
    import contextlib

    r = plan.resources
    if plan.shape is None or not r.get("add_nodes"):
        return contextlib.nullcontext()
    from ._autoscale import NodeRequest
    from ._progress import WaitView

    request = NodeRequest(r).__enter__()
    view = WaitView(console)
    try:
        waited = request.wait(r["node_wait_s"], view.show)
    except BaseException as exc:
        request.__exit__(None, None, None)
        if isinstance(exc, TimeoutError):
            raise SweepError(str(exc)) from None
        raise
    finally:
        view.close()
    console.print(f"nodes up after {waited:.0f} s ({r['node_note']})", highlight=False)
    return request


def _run_on(plan: SweepPlan, console: Console, verbose: bool, sweep_id: str, callbacks, resume: bool) -> SweepResult:
    spec = plan.spec
    claim = LocalRayClaim.take(spec.root, sweep_id)  # before anything is written: one local Ray per tracking.dir
    try:
        opened = _open_sweep(plan, sweep_id, resume)
    except BaseException:
        claim.release()
        raise
    # Tune saves its experiment state (what `--resume` restores) every few seconds instead of its
    # adaptive default (up to minutes apart): a killed driver then loses at most that much of the record
    # of which trials finished. The state is a small JSON per trial.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    started, status = False, "FAILED"
    try:
        started = _start_ray(verbose, spec.resources.lean, spec.resources.dashboard)
        _announce(plan, opened, console)
        with _Interrupt() as interrupt:
            results = _fit(plan, opened, console, verbose, callbacks or [], resume)
        result = _summarise(plan, opened, results, interrupt.seen, console)
        status = "KILLED" if result.interrupted else "FINISHED"
        return result
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        _close(opened, status, started)
        claim.release()


def _announce(plan: SweepPlan, opened: OpenSweep, console: Console) -> None:
    spec, r = plan.spec, plan.resources
    console.print(
        f"Sweep [bold]{opened.sweep_id}[/]: {plan.total} trials ({len(spec.schemes)} schemes, {sweep_shape(spec)}), "
        f"up to {r['max_concurrent_trials']} at a time, "
        f"{spec.resources.workers_per_trial} worker(s) each"
        f"{' on GPU' if r['use_gpu'] else ''}; MLflow: {spec.tracking_uri}"
    )


def _summarise(plan: SweepPlan, opened: OpenSweep, results, interrupted: bool, console: Console) -> SweepResult:
    """The end-of-sweep summary (printed, trials.csv, summary.md, the parent run's metrics) and the report
    (report/report.md: the verdict, tables, tests, plots)."""
    spec, report_dir, tracking, parent_run_id = plan.spec, opened.report_dir, opened.tracking, opened.parent_run_id
    sweep_id = opened.sweep_id
    rows = _summary.trial_rows(results)
    summary = _summary.summarise(rows, spec.search.metric, spec.search.mode)
    _summary.write_csv(report_dir / "trials.csv", rows)
    md = (
        f"# Sweep {sweep_id}\n\nDataset `{plan.table.name}` ({opened.digest}), {len(rows)} trials, "
        f"metric `{spec.search.metric}`, seeds {spec.seeds}.\n\n" + _summary.as_markdown(summary, spec.search.metric)
    )
    (report_dir / "summary.md").write_text(md)
    for f in ("trials.csv", "summary.md", "optuna.db"):  # optuna.db: a tpe search's studies (_search.py)
        if (report_dir / f).is_file():
            tracking.client.log_artifact(parent_run_id, str(report_dir / f))
    _summary.print_table(summary, spec.search.metric, console)
    for line in (_summary.tracking_summary(rows), _summary.retry_summary(rows)):
        if line is not None:
            console.print(f"[yellow]{line}[/]", highlight=False)
    _log_summary(tracking, parent_run_id, summary)
    try:  # the full report (tables, tests, plots) from what MLflow now holds; logged under report/
        from ..analysis.report import write_report

        md, data = write_report(tracking.uri, sweep_id, report_dir / "report", experiment=spec.tracking.experiment)
        console.print(data.verdict, markup=False, highlight=False)  # (its intervals' brackets are not markup)
        console.print(
            f"report: {md} (and report.html beside it; in MLflow under the parent run's report/, "
            "its verdict as the run's description)"
        )
    except Exception as exc:  # noqa: BLE001 -- a plotting failure must not lose the sweep's results
        where = ["--uri", spec.tracking.uri] if spec.tracking.uri else ["--dir", str(spec.root)]
        again = shlex.join(["launch", "report", sweep_id, *where])
        console.print(
            f"the full report was not written ({type(exc).__name__}: {exc}); run `{again}` to retry",
            style="yellow",
            markup=False,
        )
    errors = sum(r["status"] == "ERROR" for r in rows)
    tracking.set_tags(parent_run_id, {"trials_failed": errors})
    # Tune ends a sweep early and in order on Ctrl-C; with FIFO every trial that did not fail
    # must have run all its epochs, so missing epochs mean the sweep was interrupted.
    cut_short = [r for r in rows if r["status"] != "ERROR" and (r["epochs"] or 0) < spec.train.epochs]
    interrupted = interrupted or bool(cut_short and spec.scheduler.name == "fifo")
    if interrupted:
        console.print(f"[yellow]sweep interrupted: {len(cut_short)} trial(s) did not finish[/]")
    return SweepResult(sweep_id, parent_run_id, tracking.experiment_id, report_dir, rows, summary, interrupted)


def _close(opened: OpenSweep, status: str, started: bool) -> None:
    """End the parent run (and any child left open) with ``status``; shut down the Ray this sweep started."""
    try:
        opened.tracking.close_sweep(opened.parent_run_id, status)
    except Exception as exc:
        log.warning("MLflow: could not close sweep %s: %s", opened.sweep_id, exc)
    if started:
        import ray

        ray.shutdown()


def _dumps(trials: list[TrialConfig]) -> list[dict]:
    """Trials as Tune carries them in its param space (and its experiment state): their JSON dumps."""
    return [t.model_dump(mode="json") for t in trials]


def _restore(
    spec: SweepSpec, sweep_id: str, trainable, trials: list[TrialConfig] | None, driver_callbacks: list, progress
):
    """Tune's restore of an interrupted sweep: finished and failed trials stay as they ended, unfinished
    ones start again (their Train run, named after the trial id, resumes from its checkpoint)."""
    from ray import tune

    path = _check_restorable(spec, sweep_id)
    # A searched sweep (tpe) has no grid: its searcher, restored from the experiment state, suggests the rest.
    grid = {} if trials is None else {"param_space": {"trial": tune.grid_search(_dumps(trials))}}
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
        for col, _ in _summary.COLUMNS:
            mean = e[col][0]
            if not math.isnan(mean):
                metrics.append(Metric(f"{key}/{col.replace('/', '_')}", mean, now, 0))
    tracking.client.log_batch(run_id, metrics=metrics)  # MlflowClient splits it into MLflow's limits itself


def _lean_sweeper() -> list:
    from ._lean.inline import PlacementGroupSweeper

    return [PlacementGroupSweeper()]


def _fit(plan: SweepPlan, opened: OpenSweep, console: Console, verbose: bool, callbacks: list, resume: bool = False):
    """Tune's run of the plan (or its restore): the trials (or the searcher suggesting them), each with its MLflow
    child run, the trial driver and its context, the scheduler, the driver-side callbacks."""
    from ray import tune

    from ._progress import ProgressView
    from ._tracking import RunStatusCallback
    from ._trial import run_trial

    spec, t = plan.spec, plan.spec.train
    trials, search_alg = _trials_or_searcher(plan, opened)
    # Reuse trial actors (saves a process start and imports per trial); run_trial keeps no
    # global state, so nothing leaks from one trial into the next. Not with ASHA: a stopped
    # trial's function thread is still inside fit() when Tune resets the actor, the reset
    # times out and Tune fails the *next* trial ("Could not re-use actor", seen on ray 2.60).
    # Where Tune reuses them, each keeps its Train workers for its next trial (_lean/inline.py: WorkerReuse).
    reuse = spec.resources.lean and spec.scheduler.name == "fifo"
    ctx = _trial_context(plan, opened, reuse)
    concurrent = plan.resources["max_concurrent_trials"]
    progress = ProgressView(plan.total, t.epochs, spec.search.metric, spec.search.mode, concurrent, console)
    trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=ctx), {TRIAL_RESOURCE: 1})
    driver_callbacks = [
        RunStatusCallback(opened.tracking, t.epochs),
        progress,
        *callbacks,
        *(_lean_sweeper() if spec.resources.lean else []),
    ]
    if resume:
        return _restore(spec, opened.sweep_id, trainable, None if search_alg else trials, driver_callbacks, progress)
    tuner = tune.Tuner(
        trainable,
        param_space={} if search_alg else {"trial": tune.grid_search(_dumps(trials))},
        tune_config=tune.TuneConfig(
            metric=spec.search.metric,
            mode=spec.search.mode,
            scheduler=_scheduler(spec),
            **({"search_alg": search_alg, "num_samples": plan.total} if search_alg else {}),
            max_concurrent_trials=concurrent,
            reuse_actors=reuse,
            trial_name_creator=lambda tr: f"{tr.config['trial']['scheme']}-{tr.trial_id}",
            trial_dirname_creator=lambda tr: tr.trial_id,
        ),
        run_config=tune.RunConfig(
            name=opened.sweep_id,
            storage_path=str(spec.storage_path),
            verbose=1 if verbose else 0,
            callbacks=driver_callbacks,
        ),
    )
    try:
        return tuner.fit()
    finally:
        progress.close()


def _trials_or_searcher(plan: SweepPlan, opened: OpenSweep):
    """Random / grid: every trial with its MLflow child run made now. tpe: the searcher, which makes each
    suggested trial's run as it suggests it (the fixed entries' trials first)."""
    from ._tracking import ChildRuns, dataset_inputs

    spec, tracking = plan.spec, opened.tracking
    inputs = dataset_inputs(plan.table, tuple(spec.train.train_splits))
    if spec.search.algorithm == "tpe":  # trials are suggested as results come in; each makes its run then
        from ._search import PerSchemeSearch, study_storage

        search = PerSchemeSearch(
            spec,
            opened.sweep_id,
            study_storage(opened.report_dir),
            ChildRuns(tracking, opened.parent_run_id, opened.sweep_id, inputs),
            fixed=plan.trials,
            base=trial_base(spec, plan.resources),
        )
        return plan.trials, search
    run_ids = tracking.plan_child_runs(opened.parent_run_id, opened.sweep_id, plan.trials, inputs)
    return [t.model_copy(update={"run_id": run_id}) for t, run_id in zip(plan.trials, run_ids, strict=True)], None


def _trial_context(plan: SweepPlan, opened: OpenSweep, reuse: bool):
    from ._trial import TrialContext

    r = plan.spec.resources
    return TrialContext(
        tracking_uri=opened.tracking.uri,
        storage_path=str(plan.spec.storage_path),
        stats=plan.stats.to_dict(),
        num_workers=r.workers_per_trial,
        cpus_per_worker=r.cpus_per_worker,
        use_gpu=plan.resources["use_gpu"],
        gpus_per_worker=plan.resources["gpus_per_worker"] or 1.0,
        max_failures=plan.spec.train.max_failures,
        lean=r.lean,
        reuse_workers=reuse,
    )


def _scheduler(spec: SweepSpec):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if spec.scheduler.name != "asha":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="epoch",
        max_t=spec.train.epochs,
        grace_period=min(spec.scheduler.grace_period, spec.train.epochs),
        reduction_factor=spec.scheduler.reduction_factor,
    )
