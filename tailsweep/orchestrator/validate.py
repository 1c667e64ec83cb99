"""One validation of a sweep: every rule, every problem at once, before anything is written or started.

    plan = validate(spec, cluster)      # raises SpecError listing every problem; else the plan to run

The rules, in the order they are reported: the spec against the table (schemes that need a hierarchy, backbone
against input kind, splits), the data pipeline's combinations, the resource plan against the cluster (the CPUs
and GPUs a local Ray would have, or a cluster's nodes), the tracking server. The table is validated once (each
image decoded once). The pydantic schema itself (types, ranges, unknown keys, search settings) was checked when
the spec was loaded (``spec.load_spec``). ``run_sweep`` trusts what this returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..config import TrialConfig
from ..datasets import LabelStats, LabelTable, TableError, label_stats, validate_table
from ..losses import SCHEMES
from ._plan import plan_trials, planned_count
from ._store import sweep_store_problems, uri_problem
from .spec import SpecError, SweepSpec, search_warnings


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: what ``run_sweep`` runs, as checked."""

    spec: SweepSpec
    table: LabelTable
    stats: LabelStats
    resources: dict  # the resource plan (_sweep.plan_resources): concurrency, use_gpu, per-worker values
    trials: list[TrialConfig]  # random / grid: every trial; tpe: the entries with nothing to search
    total: int  # every trial the sweep runs (a tpe search's budget included)
    cluster: dict  # the resources it was planned against
    shape: object = None  # an autoscaling cluster's alive nodes and node types (_autoscale.ClusterShape), or None
    warnings: list[str] = field(default_factory=list)


def table_problems(spec: SweepSpec, table: LabelTable) -> list[str]:
    """The spec against its table: what the schemes, the backbone and the training splits need of the data."""
    problems = []
    for sch in spec.schemes:
        if SCHEMES[sch.name].needs_hierarchy and not table.is_hierarchical:
            problems.append(
                f"schemes: '{sch.name}' needs a label hierarchy; table '{table.name}' has none -- "
                "pick a flat scheme or add parents to labels.parquet"
            )
    if table.input_kind == "features" and spec.model.backbone != "mlp":
        problems.append(
            f"model.backbone = {spec.model.backbone!r}: table '{table.name}' has feature vectors, "
            "not images; use backbone: mlp"
        )
    if table.input_kind != "features" and spec.model.backbone == "mlp":
        problems.append(f"model.backbone = 'mlp': table '{table.name}' has images; pick a torchvision backbone")
    carved = table.manifest.extra.get("val_from_train")
    selects = spec.train.final_model == "best" or spec.scheduler.name == "asha"
    if carved and "val" in spec.train.train_splits and selects:
        problems.append(
            f"train.train_splits includes val, but table '{table.name}' has no validation file: its val split "
            f"is {carved:.0%} of the training file carved out at import, and training on it leaves no "
            "held-out rows to select on -- with train_splits [train, val] (C-HMCNN's protocol: the one "
            "training file) use train.final_model: last and scheduler fifo; to select or stop early, "
            "train on [train] alone"
        )
    return problems


def pipeline_problems(spec: SweepSpec, table: LabelTable | None = None) -> list[str]:
    """Data-pipeline combinations that cannot run (each would fail every trial at run time)."""
    t = spec.train
    streams = t.pipeline == "stream" and (table is None or table.input_kind == "image")
    problems = []
    if t.decode == "gpu" and spec.resources.use_gpu is False:
        problems.append(
            "train.decode = 'gpu' decodes images on the GPU, but resources.use_gpu is false; set "
            "resources.use_gpu: true, or train.decode: cpu (or auto: the GPU when there is one)"
        )
    if streams:
        if spec.model.image_size is None:
            problems.append("train.pipeline = stream crops images to model.image_size; set model.image_size (e.g. 224)")
        for i, sch in enumerate(spec.schemes):
            if sch.oversample != "none":
                problems.append(
                    f"schemes.{i} ({sch.display}): oversample = {sch.oversample} copies rows of the in-memory "
                    "training split, and train.pipeline = stream streams the split files as they are; use "
                    "train.pipeline: memory with oversampling, or drop the oversampling"
                )
    return problems


def open_table(path: Path, warnings: list[str] | None = None) -> tuple[LabelTable | None, list[str]]:
    """The table at ``path`` after one validation (every image decoded once), or the table's errors; its warnings
    (labels without training positives, unlabelled training rows) are appended to ``warnings`` when given."""
    found = validate_table(path)
    errors = [f"data.path {path}: {p}" for p in found if p.severity == "error"]
    if warnings is not None:
        warnings += [f"data.path {path}: {p}" for p in found if p.severity != "error"]
    if errors:
        return None, errors
    try:
        return LabelTable(path), []
    except TableError as exc:
        return None, [f"data.path: {exc}"]


def spec_problems(spec: SweepSpec, table: LabelTable | None) -> list[str]:
    """Every rule that needs the registries or the table, without the resource plan (``check_spec``'s part)."""
    problems = pipeline_problems(spec, table)
    if table is not None:
        problems = table_problems(spec, table) + problems
    return problems


def plan_problems(spec: SweepSpec, cluster: Mapping[str, float], shape=None) -> tuple[dict | None, list[str]]:
    """The rules that need no table: the data pipeline, the resource plan against ``cluster`` (or what an
    autoscaling cluster's ``shape`` can grow to), the tracking server. Returns the resource plan (None when it
    cannot be made) and the problems."""
    from ._sweep import plan_resources

    problems = pipeline_problems(spec)
    resources = None
    try:
        resources = plan_resources(spec, dict(cluster), planned_count(spec), shape)
    except SpecError as exc:
        problems += exc.problems
    problems += sweep_store_problems(spec.root, spec.tracking.uri)
    if spec.tracking_uri.startswith(("http://", "https://")) and uri_problem(spec.tracking_uri, "") is None:
        from ._tracking import tracking_server_problem

        if (why := tracking_server_problem(spec.tracking_uri)) is not None:
            problems.append(why)
    return resources, problems


def validate(
    spec: SweepSpec,
    cluster: Mapping[str, float],
    source: str = "sweep spec",
    table: LabelTable | None = None,
    shape=None,
) -> SweepPlan:
    """Check everything a sweep needs against ``cluster`` (its CPUs and GPUs; ``shape``: an autoscaling cluster's
    nodes and node types); the plan, or a SpecError listing every problem. ``table``: an already validated table
    (else the spec's is validated here, once)."""
    problems: list[str] = []
    warnings = search_warnings(spec)
    if table is None:
        table, problems = open_table(spec.data_path, warnings)
    if table is not None:
        problems += table_problems(spec, table)
    resources, more = plan_problems(spec, cluster, shape)
    problems += [p for p in more if p not in problems]
    if table is not None:
        problems += [p for p in pipeline_problems(spec, table) if p not in problems]
    if problems:
        raise SpecError(problems, source)
    return SweepPlan(
        spec=spec,
        table=table,
        stats=label_stats(table),
        resources=resources,
        trials=plan_trials(spec, resources),
        total=planned_count(spec),
        cluster=dict(cluster),
        shape=shape,
        warnings=warnings,
    )
