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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..losses import SCHEMES

DEMO_SCHEMES = ("unweighted", "inverse_frequency", "effective_number", "focal")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0)]


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


class ModelSpec(_Model):
    backbone: str = Field("resnet18", description="torchvision model name, or 'mlp' for feature tables")
    image_size: Annotated[int, Field(ge=16, le=1024)] | None = Field(None, description="resize images; null = as stored")
    hidden: PosInt = 512
    layers: Annotated[int, Field(ge=0, le=16)] = 2
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    weights: str | None = Field(None, description="local state-dict file of pretrained weights for the backbone "
                                                  "(never downloaded); efficientnet_lite0 ships its ImageNet weights")
    freeze: bool = Field(False, description="keep the pretrained encoder fixed and train the head; with "
                                            "train.augment off, embeddings are computed once and cached")

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, v: str) -> str:
        from ..trainables import check_backbone

        if (why := check_backbone(v)) is not None:
            raise ValueError(why)
        return v

    @field_validator("weights")
    @classmethod
    def _weights_file(cls, v: str | None) -> str | None:
        if v is None:
            return v
        path = Path(v).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"{path} not found: model.weights names a local PyTorch state-dict file "
                             "(pretrained weights are never downloaded at run time)")
        return str(path)

    @model_validator(mode="after")
    def _pretrained(self) -> ModelSpec:
        if not self.freeze:  # (the models module imports torch: only when it can matter)
            return self._no_weights_for_mlp()
        from ..trainables._models import BUNDLED

        if self.freeze and self.backbone not in BUNDLED and self.weights is None:
            raise ValueError(f"model.freeze: backbone '{self.backbone}' is randomly initialised; freezing it would "
                             f"train on random features -- use {', '.join(BUNDLED)} or give model.weights")
        return self._no_weights_for_mlp()

    def _no_weights_for_mlp(self) -> ModelSpec:
        if self.backbone == "mlp" and (self.freeze or self.weights):
            raise ValueError("model.weights / model.freeze apply to image backbones, not 'mlp'")
        return self


class TrainSpec(_Model):
    epochs: PosInt = 3
    batch_size: PosInt = 64
    eval_batch_size: PosInt = 256
    optimizer: Literal["adamw", "adam", "sgd"] = Field("adamw", description="adam uses the fused kernel (C-HMCNN's choice)")
    lr: PosFloat = 1e-3
    lr_schedule: Literal["cosine", "linear", "constant"] = Field(
        "cosine", description="learning rate over training: cosine (to 0), linear (to 0) or constant "
                              "(C-HMCNN's protocol; what `launch reproduce hmc` uses)")
    warmup_epochs: Annotated[float, Field(ge=0)] = Field(
        0.0, description="linear warm-up of the learning rate over this many epochs (fractions allowed), then "
                         "the schedule")
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    augment: bool = True
    pipeline: Literal["memory", "stream"] = Field(
        "memory", description="images: memory = decode the training split once, random flips; stream = Parquet "
                              "row groups per worker, decoded + RandomResizedCrop/flip (transforms v2) in loader "
                              "processes, for catalogues larger than memory (needs model.image_size)")
    loader_workers: Annotated[int, Field(ge=0)] | None = Field(
        None, description="stream: loader processes per Train worker; null = resources.cpus_per_worker - 1")
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 autocast on GPU, fp32 on CPU")
    max_failures: Annotated[int, Field(ge=0)] = 0
    train_splits: list[Literal["train", "val"]] = Field(
        default_factory=lambda: ["train"], min_length=1,
        description="splits to train on; [train, val] is C-HMCNN's protocol (then use final_model: last)")
    final_model: Literal["best", "last"] = Field("best", description="weights tested at the end: best by search.metric, or last epoch")
    checkpoint_every_s: Annotated[float, Field(ge=0)] = Field(
        10.0, description="checkpoint at most this often (and after the last epoch); 0 = every epoch")


# A searched parameter: [low, high] (random and tpe search the range), or with search.algorithm: grid the values
# themselves (every combination runs).
Range = Annotated[list[float], Field(min_length=1)]


