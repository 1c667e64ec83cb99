"""Models: any torchvision classification backbone with a multi-label head, or an MLP for features."""

from __future__ import annotations

import difflib
import math

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


class EnsembleMLP(nn.Module):
    """M independent :class:`MLPNet`-shaped networks evaluated together: each layer's weights are
    stacked to (M, in, out) and applied with one batched matmul, so M heads cost one kernel per layer
    (and one fused optimizer step) instead of a Python loop over M models. Output (M, B, labels).

    Each head is initialised like ``nn.Linear`` (uniform +-1/sqrt(fan_in)), independently.
    """

    def __init__(self, in_features: int, num_labels: int, hidden: int = 512, layers: int = 2, dropout: float = 0.0,
                 heads: int = 2):
        super().__init__()
        self.heads = heads
        widths = [in_features] + [hidden] * layers + [num_labels]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            bound = 1 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(heads, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(heads, 1, fan_out).uniform_(-bound, bound)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0).expand(self.heads, *x.shape)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = self.dropout(torch.relu(h))
        return h


class SharedBackboneHeads(nn.Module):
    """M classification heads on one backbone: the backbone's final layer has M x labels outputs (one
    matmul for all heads), reshaped to (M, B, labels)."""

    def __init__(self, backbone: nn.Module, num_labels: int, heads: int):
        super().__init__()
        self.backbone, self.num_labels, self.heads = backbone, num_labels, heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x)
        return out.view(out.shape[0], self.heads, self.num_labels).transpose(0, 1)


def build_model(backbone: str, num_labels: int, in_features: int | None = None, hidden: int = 512,
                layers: int = 2, dropout: float = 0.0, heads: int | None = None) -> nn.Module:
    """A torchvision backbone by name with ``num_labels`` outputs (random init; no hub downloads),
    or an :class:`MLPNet` when ``backbone == "mlp"``.

    ``heads``: an ensemble (logits (M, B, labels)) -- M MLPs (:class:`EnsembleMLP`) or M heads on one
    backbone (:class:`SharedBackboneHeads`); None: one plain model, logits (B, labels).
    """
    if backbone == MLP:
        if in_features is None:
            raise ValueError("backbone 'mlp' needs a features table (in_features unknown)")
        if heads is not None:
            return EnsembleMLP(in_features, num_labels, hidden, layers, dropout, heads)
        return MLPNet(in_features, num_labels, hidden, layers, dropout)
    tv = import_torchvision()
    if heads is not None:
        return SharedBackboneHeads(tv.models.get_model(backbone, weights=None, num_classes=num_labels * heads),
                                   num_labels, heads)
    return tv.models.get_model(backbone, weights=None, num_classes=num_labels)
