"""Model registry: name -> builder(num_classes, input_shape, **kwargs) returning a Classifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from deep.models.base import Classifier
from deep.models.cnn import cnn
from deep.models.imagenet import resnet50_imagenet
from deep.models.lenet import lenet300100
from deep.models.mlp import mlp
from deep.models.resnet import resnet18, resnet50
from deep.models.vgg import vgg16, vgg19

Builder = Callable[..., nn.Module]

MODELS: dict[str, Builder] = {
    "mlp": mlp,
    "cnn": cnn,
    "lenet300100": lenet300100,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "resnet50_imagenet": resnet50_imagenet,
}


def build_model(name: str, num_classes: int, input_shape: Sequence[int], **kwargs: Any) -> nn.Module:
    """The model `name` for `num_classes` classes and inputs of shape `input_shape` ((D,) or (C, H, W))."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name](num_classes, tuple(input_shape), **kwargs)


__all__ = ["MODELS", "Builder", "Classifier", "build_model"]
