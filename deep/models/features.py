"""Penultimate features of any classifier: its `embed` method where it has one, else what its last linear layer reads.

Registry models define embed(x) (what their head sees). A model from outside the registry usually does not;
its features are then taken with forward pre-hooks as the input of the last nn.Linear layer that runs in
forward(x), the usual classifier head. The hooks are placed for one call and removed afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Features = Callable[[torch.Tensor], torch.Tensor]


def feature_extractor(model: nn.Module, purpose: str = "feature-based scorers such as ssp") -> Features:
    """x -> (N, F) features of `model`: model.embed, else the input of its last nn.Linear to run; ValueError if neither."""
    embed = getattr(model, "embed", None)
    if callable(embed):
        return embed
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no `embed` method and no nn.Linear layer, so {purpose} cannot "
                         "find its features: add a method `def embed(self, x)` returning the (N, F) features that "
                         "its classifier head reads")

    def features(x: torch.Tensor) -> torch.Tensor:
        captured: dict[str, torch.Tensor] = {}

        def hook(_: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            captured["input"] = inputs[0]  # every Linear overwrites it: the last one to run wins

        handles = [linear.register_forward_pre_hook(hook) for linear in linears]
        try:
            model(x)
        finally:
            for handle in handles:
                handle.remove()
        if "input" not in captured:
            raise ValueError(f"{type(model).__name__}'s forward runs none of its nn.Linear layers, so {purpose} cannot "
                             "find its features: add a method `def embed(self, x)` returning its (N, F) features")
        return captured["input"].flatten(1)

    return features
