"""Import torchvision on a CPU-only torch whose matching torchvision wheel is a CUDA build.

On torch 2.13.0+cpu the only torchvision 0.28.0 wheel fails at import with
``operator torchvision::nms does not exist``: its compiled extension cannot load, and the Python
side registers fake kernels for ops whose schemas the extension would have defined. Defining the
two schemas first lets every pure-Python part load (all classification models, transforms v2);
torchvision's C++ ops and ``torchvision.io`` decoding stay unavailable, so tailsweep decodes images
with Pillow. This is the only place that knows about it, and it says so once, never silently.
"""

from __future__ import annotations

import importlib
import logging
import sys

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


_library = None  # keeps the torch.library registration alive


def import_torchvision():
    """Return the ``torchvision`` module, applying the schema workaround only when it is needed."""
    global _library
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::nms does not exist" not in str(exc):
            raise
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    import torch

    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        _library.define(schema)
    logging.getLogger("tailsweep").warning(
        "torchvision %s: compiled ops do not match torch %s; using its pure-Python models and "
        "transforms only (images are decoded with Pillow)",
        _version("torchvision"),
        torch.__version__,
    )
    return importlib.import_module("torchvision")
