"""Loss-weighting schemes for long-tailed multi-label learning (formulas and sources: docs/methods.md).

Imports neither Ray nor MLflow. ``build_loss(name, stats, **params)`` is the one factory. The registry
(``SCHEMES``, ``get_scheme``, the parameter checks) imports no torch, so that the spec check and light
commands (``launch schemes``) start fast; the loss modules are imported on first use of their names.
"""

from __future__ import annotations

import importlib

from ._registry import METHODS_DOC, SCHEMES, Param, SchemeInfo, UnknownSchemeError, build_loss, get_scheme

_LAZY = {
    "._ensemble": (
        "UNCERTAINTIES",
        "NodeImbalanceFocalLoss",
        "NodeImbalanceLoss",
        "default_k",
        "ensemble_coherent",
        "schedule_fraction",
        "uncertainty",
    ),
    "._flat": (
        "AsymmetricLoss",
        "AsymmetricPolynomialLoss",
        "DistributionBalancedLoss",
        "EffectiveNumberBCE",
        "FocalLoss",
        "InverseFrequencyBCE",
        "LogitAdjustedBCE",
        "PosWeightBCE",
        "SqrtInverseFrequencyBCE",
        "UnweightedBCE",
        "WeightedBCE",
        "focal_factor",
    ),
    "._softmax": ("MultiLabelSoftmaxLoss", "TwoWayLoss", "masked_logsumexp"),
    "._hierarchy": ("Hierarchy", "MCLoss", "node_imbalance_weights", "subtree_counts"),
    "._weights": (
        "batch_presence",
        "distribution_balanced_bias",
        "effective_number_weights",
        "inverse_counts",
        "inverse_frequency_weights",
        "log_prior_odds",
        "logit_adjustments",
        "pos_weight_weights",
    ),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["METHODS_DOC", "SCHEMES", "Param", "SchemeInfo", "UnknownSchemeError", "build_loss", "get_scheme", *_WHERE]
