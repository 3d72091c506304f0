"""What a scorer is: a function of one finished query training that gives one score per training sample.

A query training keeps what every scorer needs: its final weights (for scorers that look at the trained model:
EL2N, GraNd, SSP) and its trace, the true-class probability and correctness of every training sample at every
epoch as the training steps saw them (for training-dynamics scorers: Forgetting, Dynamic Uncertainty). A scorer
added later therefore joins a finished query training without training it again: its scores task only re-runs
the cheap part, the scoring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from torch import nn

from deep.data.base import Split
from deep.options import Option, resolve
from deep.scores.outputs import model_features
from deep.train import InputPipeline, Normalization, predict


@dataclass(frozen=True)
class Trace:
    """Per-epoch outputs of a query training on its training split, recorded from the training steps."""

    prob: np.ndarray  # (E, N) float32: softmax probability of the true class
    correct: np.ndarray  # (E, N) bool: argmax == label

    @property
    def epochs(self) -> int:
        """E, the number of recorded epochs."""
        return int(self.prob.shape[0])


@dataclass
class QueryModel:
    """One finished query training as a scorer sees it; the model is loaded on first use."""

    train: Split  # the full training split the query model was trained on
    num_classes: int
    normalization: Normalization | None
    device: torch.device
    seed: int  # the query model's own training seed
    epochs: int  # its query length
    options: dict  # this scorer's options (defaults filled in)
    trace: Trace
    load_model: Callable[[], nn.Module] = field(repr=False)

    @cached_property
    def model(self) -> nn.Module:
        """The trained query model on `device`, in eval mode."""
        return self.load_model().to(self.device).eval()

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Raw training rows -> normalised model input on the device."""
        return self._inputs(x)

    @cached_property
    def _inputs(self) -> InputPipeline:
        return InputPipeline(self.normalization, self.device)

    @cached_property
    def logits(self) -> torch.Tensor:
        """Float32 CPU logits (N, K) of the trained model on the training split (eval mode); do not modify."""
        return predict(self.model, self.train.x, normalization=self.normalization, device=self.device)

    @cached_property
    def features(self) -> torch.Tensor:
        """Float32 CPU penultimate features (N, F) of the trained model on the training split; do not modify."""
        return model_features(self.model, self.train.x, self.prepare)


@dataclass(frozen=True)
class Scorer:
    """A registry entry: the score function, the query training it needs and its options with their defaults."""

    score: Callable[[QueryModel], np.ndarray]  # higher = harder = kept first; any finite value (only ranks count)
    epoch_fraction: float  # default query length as a fraction of the final schedule (0: no query training, the
    # scorer sees the untrained init of the first query model, as `random` does)
    min_epochs: int = 0  # fewer query epochs than this is an error (training-dynamics scorers need >= 2)
    inits: int = 1  # default number of query models the scores are averaged over (--query-inits overrides)
    options: dict[str, Option] = field(default_factory=dict)  # --scorer-option NAME.KEY=VALUE
    needs_features: bool = False  # reads QueryModel.features: a sweep refuses a model without a feature layer

    def resolve(self, name: str, given: dict) -> dict:
        """The scorer's options with `given` ones (from the command line) in place of defaults, type-checked."""
        return resolve(self.options, given, f"--scorer-option: scorer {name!r}",
                       lambda key: f"--scorer-option {name}.{key}")
