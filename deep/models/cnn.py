"""Small CPU-friendly convolutional network for images of any size down to 1x1."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from deep.models.base import Classifier, conv_bn_relu, image_shape, pooled_features


def cnn(num_classes: int, input_shape: Sequence[int], *, widths: Sequence[int] = (32, 64, 128)) -> Classifier:
    """Conv-BN-ReLU blocks of `widths` channels, 2x max-pooling between blocks, global average pooling."""
    channels, _, _ = image_shape(input_shape, "cnn")
    if not widths or min(widths) < 1:
        raise ValueError(f"cnn needs at least one positive width, got widths={tuple(widths)}")
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        if i:
            # ceil_mode keeps a 1-pixel map at 1 pixel, so tiny inputs (8x8 digits) pass through any depth.
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        layers.append(conv_bn_relu(channels if i == 0 else widths[i - 1], width))
    return Classifier(nn.Sequential(*layers, pooled_features()), widths[-1], num_classes)
