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
    EffectiveNumberBCE,
    FocalLoss,
    InverseFrequencyBCE,
    PosWeightBCE,
    SqrtInverseFrequencyBCE,
    UnweightedBCE,
    WeightedBCE,
)
from ._hierarchy import Hierarchy, MCLoss, node_imbalance_weights, subtree_counts
from ._registry import SCHEMES, Param, SchemeInfo, UnknownSchemeError, build_loss, get_scheme
from ._weights import effective_number_weights, inverse_frequency_weights, pos_weight_weights

__all__ = [
    "SCHEMES",
    "AsymmetricLoss",
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
    "Param",
    "PosWeightBCE",
    "SchemeInfo",
    "SqrtInverseFrequencyBCE",
    "UnknownSchemeError",
    "UnweightedBCE",
    "WeightedBCE",
    "build_loss",
    "effective_number_weights",
    "get_scheme",
    "inverse_frequency_weights",
    "node_imbalance_weights",
    "pos_weight_weights",
    "subtree_counts",
]
