"""The one place that imports torchvision, made to work on CPU-only torch builds too."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch

# Kept alive for the life of the process: dropping the Library object would unregister the schemas.
_SHIM: torch.library.Library | None = None


def _define_missing_ops() -> None:
    """Register the op schemas torchvision's meta registrations expect when its C extension cannot load.

    torchvision wheels built for CUDA fail to load their `_C` extension on a CPU-only torch, and
    `import torchvision` then dies with "operator torchvision::nms does not exist". Registering the
    two schemas lets the pure-Python parts (datasets, models, weights) import; the ops themselves
    stay unimplemented, and nothing in this project calls them.
    """
    global _SHIM
    if _SHIM is None:
        _SHIM = torch.library.Library("torchvision", "DEF")
        _SHIM.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _SHIM.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


def import_torchvision() -> ModuleType:
    """Import torchvision, registering the missing op schemas first when its C extension cannot load."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        raise ImportError("torchvision is not installed: pip install 'torchvision>=0.19,<0.29'")
    extension = next(Path(spec.origin).parent.glob("_C.*"), None)
    try:
        if extension is None:
            raise OSError("no compiled extension")
        torch.ops.load_library(str(extension))
    except OSError:
        _define_missing_ops()
    return importlib.import_module("torchvision")
