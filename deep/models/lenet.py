"""LeNet-300-100: the 784-300-100-10 MLP of LeCun et al. (1998) on flattened MNIST, as the DRoP authors build it.

As in the official code (avysogorets/fair-data-pruning, models/lenet300100.py and classification_model_base.py):
hidden layers without bias, each followed by batch norm (momentum 0.01) and ReLU; Xavier-normal weights with
gain sqrt(2) and zero biases. The official dropout defaults to 0 and is left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from deep.models.base import REFERENCE_BN_MOMENTUM as BN_MOMENTUM
from deep.models.base import Classifier, reference_init

WIDTHS = (300, 100)


def lenet300100(num_classes: int, input_shape: Sequence[int]) -> Classifier:
    """LeNet-300-100 on inputs flattened from `input_shape` (784 for MNIST); embed gives the 100 features."""
    inputs = math.prod(int(s) for s in input_shape)
    if not input_shape or inputs < 1:
        raise ValueError(f"lenet300100 needs a non-empty input_shape, got {tuple(input_shape)}")
    layers: list[nn.Module] = [nn.Flatten()]
    for width_in, width_out in zip((inputs, *WIDTHS[:-1]), WIDTHS):
        # No bias: the batch norm that follows has its own shift.
        layers += [nn.Linear(width_in, width_out, bias=False), nn.BatchNorm1d(width_out, momentum=BN_MOMENTUM),
                   nn.ReLU()]
    return reference_init(Classifier(nn.Sequential(*layers), WIDTHS[-1], num_classes))
