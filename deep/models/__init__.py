"""Model registry: name -> builder(num_classes, input_shape, **kwargs) returning a Classifier.

Adding a model = one module with its builder and one line in MODELS, or, from another package, one entry point in
the group `drop_pruning.models` (deep.plugins).

build_model also takes models from outside the registry: `package.module:function` (your builder) and
`timm:<name>` (where timm is installed); see deep.models.user.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from deep.models import user
from deep.plugins import add_plugins
from deep.models.base import Classifier
from deep.models.cnn import cnn
from deep.models.features import feature_extractor
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
add_plugins("models", MODELS)


def resolve_model(name: str) -> Builder:
    """The builder `name` names: a registry entry, `package.module:function` or `timm:<name>`; ValueError if none."""
    if name in MODELS:
        return MODELS[name]
    if ":" in name:
        return user.resolve(name)
    raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}, "
                     "or name your own builder as package.module:function (or timm:<name>)")


def model_key(name: str, weights: str | None = None) -> dict:
    """The fields a task's config names its model by: the name, pretrained weights (deep.models.pretrained) and, for a
    model from outside the registry, a fingerprint of its code."""
    resolve_model(name)
    return {"model": name, **({"weights": weights} if weights else {}),
            **({} if name in MODELS else {"model_source": user.fingerprint(name)})}


def build_model(name: str, num_classes: int, input_shape: Sequence[int], **kwargs: Any) -> nn.Module:
    """The model `name` for `num_classes` classes and inputs of shape `input_shape` ((D,) or (C, H, W))."""
    model = resolve_model(name)(num_classes, tuple(input_shape), **kwargs)
    # Registry models are covered by the tests; one from outside is run once on a dummy batch before it trains.
    return model if name in MODELS else user.checked(model, name, num_classes, input_shape)


__all__ = ["MODELS", "Builder", "Classifier", "build_model", "feature_extractor", "model_key", "resolve_model"]
