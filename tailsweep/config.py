"""One trial's settings: the single shape a trial has from the plan to the worker and MLflow.

``TrialConfig`` is built by the plan (``orchestrator/_plan.py``) from the sweep spec, whose ``model``, ``train``
and ``eval`` sections *are* the classes below, so a new option is one field here: the spec reads it from YAML,
the plan copies the section whole, Tune carries the trial's dump unchanged, the worker validates it once
(``TrialConfig.model_validate``), and its flattened dump is the trial's MLflow params. No Ray in this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0)]


class ModelConfig(_Frozen):
    """The network: backbone (or MLP), input size, head, pretrained weights."""

    backbone: str = Field("resnet18", description="torchvision model name, or 'mlp' for feature tables")
    image_size: Annotated[int, Field(ge=16, le=1024)] | None = Field(
        None, description="resize images; null = as stored"
    )
    hidden: PosInt = 512
    layers: Annotated[int, Field(ge=0, le=16)] = 2
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    weights: str | None = Field(
        None,
        description="local state-dict file of pretrained weights for the backbone "
        "(never downloaded); efficientnet_lite0 ships its ImageNet weights",
    )
    freeze: bool = Field(
        False,
        description="keep the pretrained encoder fixed and train the head; with "
        "train.augment off, embeddings are computed once and cached",
    )

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, v: str) -> str:
        from .trainables import check_backbone

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
            raise ValueError(
                f"{path} not found: model.weights names a local PyTorch state-dict file "
                "(pretrained weights are never downloaded at run time)"
            )
        return str(path)

    @model_validator(mode="after")
    def _pretrained(self) -> ModelConfig:
        if not self.freeze:  # (the models module imports torch: only when it can matter)
            return self._no_weights_for_mlp()
        from .trainables._models import BUNDLED

        if self.freeze and self.backbone not in BUNDLED and self.weights is None:
            raise ValueError(
                f"model.freeze: backbone '{self.backbone}' is randomly initialised; freezing it would "
                f"train on random features -- use {', '.join(BUNDLED)} or give model.weights"
            )
        return self._no_weights_for_mlp()

    def _no_weights_for_mlp(self) -> ModelConfig:
        if self.backbone == "mlp" and (self.freeze or self.weights):
            raise ValueError("model.weights / model.freeze apply to image backbones, not 'mlp'")
        return self


class TrainConfig(_Frozen):
    """How a trial trains. ``lr`` and ``weight_decay`` are the trial's own (a search sets them per trial)."""

    epochs: PosInt = 3
    batch_size: PosInt = 64
    eval_batch_size: PosInt = 256
    optimizer: Literal["adamw", "adam", "sgd"] = Field(
        "adamw", description="adam uses the fused kernel (C-HMCNN's choice)"
    )
    lr: PosFloat = 1e-3
    lr_schedule: Literal["cosine", "linear", "constant"] = Field(
        "cosine",
        description="learning rate over training: cosine (to 0), linear (to 0) or constant "
        "(C-HMCNN's protocol; what `launch reproduce hmc` uses)",
    )
    warmup_epochs: Annotated[float, Field(ge=0)] = Field(
        0.0,
        description="linear warm-up of the learning rate over this many epochs (fractions allowed), then the schedule",
    )
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    augment: bool = True
    pipeline: Literal["memory", "stream"] = Field(
        "memory",
        description="images: memory = decode the training split once, random flips; stream = Parquet "
        "row groups per worker, decoded + RandomResizedCrop/flip (transforms v2) in loader "
        "processes, for catalogues larger than memory (needs model.image_size)",
    )
    loader_workers: Annotated[int, Field(ge=0)] | None = Field(
        None, description="stream: loader processes per Train worker; null = resources.cpus_per_worker - 1"
    )
    decode: Literal["cpu", "gpu", "auto"] = Field(
        "cpu",
        description="images: where JPEGs are decoded -- cpu (Pillow), gpu (torchvision.io.decode_jpeg on the "
        "worker's GPU, a batch at a time; needs resources.use_gpu), auto (gpu when the worker has CUDA and "
        "torchvision.io decodes there, else cpu)",
    )
    threads: Annotated[int, Field(ge=1)] | None = Field(
        None, description="torch threads per Train worker; null = the worker's whole CPUs (resources.cpus_per_worker)"
    )
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 autocast on GPU, fp32 on CPU")
    max_failures: Annotated[int, Field(ge=0)] = Field(
        0,
        description="restarts of a trial's worker group after a worker error, from its last checkpoint; with "
        "resources.lean (the default) a lost node is retried apart from these, without limit "
        "(docs/architecture.md: A node lost mid-trial)",
    )
    train_splits: list[Literal["train", "val"]] = Field(
        default_factory=lambda: ["train"],
        min_length=1,
        description="splits to train on; [train, val] is C-HMCNN's protocol (then use final_model: last)",
    )
    final_model: Literal["best", "last"] = Field(
        "best", description="weights tested at the end: best by search.metric, or last epoch"
    )
    checkpoint_every_s: Annotated[float, Field(ge=0)] = Field(
        10.0, description="checkpoint at most this often (and after the last epoch); 0 = every epoch"
    )


class EvalConfig(_Frozen):
    """How a trial is evaluated and what it keeps."""

    thresholds: Literal["fixed", "per_label"] = Field(
        "fixed",
        description="fixed: predict at 0.5; per_label: also each label's threshold chosen on val to maximise "
        "its F1 (a label without val positives keeps 0.5), applied to test and reported beside "
        "the fixed rule (test/tuned_*); on a hierarchy the predictions are closed upward",
    )
    prediction_rows: Annotated[int, Field(ge=0)] = Field(
        20_000,
        description="test rows whose scores each trial keeps (test_predictions.npz: float16 scores, for "
        "launch report's paired bootstrap and per-label view); a seeded subsample past it; 0 = none",
    )


class TrialConfig(_Frozen):
    """Everything one trial runs with, fully resolved (no ``null = derived`` left but ``run_id`` before the
    driver makes the trial's MLflow run)."""

    data: str = Field(description="the label-table directory")
    model: ModelConfig
    train: TrainConfig
    eval: EvalConfig
    select_metric: str = Field("val/macro_ap", description="the validation metric that picks the best epoch")
    objectives: list[str] = Field(
        default_factory=list,
        description="a multi-objective search's metrics: each also reported as best/<metric>, its value at the "
        "epoch select_metric picked (what the study learns from)",
    )
    scheme: str
    variant: str = Field(description="the scheme entry's display name (its label, or the scheme's name)")
    scheme_params: dict[str, Any] = Field(default_factory=dict, description="every parameter, defaults filled in")
    oversample: Literal["none", "lpros"] = "none"
    oversample_budget: float = 0.1
    seed: int = 0
    group: str = Field(description="scheme entry index : configuration draw (a setting, shared by its seeds)")
    setting: str = Field("", description="the setting's name for humans (the label without the seed)")
    label: str = Field(description="the trial's name for humans (the MLflow run name)")
    run_id: str | None = Field(None, description="the trial's MLflow child run (set on the driver)")

    def params(self) -> dict[str, Any]:
        """The trial's MLflow params: its dump flattened (``train.lr``, ``scheme_params.beta``, ...)."""
        return flatten(self.model_dump(mode="json", exclude={"run_id"}))

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> TrialConfig:
        """The trial of a Tune config (``{"trial": <dump>}``), validated."""
        trial = config["trial"]
        return trial if isinstance(trial, cls) else cls.model_validate(trial)


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; empty mappings stay as values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out |= flatten(v, f"{key}.")
        else:
            out[key] = v
    return out
