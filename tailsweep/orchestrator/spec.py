"""The sweep spec: frozen pydantic models holding every default in one place.

A spec comes from YAML plus ``--set key=value`` overrides (values parsed as YAML). Every problem
-- schema errors and checks that need the registries or the data -- is collected and reported
together by :func:`load_spec` / :func:`check_spec` before Ray starts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from .._common import tpe_startup  # the one rule, shared with the report
from ..config import EvalConfig, ModelConfig, TrainConfig
from ..inputs import InputError, read_yaml
from ..losses import SCHEMES

DEMO_SCHEMES = ("unweighted", "inverse_frequency", "effective_number", "focal")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0)]


# The spec's model, train and eval sections are the trial's own (tailsweep/config.py): one class each.
ModelSpec, TrainSpec, EvalSpec = ModelConfig, TrainConfig, EvalConfig


class SynthSpec(_Model):
    """Sizes of the generated demo table (used when ``data.path`` is not set)."""

    n_train: PosInt = 2000
    n_val: PosInt = 500
    n_test: PosInt = 500
    image_size: Annotated[int, Field(ge=16, le=512)] = 64
    seed: int = 0


class DataSpec(_Model):
    path: str | None = Field(None, description="label-table directory; null = the generated demo table")
    synth: SynthSpec = SynthSpec()


# A searched parameter: [low, high] (random and tpe search the range), or with search.algorithm: grid the values
# themselves (every combination runs).
Range = Annotated[list[float], Field(min_length=1)]


class SchemeSpec(_Model):
    name: str
    label: str | None = Field(
        None,
        description="name shown and recorded for this entry (default: the scheme's name); "
        "tells apart two entries of the same scheme",
    )
    params: dict[str, float | str | None] = Field(default_factory=dict, description="fixed parameter values")
    search: list[str] | dict[str, Range] = Field(
        default_factory=dict,
        description="parameters to search: names (registry ranges) or name: [low, high]; "
        "with search.algorithm: grid, name: [values]",
    )
    oversample: Literal["none", "lpros"] = Field(
        "none",
        description="data-side baseline: lpros duplicates training rows of minority label paths "
        "(hierarchies only; docs/methods.md section 2)",
    )
    oversample_budget: float = Field(0.1, gt=0, le=10, description="lpros: at most this x N rows are added")
    seeds: list[int] | None = Field(
        None, min_length=1, description="run this entry with these seeds only (default: the sweep's seeds)"
    )

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SCHEMES:
            raise ValueError(f"unknown scheme '{v}'; allowed: {', '.join(SCHEMES)}")
        return v

    @field_validator("search", mode="before")
    @classmethod
    def _search_shape(cls, v: Any, info: ValidationInfo) -> Any:
        """A choice parameter, or values that are not numbers, named as such (not as pydantic's union errors)."""
        name = info.data.get("name")
        if not isinstance(v, dict) or name not in SCHEMES:
            return v
        params = SCHEMES[name].params
        problems = []
        for k, values in v.items():
            if k in params and params[k].choices:
                problems.append(
                    f"scheme '{name}' parameter '{k}' is a choice ({', '.join(params[k].choices)}), not a number "
                    f"range; list one scheme entry per value (e.g. - name: {name}, label: {name}-{params[k].choices[0]}, "
                    f"params: {{{k}: {params[k].choices[0]}}}) instead of searching it"
                )
            elif not isinstance(values, list) or not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in values
            ):
                problems.append(
                    f"search for '{k}' must list numbers, [low, high] (or the values with search.algorithm: "
                    f"grid), got {values!r}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @model_validator(mode="after")
    def _params_exist(self) -> SchemeSpec:
        info = SCHEMES[self.name]
        problems = self._param_problems(info) + self._search_problems(info)
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds must be distinct, got {self.seeds}")
        if isinstance(self.search, dict):
            for k, values in self.search.items():
                if k in info.params and not info.params[k].choices:
                    problems += self._range_problems(info.params[k], k, values)
        if not problems:
            problems += info.problems(self.params)
        if self.oversample != "none" and not info.needs_hierarchy:
            problems.append(
                f"oversample: {self.oversample} balances label paths of a hierarchy; scheme '{self.name}' "
                "is flat -- use it with mcloss or node_imbalance"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _param_problems(self, info) -> list[str]:
        """Fixed parameters: each one the scheme's, within its domain."""
        problems = []
        for k, v in self.params.items():
            if k not in info.params:
                problems.append(
                    f"scheme '{self.name}' has no parameter '{k}' (it takes {sorted(info.params) or 'none'})"
                )
            elif (why := info.params[k].check(v)) is not None:
                problems.append(f"scheme '{self.name}' parameter '{k}' {why}")
        return problems

    def _search_problems(self, info) -> list[str]:
        """Searched parameters: each one the scheme's, with a range (given or default), and never a choice."""
        problems = []
        names = self.search if isinstance(self.search, list) else list(self.search)
        for k in names:
            if k not in info.params:
                problems.append(
                    f"scheme '{self.name}' cannot search '{k}' (parameters: {sorted(info.params) or 'none'})"
                )
            elif info.params[k].choices:
                problems.append(
                    f"scheme '{self.name}' parameter '{k}' is a choice ({', '.join(info.params[k].choices)}); "
                    "list one entry per value (with a label) instead of searching it"
                )
            elif isinstance(self.search, list) and not info.params[k].searchable:
                problems.append(
                    f"scheme '{self.name}' parameter '{k}' has no default range; give one as {k}: [low, high]"
                )
        return problems

    def _range_problems(self, param, k: str, values: list) -> list[str]:
        """A searched parameter's range [low, high], or its grid values, within the parameter's domain."""
        if len(values) == 2 and not values[0] < values[1]:
            return [
                f"search range for '{k}' must have low < high, got {values} (with search.algorithm: "
                "grid, list distinct values in increasing order)"
            ]
        if len(values) == 2:
            why = param.check_range(*values)
            return [] if why is None else [f"scheme '{self.name}' parameter '{k}' {why}"]
        # grid values (the sweep-level check says when that is not a grid)
        problems = []
        if len(set(values)) != len(values):
            problems.append(f"scheme '{self.name}' search values for '{k}' repeat one: {values}")
        return problems + [
            f"scheme '{self.name}' parameter '{k}' value {v:g} {why}"
            for v in values
            if (why := param.check(v)) is not None
        ]

    @property
    def display(self) -> str:
        """The entry's label, or the scheme's name."""
        return self.label or self.name

    def search_ranges(self) -> dict[str, tuple[float, float, str]]:
        """name -> (low, high, scale) of the parameters this scheme searches (random and tpe)."""
        info = SCHEMES[self.name]
        if isinstance(self.search, list):
            return {k: (info.params[k].low, info.params[k].high, info.params[k].scale) for k in self.search}
        return {k: (v[0], v[-1], info.params[k].scale) for k, v in self.search.items()}

    def search_values(self) -> dict[str, list[float]]:
        """name -> the values a grid takes (only dict-form search lists values)."""
        return dict(self.search) if isinstance(self.search, dict) else {}


class SearchSpec(_Model):
    algorithm: Literal["random", "tpe", "grid"] = Field(
        "random",
        description="random: seeded draws from each scheme's ranges; tpe: Optuna's TPE sampler, one study "
        "per scheme entry, learning from the mean over seeds; grid: every combination of the "
        "listed values",
    )
    num_samples: PosInt = Field(
        1,
        description="configurations per scheme entry (random draws, or tpe's budget), each "
        "run with every seed; grid runs every combination instead",
    )
    lr: Range | None = Field(None, description="search the learning rate log-uniformly in [low, high] (grid: values)")
    weight_decay: Range | None = Field(
        None, description="search train.weight_decay log-uniformly in [low, high] (grid: values)"
    )
    startup_trials: PosInt | None = Field(
        None,
        description="tpe: configurations drawn at random before TPE models the results (Optuna's "
        "n_startup_trials); null = num_samples // 4, between 2 and 10",
    )
    metric: str = Field("val/macro_ap", description="the metric Tune ranks trials by, and the best checkpoint's")
    mode: Literal["max", "min"] = "max"
    metrics: list[str] | None = Field(
        None,
        description="multi-objective tpe search: two or more validation metrics, e.g. [val/macro_ap, "
        "val/recall_few]; each study learns the Pareto front of their means over seeds (Optuna's TPE, or "
        "NSGA-II from 100 configurations per entry). The first one picks each trial's checkpoint and is "
        "search.metric (leave search.metric out)",
    )
    modes: list[Literal["max", "min"]] | None = Field(
        None, description="one per search.metrics entry (null = max for each); the first is search.mode"
    )
    seed: int = 0

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in metric_names():
            raise ValueError(f"unknown metric; allowed: {', '.join(sorted(metric_names()))}")
        return v

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if len(v) < 2:
            raise ValueError(
                f"a multi-objective search needs two or more metrics, got {len(v)}; for one metric use "
                "search.metric instead"
            )
        if unknown := [m for m in v if m not in metric_names()]:
            raise ValueError(f"unknown metric(s) {unknown}; allowed: {', '.join(sorted(metric_names()))}")
        if len(set(v)) != len(v):
            raise ValueError(f"a metric is listed twice: {v}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _first_objective(cls, data: Any) -> Any:
        """With ``metrics``, ``metric`` / ``mode`` are its first entry (filled in; a different one given is an
        error). A stored spec (resume) carries both, equal."""
        if not isinstance(data, dict) or data.get("metrics") is None:
            if isinstance(data, dict) and data.get("modes") is not None:
                raise ValueError("search.modes is set without search.metrics; set both, or search.mode alone")
            return data
        metrics, modes = data["metrics"], data.get("modes")
        if not isinstance(metrics, list) or not metrics:
            return data  # the field's own check says what is wrong
        if modes is not None and (not isinstance(modes, list) or len(modes) != len(metrics)):
            raise ValueError(f"search.modes must list one mode per search.metrics entry ({len(metrics)}), got {modes}")
        modes = modes or ["max"] * len(metrics)
        for key, first in (("metric", metrics[0]), ("mode", modes[0])):
            if key in data and data[key] != first:
                raise ValueError(
                    f"search.{key} = {data[key]!r} and search.metrics are both set; with search.metrics the "
                    f"{key} is that of the first entry ({first!r}): remove search.{key}"
                    + (" (and give the modes as search.modes)" if key == "mode" else "")
                )
        return {**data, "metric": metrics[0], "mode": modes[0], "modes": modes}

    def objectives(self) -> list[tuple[str, str]]:
        """(metric, mode) of what the search learns from: every search.metrics entry, or search.metric alone."""
        if self.metrics is None:
            return [(self.metric, self.mode)]
        return list(zip(self.metrics, self.modes or ["max"] * len(self.metrics), strict=True))

    @property
    def multi_objective(self) -> bool:
        return self.metrics is not None

    @field_validator("lr", "weight_decay")
    @classmethod
    def _positive_range(cls, v):
        if v is None:
            return v
        if len(v) == 2 and not 0 < v[0] < v[1]:
            raise ValueError(f"need 0 < low < high (searched log-uniformly), got {v}")
        if len(v) != 2 and (min(v) <= 0 or len(set(v)) != len(v)):
            raise ValueError(f"grid values must be distinct and > 0, got {v}")
        return v

    def startup(self) -> int:
        """TPE's random start: ``startup_trials``, or the default of :func:`tpe_startup`."""
        return tpe_startup(self.num_samples, self.startup_trials)


class SchedulerSpec(_Model):
    name: Literal["fifo", "asha"] = "fifo"
    grace_period: PosInt = 1
    reduction_factor: Annotated[float, Field(gt=1)] = 2.0


class ResourcesSpec(_Model):
    workers_per_trial: PosInt = 1
    cpus_per_worker: PosFloat = 1.0
    use_gpu: bool | None = Field(
        None, description="null = use GPUs when the cluster has a GPU node or can add one (its node types)"
    )
    gpus_per_worker: PosFloat = Field(
        1.0,
        description="GPUs per Train worker when on GPU; a fraction below 1 (e.g. 0.25) lets small one-worker "
        "trials share a GPU; above 1, whole GPUs",
    )
    node_wait_s: PosFloat = Field(
        900.0,
        description="on an autoscaling cluster: how long the sweep waits for the nodes it asked for before it "
        "stops (exit 2, naming the node type)",
    )
    max_concurrent_trials: PosInt | None = Field(None, description="null = derived from the cluster's resources")
    lean: bool = Field(
        True,
        description="lean per-trial path: the Train controller inside the trial's process, "
        "Ray Train settings and actor reuse that cut per-trial overhead "
        "(docs/benchmarks.md)",
    )
    dashboard: bool = Field(
        False,
        description="start Ray's dashboard (http://127.0.0.1:8265) with a local Ray; off "
        "by default: about 2 CPU-seconds per trial on 2 cores "
        "(docs/benchmarks.md). A cluster's head has its own",
    )

    @model_validator(mode="after")
    def _gpu_share(self) -> ResourcesSpec:
        g = self.gpus_per_worker
        if g > 1 and g != int(g):
            raise ValueError(
                f"resources.gpus_per_worker = {g:g}: above 1 a worker takes whole GPUs (Ray splits one GPU, "
                "never several); use 1, 2, ... or a fraction below 1"
            )
        if g < 1 and self.workers_per_trial > 1 and self.use_gpu is not False:
            raise ValueError(
                f"resources.gpus_per_worker = {g:g} with resources.workers_per_trial = {self.workers_per_trial}: "
                "the DDP workers of one trial could land on the same GPU, and NCCL cannot run two ranks of one "
                "group on one GPU; use gpus_per_worker: 1 for multi-worker trials, or workers_per_trial: 1 to "
                "share GPUs between trials"
            )
        return self


class TrackingSpec(_Model):
    dir: str = Field("tailsweep-runs", description="where the MLflow store, Ray results and demo data live")
    uri: str | None = Field(None, description="MLflow tracking URI; null = sqlite store in <dir>/mlflow.db")
    experiment: str = "tailsweep"
    storage: str | None = Field(
        None,
        description="Ray results and checkpoints: a path, or a URI every node reaches "
        "(s3://bucket/prefix, gs://...); null = <dir>/ray",
    )


class SweepSpec(_Model):
    """A complete sweep. ``SweepSpec()`` is the demo sweep."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] = "demo"
    data: DataSpec = DataSpec()
    model: ModelSpec = ModelSpec()
    train: TrainSpec = TrainSpec()
    schemes: list[SchemeSpec] = Field(default_factory=lambda: [SchemeSpec(name=n) for n in DEMO_SCHEMES], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1)
    search: SearchSpec = SearchSpec()
    eval: EvalSpec = EvalSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    resources: ResourcesSpec = ResourcesSpec()
    tracking: TrackingSpec = TrackingSpec()

    @field_validator("schemes", mode="before")
    @classmethod
    def _names_to_specs(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"name": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct, got {v}")
        return v

    @model_validator(mode="after")
    def _unique_schemes(self) -> SweepSpec:
        seen: dict = {}
        labels: set = set()
        for i, s in enumerate(self.schemes):
            # compared with every default filled in: `focal` and `{name: focal, params: {gamma: 2}}` are one trial
            full = {k: p.default for k, p in SCHEMES[s.name].params.items()} | dict(s.params)
            for k in s.search if isinstance(s.search, list) else list(s.search):
                full.pop(k, None)
            key = (
                s.name,
                json.dumps(full, sort_keys=True, default=str),
                json.dumps(s.search, sort_keys=True),
                s.oversample,
                s.oversample_budget if s.oversample != "none" else None,
                tuple(s.seeds) if s.seeds else None,
            )
            if key in seen:
                raise ValueError(
                    f"schemes.{i}: scheme '{s.name}' is listed twice with the same settings (defaults "
                    f"filled in: {seen[key]} and this entry would run the same trials); remove one or "
                    "change a parameter"
                )
            seen[key] = f"schemes.{i}"
        for s in self.schemes:
            if s.label is None:
                continue
            if s.label in labels or any(o.label is None and o.name == s.label for o in self.schemes):
                raise ValueError(
                    f"two scheme entries are both called '{s.display}'; give each a distinct label "
                    f"(schemes: - name: {s.name}, label: {s.name}-2, ...)"
                )
            labels.add(s.display)
        return self

    @model_validator(mode="after")
    def _search_fits(self) -> SweepSpec:
        problems = search_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def searched(self, scheme: SchemeSpec) -> list[str]:
        """What ``scheme``'s configurations vary: its searched parameters, then lr and weight_decay when searched."""
        names = list(scheme.search) if isinstance(scheme.search, (list, dict)) else []
        return names + [k for k in ("lr", "weight_decay") if getattr(self.search, k) is not None]

    def resolved(self) -> SweepSpec:
        """This spec with every path absolute (relative ones against the current directory): what is shown by
        ``--show-spec`` and stored with a sweep, so that a resume from anywhere finds the same files."""

        def absolute(v: str | None) -> str | None:
            return v if v is None or "://" in v else str(Path(v).expanduser().resolve())

        return self.model_copy(
            update={
                "data": self.data.model_copy(update={"path": absolute(self.data.path)}),
                "tracking": self.tracking.model_copy(
                    update={"dir": absolute(self.tracking.dir), "storage": absolute(self.tracking.storage)}
                ),
            }
        )

    # --- derived paths --------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return Path(self.tracking.dir).expanduser().resolve()

    @property
    def data_path(self) -> Path:
        if self.data.path:
            return Path(self.data.path).expanduser().resolve()
        s = self.data.synth
        return self.root / "data" / f"synthetic-garments-{s.n_train}-{s.n_val}-{s.n_test}-{s.image_size}px-seed{s.seed}"

    @property
    def tracking_uri(self) -> str:
        return self.tracking.uri or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def storage_path(self) -> str:
        """Where Ray Tune and Train keep results and checkpoints (a local path or a pyarrow URI)."""
        s = self.tracking.storage
        if s is None:
            return str(self.root / "ray")
        return s if "://" in s else str(Path(s).expanduser().resolve())


def search_problems(spec: SweepSpec) -> list[str]:
    """What the search settings cannot run, in words (errors: the sweep is refused before Ray starts)."""
    algo = spec.search.algorithm
    problems = []
    for i, s in enumerate(spec.schemes):
        if algo == "grid" and isinstance(s.search, list) and s.search:
            problems.append(
                f"schemes.{i} ({s.display}): search.algorithm grid runs listed values, and {s.search} "
                "names continuous ranges; give the values, e.g. search: {" + s.search[0] + ": [v1, v2, v3]}"
            )
        if algo != "grid":
            problems += [
                f"schemes.{i} ({s.display}): search for '{k}' lists {len(v)} value(s); a range is [low, high] "
                "-- to run exactly these values use search.algorithm: grid"
                for k, v in s.search_values().items()
                if len(v) != 2
            ]
    if algo != "grid":
        problems += [
            f"search.{k} lists {len(v)} value(s); a range is [low, high] -- to run exactly these values use "
            "search.algorithm: grid"
            for k in ("lr", "weight_decay")
            if (v := getattr(spec.search, k)) is not None and len(v) != 2
        ]
    if spec.search.metrics is not None and algo != "tpe":
        problems.append(
            f"search.metrics (a multi-objective search) needs search.algorithm: tpe, got {algo} (random and grid "
            "draw configurations without learning from a metric); set search.algorithm: tpe, or use search.metric"
        )
    if algo == "tpe":
        if not any(spec.searched(s) for s in spec.schemes):
            problems.append(
                "search.algorithm tpe: nothing to search -- no scheme lists parameters under its search "
                "and search.lr / search.weight_decay are not set; add e.g. `search: [beta]` to "
                "effective_number, or set search.lr: [0.0003, 0.003]"
            )
        if spec.scheduler.name == "asha":
            problems.append(
                "scheduler asha with search.algorithm tpe: ASHA stops each seed's trial on its own curve, "
                "so TPE would learn from means over seeds cut at different epochs (and from trials that "
                "never finish); use scheduler fifo with tpe (TPE spends the budget on good regions "
                "instead), or asha with search.algorithm random"
            )
    return problems


def search_warnings(spec: SweepSpec) -> list[str]:
    """What the search settings will run but probably not as meant (printed before the sweep starts)."""
    s = spec.search
    out = []
    if s.algorithm == "tpe":
        for sch in spec.schemes:
            names = spec.searched(sch)
            if names and s.num_samples < len(names):
                out.append(
                    f"{sch.display}: search.num_samples = {s.num_samples} configurations for {len(names)} "
                    f"searched parameters ({', '.join(names)}): too few to learn anything about each; "
                    "raise num_samples (10-30 per scheme is typical) or search fewer parameters"
                )
        if any(spec.searched(sch) for sch in spec.schemes) and s.num_samples <= s.startup():
            out.append(
                f"search.num_samples = {s.num_samples} is within TPE's random start ({s.startup()} "
                "configurations, search.startup_trials): this search is a random search; raise num_samples "
                "or lower startup_trials"
            )
    if s.algorithm == "grid":
        two = [f"{sch.display}.{k}" for sch in spec.schemes for k, v in sch.search_values().items() if len(v) == 2]
        two += [f"search.{k}" for k in ("lr", "weight_decay") if (v := getattr(s, k)) is not None and len(v) == 2]
        if two:
            out.append(f"grid: {', '.join(two)} take exactly the two values listed, not the range between them")
        if s.num_samples > 1:
            out.append(
                f"grid: search.num_samples = {s.num_samples} is ignored (a grid runs every combination once per seed)"
            )
    return out


class SpecError(ValueError):
    """Every problem with a spec, one per line."""

    def __init__(self, problems: Sequence[str], source: str = "sweep spec"):
        self.problems = list(problems)
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{body}")


def _format_pydantic(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            out.append(
                f"{loc}: unknown key (remove it or check the spelling; `launch sweep --show-spec` lists every key)"
            )
        elif e["type"] in ("model_type", "dict_type") or "input" not in e or not e["loc"]:
            out.append(f"{loc}: {msg}")
        else:
            out.append(f"{loc} = {json.dumps(e['input'], default=str)}: {msg}")
    return out


def option_problems(model: type[BaseModel], values: dict[str, Any]) -> list[str]:
    """Command-line options checked as the spec's keys of ``model`` are: one line per bad option, named as typed
    (``n_train`` -> ``--n-train``)."""
    try:
        model.model_validate(values)
    except ValidationError as exc:
        return [
            f"--{str(e['loc'][0]).replace('_', '-')} {e['input']}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
    return []


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise SpecError([f"--set {item!r}: expected key=value, e.g. --set train.epochs=5"])
    key, _, raw = item.partition("=")
    if not [k for k in key.strip().split(".") if k]:
        raise SpecError([f"--set {item!r}: no key before '='; expected key=value, e.g. --set train.epochs=5"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise SpecError([f"--set {key}: value {raw!r} is not valid YAML ({exc})"]) from exc
    return [k for k in key.strip().split(".") if k], value


def apply_overrides(raw: dict, overrides: Sequence[str]) -> dict:
    out = json.loads(json.dumps(raw))  # deep copy of plain data
    problems = []
    for item in overrides:
        try:
            keys, value = parse_override(item)
        except SpecError as exc:
            problems += exc.problems
            continue
        node = out
        for k in keys[:-1]:
            if not isinstance(node.get(k, {}), dict):
                problems.append(f"--set {'.'.join(keys)}: '{k}' is not a section")
                break
            node = node.setdefault(k, {})
        else:
            node[keys[-1]] = value
    if problems:
        raise SpecError(problems)
    return out


# Keys whose values are filesystem paths: relative ones in a spec file resolve against the file's folder.
PATH_KEYS = (("data", "path"), ("tracking", "dir"), ("tracking", "storage"), ("model", "weights"))


def _resolve_file_paths(raw: dict, base: Path) -> None:
    """In place: the spec file's relative paths made absolute against ``base`` (the file's folder), as Hydra,
    docker-compose and Ray's cluster YAML resolve theirs. URIs (``s3://``...) and absolute paths stay."""
    for section, key in PATH_KEYS:
        node = raw.get(section)
        value = node.get(key) if isinstance(node, dict) else None
        if not isinstance(value, str) or not value or "://" in value:
            continue
        p = Path(value).expanduser()
        node[key] = str(p if p.is_absolute() else (base / p).resolve())


def load_spec(path: str | Path | None = None, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read YAML (or the demo defaults when ``path`` is None), apply overrides, validate the schema.

    Relative paths written in the file resolve against the file's folder; ``--set`` values (and defaults)
    against the current directory, when they are used (:meth:`SweepSpec.resolved` pins them)."""
    raw: dict = {}
    source = "demo sweep (built-in defaults)"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise SpecError([f"{p}: file not found"], source)
        try:
            raw = read_yaml(p, "sweep spec") or {}
        except InputError as exc:
            raise SpecError([str(exc)], source) from None
        if not isinstance(raw, dict):
            raise SpecError([f"top level must be a mapping of sections, got {type(raw).__name__}"], source)
        _resolve_file_paths(raw, p.resolve().parent)
    raw = apply_overrides(raw, overrides)
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_format_pydantic(exc) + _data_problems(raw), source) from None


def _data_problems(raw: dict) -> list[str]:
    """The table's own errors when the spec has schema errors but its data.path is a valid directory, so that one
    run reports both (the sweep's full check needs a valid spec)."""
    from ..datasets import validate_table

    data = raw.get("data") if isinstance(raw, dict) else None
    path = data.get("path") if isinstance(data, dict) else None
    if not isinstance(path, str) or not Path(path).expanduser().is_dir():
        return []
    full = Path(path).expanduser().resolve()
    return [f"data.path {full}: {p}" for p in validate_table(full) if p.severity == "error"]


def check_spec(spec: SweepSpec, check_data: bool = True) -> list[str]:
    """The rules that need the registries or the table (``validate.py``), without the resource plan; every problem
    (empty = fine). ``check_data``: validate the spec's table (when ``data.path`` names one)."""
    from .validate import open_table, spec_problems

    table, problems = None, []
    if check_data and spec.data.path:
        table, problems = open_table(spec.data_path)
    return problems + spec_problems(spec, table)


def metric_names() -> set[str]:
    from ..datasets import BUCKETS

    base = ["micro_auprc", "macro_ap", "micro_f1"]
    base += [f"macro_{k}{s}" for k in ("precision", "recall", "f1") for s in ("", "_allnodes")]
    base += [f"{m}_{b}" for m in ("recall", "f1", "ap") for b in BUCKETS]
    return {f"val/{m}" for m in base} | {"train/loss"}


def spec_to_yaml(spec: SweepSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
