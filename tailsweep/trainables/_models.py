"""Models: any torchvision classification backbone with a multi-label head, or an MLP for features."""

from __future__ import annotations

import difflib

import torch
from torch import nn

from ._torchvision_compat import import_torchvision

MLP = "mlp"


def list_backbones() -> list[str]:
    tv = import_torchvision()
    return sorted(tv.models.list_models(module=tv.models))


def check_backbone(name: str) -> str | None:
    """None if ``name`` is a usable backbone, else an error message listing close matches."""
    if name == MLP:
        return None
    names = list_backbones()
    if name in names:
        return None
    close = difflib.get_close_matches(name, names, n=4, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return f"unknown torchvision backbone '{name}'{hint} (any of torchvision.models.list_models(), or 'mlp' for feature tables)"


class MLPNet(nn.Module):
    """Feed-forward net for feature tables: [Linear -> ReLU -> Dropout] x layers -> Linear."""

    def __init__(self, in_features: int, num_labels: int, hidden: int = 512, layers: int = 2, dropout: float = 0.0):
        super().__init__()
        blocks: list[nn.Module] = []
        width = in_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        blocks.append(nn.Linear(width, num_labels))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_model(backbone: str, num_labels: int, in_features: int | None = None, hidden: int = 512,
                layers: int = 2, dropout: float = 0.0) -> nn.Module:
    """A torchvision backbone by name with ``num_labels`` outputs (random init; no hub downloads),
    or an :class:`MLPNet` when ``backbone == "mlp"``."""
    if backbone == MLP:
        if in_features is None:
            raise ValueError("backbone 'mlp' needs a features table (in_features unknown)")
        return MLPNet(in_features, num_labels, hidden, layers, dropout)
    tv = import_torchvision()
    return tv.models.get_model(backbone, weights=None, num_classes=num_labels)
