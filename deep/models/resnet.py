"""CIFAR-style ResNets (3x3 stem, no max-pool), after kuangliu/pytorch-cifar, with adaptive pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deep.models.base import Classifier, image_shape, pooled_features, reference_init


def _bn_conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Convolution (no bias, 'same' padding for odd kernels) followed by batch norm."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class Block(nn.Module):
    """Residual block: basic (two 3x3 convs) or bottleneck (1x1, 3x3, 1x1 with 4x expansion)."""

    def __init__(self, in_channels: int, width: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        out_channels = width * (4 if bottleneck else 1)
        if bottleneck:
            convs = [_bn_conv(in_channels, width, 1), _bn_conv(width, width, 3, stride), _bn_conv(width, out_channels, 1)]
        else:
            convs = [_bn_conv(in_channels, width, 3, stride), _bn_conv(width, width, 3)]
        # ReLU between the convolutions, not after the last one: that one comes after the residual sum.
        layers: list[nn.Module] = []
        for conv in convs:
            layers += [conv, nn.ReLU()]
        self.residual = nn.Sequential(*layers[:-1])
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = _bn_conv(in_channels, out_channels, 1, stride) if needs_projection else nn.Identity()
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """relu(residual(x) + shortcut(x)), out of place so torch.func transforms apply."""
        return torch.relu(self.residual(x) + self.shortcut(x))


def cifar_resnet(
    num_classes: int, input_shape: Sequence[int], blocks: Sequence[int], bottleneck: bool, name: str
) -> Classifier:
    """ResNet with `blocks` residual blocks per stage (widths 64, 128, 256, 512; strides 1, 2, 2, 2)."""
    channels, _, _ = image_shape(input_shape, name)
    layers: list[nn.Module] = [_bn_conv(channels, 64, 3), nn.ReLU()]
    in_channels = 64
    for stage, count in enumerate(blocks):
        for i in range(count):
            block = Block(in_channels, 64 * 2**stage, 2 if stage and not i else 1, bottleneck)
            layers.append(block)
            in_channels = block.out_channels
    # The DRoP authors initialise every model alike (Xavier-normal, gain sqrt(2)): their ResNet-18 too.
    return reference_init(Classifier(nn.Sequential(*layers, pooled_features()), in_channels, num_classes))


def resnet18(num_classes: int, input_shape: Sequence[int]) -> Classifier:
    """CIFAR-style ResNet-18 (basic blocks 2-2-2-2, 512 features)."""
    return cifar_resnet(num_classes, input_shape, (2, 2, 2, 2), bottleneck=False, name="resnet18")


def resnet50(num_classes: int, input_shape: Sequence[int]) -> Classifier:
    """CIFAR-style ResNet-50 (bottleneck blocks 3-4-6-3, 2048 features)."""
    return cifar_resnet(num_classes, input_shape, (3, 4, 6, 3), bottleneck=True, name="resnet50")
