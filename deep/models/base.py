"""What every model in the registry is: a feature extractor followed by one linear head."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class Classifier(nn.Module):
    """A backbone mapping inputs to (N, F) features and a linear `head`: forward(x) == head(embed(x))."""

    def __init__(self, backbone: nn.Module, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_features = num_features
        self.head = nn.Linear(num_features, check_num_classes(num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, F): what the head sees."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K)."""
        return self.head(self.embed(x))


def check_num_classes(num_classes: int) -> int:
    """`num_classes` itself, or ValueError when it is not a positive integer."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return num_classes


def image_shape(input_shape: Sequence[int], model: str, min_size: int = 1) -> tuple[int, int, int]:
    """`input_shape` as (C, H, W), or ValueError when it is not an image shape of at least `min_size` pixels."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"model {model!r} needs image input_shape (C, H, W), got {tuple(input_shape)}; "
            "use 'mlp' for feature vectors"
        )
    if min(shape[1:]) < min_size:
        raise ValueError(
            f"model {model!r} needs images of at least {min_size}x{min_size} pixels, got input_shape {shape}; "
            "use 'cnn' or a resnet for smaller images"
        )
    return shape


REFERENCE_BN_MOMENTUM = 0.01  # the DRoP authors' models (their VGGs and LeNet); torch's default is 0.1


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1, bn_momentum: float = 0.1) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels, momentum=bn_momentum),
        nn.ReLU(),
    )


def reference_init(model: nn.Module) -> nn.Module:
    """The DRoP authors' initialisation (their classification_model_base.py): Xavier-normal weights with gain sqrt(2)
    for every Linear and Conv2d layer, zero biases. Returns the model."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_normal_(module.weight, gain=math.sqrt(2))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def pooled_features() -> nn.Sequential:
    """Global average pooling to (N, C): makes the head independent of the image size."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
