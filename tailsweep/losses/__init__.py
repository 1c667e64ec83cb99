"""Loss-weighting schemes for long-tailed multi-label learning (METHODS.md).

Imports neither Ray nor MLflow. ``build_loss(name, stats, **params)`` is the one factory.
"""

from ._ensemble import (
    UNCERTAINTIES,
    NodeImbalanceFocalLoss,
    NodeImbalanceLoss,
    default_k,
    ensemble_coherent,
    schedule_fraction,
    uncertainty,
)
from ._flat import (
    AsymmetricLoss,
    DistributionBalancedLoss,
    EffectiveNumberBCE,
    FocalLoss,
    InverseFrequencyBCE,
    LogitAdjustedBCE,
    PosWeightBCE,
    SqrtInverseFrequencyBCE,
    UnweightedBCE,
    WeightedBCE,
    focal_factor,
)
from ._hierarchy import Hierarchy, MCLoss, node_imbalance_weights, subtree_counts
from ._registry import SCHEMES, Param, SchemeInfo, UnknownSchemeError, build_loss, get_scheme
from ._weights import (
    distribution_balanced_bias,
    effective_number_weights,
    inverse_counts,
    inverse_frequency_weights,
    log_prior_odds,
    logit_adjustments,
    pos_weight_weights,
)

__all__ = [
    "SCHEMES",
    "AsymmetricLoss",
    "DistributionBalancedLoss",
    "EffectiveNumberBCE",
    "FocalLoss",
    "Hierarchy",
    "MCLoss",
    "NodeImbalanceFocalLoss",
    "NodeImbalanceLoss",
    "UNCERTAINTIES",
    "default_k",
    "ensemble_coherent",
    "schedule_fraction",
    "uncertainty",
    "InverseFrequencyBCE",
    "LogitAdjustedBCE",
    "Param",
    "PosWeightBCE",
    "SchemeInfo",
    "SqrtInverseFrequencyBCE",
    "UnknownSchemeError",
    "UnweightedBCE",
    "WeightedBCE",
    "build_loss",
    "distribution_balanced_bias",
    "effective_number_weights",
    "focal_factor",
    "get_scheme",
    "inverse_counts",
    "inverse_frequency_weights",
    "log_prior_odds",
    "logit_adjustments",
    "node_imbalance_weights",
    "pos_weight_weights",
    "subtree_counts",
]
