"""CIFAR-style VGG with batch norm: a 3x3 conv stack with five max-pools and one linear head.

As the DRoP authors' VGGs (models/vgg16.py, vgg19.py, classification_model_base.py): batch-norm momentum 0.01 and
Xavier-normal init (gain sqrt(2)). Theirs flatten the last 512 x (H/32)^2 map; ours average-pools it, the same on
32-pixel CIFAR images (a 1x1 map) and usable on larger ones.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from deep.models.base import REFERENCE_BN_MOMENTUM, Classifier, conv_bn_relu, image_shape, pooled_features, reference_init

# Number of conv layers in each of the five stages (widths WIDTHS); every stage ends with a 2x max-pool.
STAGES: dict[str, tuple[int, ...]] = {
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
WIDTHS = (64, 128, 256, 512, 512)


def cifar_vgg(num_classes: int, input_shape: Sequence[int], name: str) -> Classifier:
    """VGG `name` (a key of STAGES): BN conv stages, global average pooling, 512 features."""
    # Five halvings need at least 32 pixels: 32x32 ends at 1x1, 64x64 at 2x2 (then averaged).
    in_channels, _, _ = image_shape(input_shape, name, min_size=32)
    layers: list[nn.Module] = []
    for count, width in zip(STAGES[name], WIDTHS):
        for _ in range(count):
            layers.append(conv_bn_relu(in_channels, width, bn_momentum=REFERENCE_BN_MOMENTUM))
            in_channels = width
        layers.append(nn.MaxPool2d(2))
    return reference_init(Classifier(nn.Sequential(*layers, pooled_features()), in_channels, num_classes))


def vgg16(num_classes: int, input_shape: Sequence[int]) -> Classifier:
    """CIFAR-style VGG-16 with batch norm."""
    return cifar_vgg(num_classes, input_shape, "vgg16")


def vgg19(num_classes: int, input_shape: Sequence[int]) -> Classifier:
    """CIFAR-style VGG-19 with batch norm."""
    return cifar_vgg(num_classes, input_shape, "vgg19")
