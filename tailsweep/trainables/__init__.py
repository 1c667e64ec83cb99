"""The Ray Train side of a trial: worker recipe, models, metrics, in-Train MLflow logging."""

from ._metrics import average_precision, compute_metrics, per_label_scores
from ._models import MLP, MLPNet, build_model, check_backbone, list_backbones
from .worker import TrialRecipe, train_loop_per_worker

__all__ = [
    "MLP",
    "MLPNet",
    "TrialRecipe",
    "average_precision",
    "build_model",
    "check_backbone",
    "compute_metrics",
    "list_backbones",
    "per_label_scores",
    "train_loop_per_worker",
]
