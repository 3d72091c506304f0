"""What a training method is: how it turns the kept samples into a training plan (rows, loss, callbacks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from deep.data.base import Split
from deep.options import Option, resolve
from deep.train import Callback, LossFn, Normalization, TrainConfig


@dataclass(frozen=True)
class MethodInput:
    """Everything a method may use to plan the final training on the kept samples."""

    train: Split  # the kept training samples
    groups: torch.Tensor  # group id of every kept sample: the dataset's groups, or its classes when it has none
    num_groups: int
    num_classes: int
    cfg: TrainConfig  # the final run's (density-scaled) schedule
    seed: int  # the method's own random stream (deep.seeds.method_seed): its subsamples, its own models
    device: torch.device
    normalization: Normalization | None
    make_model: Callable[[], torch.nn.Module]  # a fresh model as the final run builds it (JTT trains one of its own)
    options: Mapping[str, object]  # this method's options, resolved (Method.resolve)
    resume: dict[str, torch.Tensor] | None = None  # the plan's `state` from a checkpoint: continue from it


@dataclass
class Plan:
    """How to train: on which rows of the kept split, with which loss and callbacks; `summary` goes to metrics.

    The trainer hands `loss_fn` the row numbers of the split it trains on, i.e. positions in `rows`. `state` holds
    every tensor the method learns or changes while planning and training (the same objects its loss and
    callbacks read): checkpoints save it, and `prepare` continues from `MethodInput.resume` when resuming.
    """

    rows: np.ndarray
    loss_fn: LossFn | None = None
    callbacks: Sequence[Callback] = ()
    summary: Callable[[], dict] = dict  # called after training: what the method learned or chose, for metrics.json
    state: dict[str, torch.Tensor] = field(default_factory=dict)
    # The epoch's order of rows (positions in `rows`) drawn from the trainer's shuffle generator; None: a permutation
    sampler: Callable[[torch.Generator], torch.Tensor] | None = None


def no_extra_epochs(options: Mapping[str, object], epochs: int) -> int:
    """A method that trains no model of its own."""
    return 0


@dataclass(frozen=True)
class Method:
    """A registry entry: a one-line description, its planner, its options and the training it adds to a run."""

    help: str
    prepare: Callable[[MethodInput], Plan]
    options: Mapping[str, Option] = field(default_factory=dict)  # --method-option NAME.KEY=VALUE
    # Options whose default (None on the Option) follows from the final run's schedule: key -> f(epochs).
    derived: Mapping[str, Callable[[int], object]] = field(default_factory=dict)
    # Epochs of models the method trains itself (JTT's identification model) for a final schedule of `epochs`
    # epochs on the kept data, given its resolved options: `sweep --dry-run` counts them.
    extra_epochs: Callable[[Mapping[str, object], int], int] = no_extra_epochs
    # What `sweep --dry-run` cannot count because it is known only once the method runs (printed with the plan).
    cost_note: str = ""
    # Training settings of the method's own reference per dataset, in place of the dataset's (flags still win):
    # e.g. JTT's Waterbirds learning rate and weight decay.
    train_defaults: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def resolve(self, name: str, given: Mapping[str, object] | None = None, epochs: int | None = None) -> dict:
        """Every option of this method (registered as `name`): the given values checked, the rest at defaults, and
        with `epochs` (the final schedule's) the derived ones filled in: what a run's config records."""
        options = resolve(self.options, given, f"--method-option: method {name!r}",
                          lambda key: f"--method-option {name}.{key}")
        if epochs is not None:
            options.update({key: derive(epochs) for key, derive in self.derived.items() if options[key] is None})
        return options


def every_row(data: MethodInput) -> np.ndarray:
    """All rows of the kept split."""
    return np.arange(len(data.train))


def sample_losses(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Per-sample (label-smoothed) cross-entropy."""
    return F.cross_entropy(logits, y, reduction="none", label_smoothing=label_smoothing)


def weighted_mean(losses: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum w_i l_i / sum w_i, torch's weighted-loss mean; 0 (no gradient) for a batch whose weights are all 0."""
    return (weights * losses).sum() / weights.sum().clamp_min(torch.finfo(losses.dtype).tiny)


def weighted_loss(weight_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], label_smoothing: float) -> LossFn:
    """A loss_fn weighting each sample's cross-entropy by weight_of(y, idx), normalised per batch."""

    def loss(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return weighted_mean(sample_losses(logits, y, label_smoothing), weight_of(y, idx))

    return loss

