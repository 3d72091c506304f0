"""ImageNet-style ResNet-50 from torchvision, optionally with pretrained weights, for 224-pixel data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from deep._torchvision import import_torchvision
from deep.models.base import Classifier, image_shape

NUM_FEATURES = 2048


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> None:
    """Load a torchvision resnet50 state_dict file into `backbone`, ignoring its `fc.*` (ImageNet head) entries."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights={str(path)!r} is not a file: pass the path of a saved resnet50 state_dict")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"weights={str(path)!r} holds a {type(state).__name__}, not a state_dict: save model.state_dict()")
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        backbone.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"weights={str(path)!r} is not a torchvision resnet50 state_dict (keys conv1.weight, layer1.0..., fc.*): {err}"
        ) from err


def resnet50_imagenet(
    num_classes: int,
    input_shape: Sequence[int],
    *,
    weights: str | Path | None = None,
    download: bool = False,
) -> Classifier:
    """torchvision ResNet-50 with a new `num_classes` head; backbone weights from the file `weights`,
    or torchvision's IMAGENET1K_V1 (needs network) when `download`, else random."""
    channels, _, _ = image_shape(input_shape, "resnet50_imagenet")
    pretrained = weights is not None or download
    if weights is not None and download:
        raise ValueError("give either weights=<local file> or download=True, not both")
    if pretrained and channels != 3:
        raise ValueError(f"pretrained resnet50_imagenet needs 3-channel images, got input_shape {tuple(input_shape)}")
    models = import_torchvision().models
    try:
        backbone = models.resnet50(weights=models.ResNet50_Weights.IMAGENET1K_V1 if download else None)
    except OSError as err:  # urllib's URLError is an OSError
        raise RuntimeError(
            f"could not download the IMAGENET1K_V1 resnet50 weights ({err}): save them elsewhere and pass weights=<path>"
        ) from err
    if channels != 3:
        backbone.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    # The head lives on the Classifier so that forward == head(embed); the backbone ends at the pooled features.
    backbone.fc = nn.Identity()
    if weights is not None:
        load_backbone_weights(backbone, weights)
    return Classifier(backbone, NUM_FEATURES, num_classes)