class SchemeSpec(_Model):
    name: str
    label: str | None = Field(None, description="name shown and recorded for this entry (default: the scheme's name); "
                                                "tells apart two entries of the same scheme")
    params: dict[str, float | str | None] = Field(default_factory=dict, description="fixed parameter values")
    search: list[str] | dict[str, Range] = Field(
        default_factory=dict, description="parameters to search: names (registry ranges) or name: [low, high]; "
                                          "with search.algorithm: grid, name: [values]")
    oversample: Literal["none", "lpros"] = Field(
        "none", description="data-side baseline: lpros duplicates training rows of minority label paths "
                            "(hierarchies only; METHODS.md section 2)")
    oversample_budget: float = Field(0.1, gt=0, le=10, description="lpros: at most this x N rows are added")
    seeds: list[int] | None = Field(None, min_length=1, description="run this entry with these seeds only "
                                                                    "(default: the sweep's seeds)")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SCHEMES:
            raise ValueError(f"unknown scheme '{v}'; allowed: {', '.join(SCHEMES)}")
        return v

    @model_validator(mode="after")
    def _params_exist(self) -> SchemeSpec:
        info = SCHEMES[self.name]
        problems = []
        for k, v in self.params.items():
            if k not in info.params:
                problems.append(f"scheme '{self.name}' has no parameter '{k}' (it takes {sorted(info.params) or 'none'})")
            elif (why := info.params[k].check(v)) is not None:
                problems.append(f"scheme '{self.name}' parameter '{k}' {why}")
        names = self.search if isinstance(self.search, list) else list(self.search)
        for k in names:
            if k not in info.params:
                problems.append(f"scheme '{self.name}' cannot search '{k}' (parameters: {sorted(info.params) or 'none'})")
            elif isinstance(self.search, list) and not info.params[k].searchable:
                problems.append(f"scheme '{self.name}' parameter '{k}' has no default range; give one as {k}: [low, high]")
        for k in names:
            if k in info.params and info.params[k].choices:
                problems.append(f"scheme '{self.name}' parameter '{k}' is a choice ({', '.join(info.params[k].choices)}); "
                                "list one entry per value (with a label) instead of searching it")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds must be distinct, got {self.seeds}")
        if isinstance(self.search, dict):
            for k, values in self.search.items():
                if k not in info.params or info.params[k].choices:
                    continue
                if len(values) == 2 and not values[0] < values[1]:
                    problems.append(f"search range for '{k}' must have low < high, got {values} (with search.algorithm: "
                                    "grid, list distinct values in increasing order)")
                elif len(values) == 2 and (why := info.params[k].check_range(*values)) is not None:
                    problems.append(f"scheme '{self.name}' parameter '{k}' {why}")
                elif len(values) != 2:  # grid values (the sweep-level check says when that is not a grid)
                    if len(set(values)) != len(values):
                        problems.append(f"scheme '{self.name}' search values for '{k}' repeat one: {values}")
                    problems += [f"scheme '{self.name}' parameter '{k}' value {v:g} {why}" for v in values
                                 if (why := info.params[k].check(v)) is not None]
        if not problems:
            problems += info.problems(self.params)
        if self.oversample != "none" and not info.needs_hierarchy:
            problems.append(f"oversample: {self.oversample} balances label paths of a hierarchy; scheme '{self.name}' "
                            "is flat -- use it with mcloss or node_imbalance")
        if problems:
            raise ValueError("; ".join(problems))
        return self

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


