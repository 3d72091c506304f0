"""Multi-layer perceptron on flattened inputs: feature vectors or small images."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from deep.models.base import Classifier


def mlp(num_classes: int, input_shape: Sequence[int], *, hidden: Sequence[int] = (256, 256)) -> Classifier:
    """MLP with ReLU hidden layers of widths `hidden` on inputs flattened from `input_shape`; hidden=() is linear."""
    widths = [math.prod(int(s) for s in input_shape), *(int(h) for h in hidden)]
    if not input_shape or min(widths) < 1:
        raise ValueError(f"mlp needs a non-empty input_shape and positive hidden widths, got {input_shape} and {hidden}")
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    return Classifier(nn.Sequential(*layers), widths[-1], num_classes)