def tpe_startup(num_samples: int, startup_trials: int | None = None) -> int:
    """How many of a TPE study's configurations are drawn at random: ``startup_trials``, or a quarter of the
    budget within [2, 10]. The one rule, used by the sweep and by the report that reads it back."""
    return startup_trials or max(2, min(10, num_samples // 4))


class SearchSpec(_Model):
    algorithm: Literal["random", "tpe", "grid"] = Field(
        "random", description="random: seeded draws from each scheme's ranges; tpe: Optuna's TPE sampler, one study "
                              "per scheme entry, learning from the mean over seeds; grid: every combination of the "
                              "listed values")
    num_samples: PosInt = Field(1, description="configurations per scheme entry (random draws, or tpe's budget), each "
                                               "run with every seed; grid runs every combination instead")
    lr: Range | None = Field(None, description="search the learning rate log-uniformly in [low, high] (grid: values)")
    weight_decay: Range | None = Field(None, description="search train.weight_decay log-uniformly in [low, high] "
                                                         "(grid: values)")
    startup_trials: PosInt | None = Field(
        None, description="tpe: configurations drawn at random before TPE models the results (Optuna's "
                          "n_startup_trials); null = num_samples // 4, between 2 and 10")
    metric: str = Field("val/macro_ap", description="the metric Tune ranks trials by, and the best checkpoint's")
    mode: Literal["max", "min"] = "max"
    seed: int = 0

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, v: str) -> str:
        if v not in metric_names():
            raise ValueError(f"unknown metric; allowed: {', '.join(sorted(metric_names()))}")
        return v

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


class EvalSpec(_Model):
    thresholds: Literal["fixed", "per_label"] = Field(
        "fixed", description="fixed: predict at 0.5; per_label: also each label's threshold chosen on val to maximise "
                             "its F1 (a label without val positives keeps 0.5), applied to test and reported beside "
                             "the fixed rule (test/tuned_*); on a hierarchy the predictions are closed upward")
    prediction_rows: Annotated[int, Field(ge=0)] = Field(
        20_000, description="test rows whose scores each trial keeps (test_predictions.npz: float16 scores, for "
                            "launch report's paired bootstrap and per-label view); a seeded subsample past it; 0 = none")


class SchedulerSpec(_Model):
    name: Literal["fifo", "asha"] = "fifo"
    grace_period: PosInt = 1
    reduction_factor: Annotated[float, Field(gt=1)] = 2.0


class ResourcesSpec(_Model):
    workers_per_trial: PosInt = 1
    cpus_per_worker: PosFloat = 1.0
    use_gpu: bool | None = Field(None, description="null = use GPUs when the cluster has them")
    max_concurrent_trials: PosInt | None = Field(None, description="null = derived from the cluster's resources")
    lean: bool = Field(True, description="lean per-trial path: the Train controller inside the trial's process, "
                                         "Ray Train settings and actor reuse that cut per-trial overhead "
                                         "(docs/benchmarks.md)")
    dashboard: bool = Field(False, description="start Ray's dashboard (http://127.0.0.1:8265) with a local Ray; off "
                                               "by default: about 2 CPU-seconds per trial on 2 cores "
                                               "(docs/benchmarks.md). A cluster's head has its own")


class TrackingSpec(_Model):
    dir: str = Field("tailsweep-runs", description="where the MLflow store, Ray results and demo data live")
    uri: str | None = Field(None, description="MLflow tracking URI; null = sqlite store in <dir>/mlflow.db")
    experiment: str = "tailsweep"
    storage: str | None = Field(None, description="Ray results and checkpoints: a path, or a URI every node reaches "
                                                  "(s3://bucket/prefix, gs://...); null = <dir>/ray")


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
            for k in (s.search if isinstance(s.search, list) else list(s.search)):
                full.pop(k, None)
            key = (s.name, json.dumps(full, sort_keys=True, default=str), json.dumps(s.search, sort_keys=True),
                   s.oversample, s.oversample_budget if s.oversample != "none" else None,
                   tuple(s.seeds) if s.seeds else None)
            if key in seen:
                raise ValueError(f"schemes.{i}: scheme '{s.name}' is listed twice with the same settings (defaults "
                                 f"filled in: {seen[key]} and this entry would run the same trials); remove one or "
                                 "change a parameter")
            seen[key] = f"schemes.{i}"
        for s in self.schemes:
            if s.label is None:
                continue
            if s.label in labels or any(o.label is None and o.name == s.label for o in self.schemes):
                raise ValueError(f"two scheme entries are both called '{s.display}'; give each a distinct label "
                                 f"(schemes: - name: {s.name}, label: {s.name}-2, ...)")
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

        return self.model_copy(update={
            "data": self.data.model_copy(update={"path": absolute(self.data.path)}),
            "tracking": self.tracking.model_copy(update={"dir": absolute(self.tracking.dir),
                                                         "storage": absolute(self.tracking.storage)}),
        })

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
            problems.append(f"schemes.{i} ({s.display}): search.algorithm grid runs listed values, and {s.search} "
                            "names continuous ranges; give the values, e.g. search: {" + s.search[0] + ": [v1, v2, v3]}")
        if algo != "grid":
            problems += [f"schemes.{i} ({s.display}): search for '{k}' lists {len(v)} value(s); a range is [low, high] "
                         "-- to run exactly these values use search.algorithm: grid"
                         for k, v in s.search_values().items() if len(v) != 2]
    if algo != "grid":
        problems += [f"search.{k} lists {len(v)} value(s); a range is [low, high] -- to run exactly these values use "
                     "search.algorithm: grid" for k in ("lr", "weight_decay")
                     if (v := getattr(spec.search, k)) is not None and len(v) != 2]
    if algo == "tpe":
        if not any(spec.searched(s) for s in spec.schemes):
            problems.append("search.algorithm tpe: nothing to search -- no scheme lists parameters under its search "
                            "and search.lr / search.weight_decay are not set; add e.g. `search: [beta]` to "
                            "effective_number, or set search.lr: [0.0003, 0.003]")
        if spec.scheduler.name == "asha":
            problems.append("scheduler asha with search.algorithm tpe: ASHA stops each seed's trial on its own curve, "
                            "so TPE would learn from means over seeds cut at different epochs (and from trials that "
                            "never finish); use scheduler fifo with tpe (TPE spends the budget on good regions "
                            "instead), or asha with search.algorithm random")
    return problems


def search_warnings(spec: SweepSpec) -> list[str]:
    """What the search settings will run but probably not as meant (printed before the sweep starts)."""
    s = spec.search
    out = []
    if s.algorithm == "tpe":
        for sch in spec.schemes:
            names = spec.searched(sch)
            if names and s.num_samples < len(names):
                out.append(f"{sch.display}: search.num_samples = {s.num_samples} configurations for {len(names)} "
                           f"searched parameters ({', '.join(names)}): too few to learn anything about each; "
                           "raise num_samples (10-30 per scheme is typical) or search fewer parameters")
        if any(spec.searched(sch) for sch in spec.schemes) and s.num_samples <= s.startup():
            out.append(f"search.num_samples = {s.num_samples} is within TPE's random start ({s.startup()} "
                       "configurations, search.startup_trials): this search is a random search; raise num_samples "
                       "or lower startup_trials")
    if s.algorithm == "grid":
        two = [f"{sch.display}.{k}" for sch in spec.schemes for k, v in sch.search_values().items() if len(v) == 2]
        two += [f"search.{k}" for k in ("lr", "weight_decay") if (v := getattr(s, k)) is not None and len(v) == 2]
        if two:
            out.append(f"grid: {', '.join(two)} take exactly the two values listed, not the range between them")
        if s.num_samples > 1:
            out.append(f"grid: search.num_samples = {s.num_samples} is ignored (a grid runs every combination once "
                       "per seed)")
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
            out.append(f"{loc}: unknown key (remove it or check the spelling; `launch sweep --show-spec` lists every key)")
        elif e["type"] in ("model_type", "dict_type") or "input" not in e or not e["loc"]:
            out.append(f"{loc}: {msg}")
        else:
            out.append(f"{loc} = {json.dumps(e['input'], default=str)}: {msg}")
    return out


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
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SpecError([f"not valid YAML: {exc}"], source) from exc
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
    """Checks that need the registries or the data; returns every problem (empty = fine)."""
    from ..datasets import LabelTable, TableError, validate_table

    problems: list[str] = []
    if check_data and spec.data.path:
        path = spec.data_path
        table_problems = validate_table(path)
        problems += [f"data.path {path}: {p}" for p in table_problems if p.severity == "error"]
        if not any(p.severity == "error" for p in table_problems):
            try:
                t = LabelTable(path)
                from ..losses import SCHEMES

                for sch in spec.schemes:
                    if SCHEMES[sch.name].needs_hierarchy and not t.is_hierarchical:
                        problems.append(f"schemes: '{sch.name}' needs a label hierarchy; table '{t.name}' has none -- "
                                        "pick a flat scheme or add parents to labels.parquet")
                if t.input_kind == "features" and spec.model.backbone != "mlp":
                    problems.append(f"model.backbone = {spec.model.backbone!r}: table '{t.name}' has feature vectors, "
                                    "not images; use backbone: mlp")
                if t.input_kind != "features" and spec.model.backbone == "mlp":
                    problems.append(f"model.backbone = 'mlp': table '{t.name}' has images; pick a torchvision backbone")
                carved = t.manifest.extra.get("val_from_train")
                if carved and "val" in spec.train.train_splits and (
                        spec.train.final_model == "best" or spec.scheduler.name == "asha"):
                    problems.append(
                        f"train.train_splits includes val, but table '{t.name}' has no validation file: its val split "
                        f"is {carved:.0%} of the training file carved out at import, and training on it leaves no "
                        "held-out rows to select on -- with train_splits [train, val] (C-HMCNN's protocol: the one "
                        "training file) use train.final_model: last and scheduler fifo; to select or stop early, "
                        "train on [train] alone")
            except TableError as exc:
                problems.append(f"data.path: {exc}")
    return problems


def metric_names() -> set[str]:
    from ..datasets import BUCKETS

    base = ["micro_auprc", "macro_ap", "micro_f1"]
    base += [f"macro_{k}{s}" for k in ("precision", "recall", "f1") for s in ("", "_allnodes")]
    base += [f"{m}_{b}" for m in ("recall", "f1", "ap") for b in BUCKETS]
    return {f"val/{m}" for m in base} | {"train/loss"}


def spec_to_yaml(spec: SweepSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
