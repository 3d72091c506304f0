"""Model selection: which epoch of a final training is reported (`--select`), and keeping its weights in memory.

`last` reports the last epoch (the papers' DRoP protocol has no early stopping); `val_accuracy` and
`val_worst_group` report the epoch of best validation accuracy or best validation worst-group accuracy, the first
on ties, as group_DRO, JTT and WILDS report theirs. The test split is evaluated once, on the selected weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from deep.train import EpochState

SELECT = ("last", "val_accuracy", "val_worst_group")
_COLUMN = {"val_accuracy": "val_accuracy", "val_worst_group": "val_worst_group_accuracy"}


def selected_epoch(history: Sequence[dict], select: str) -> int:
    """The 1-based epoch `select` picks from a training history (one record per epoch)."""
    if select not in SELECT:
        raise ValueError(f"--select must be one of {', '.join(SELECT)}, got {select!r}")
    if not history:
        raise ValueError("selected_epoch: the history is empty")
    if select == "last":
        return int(history[-1]["epoch"])
    column = _COLUMN[select]
    values = [record.get(column) for record in history]
    if any(v is None for v in values):
        raise ValueError(f"--select {select} needs {column} in every epoch: train with a validation split"
                         + (" that has groups" if select == "val_worst_group" else ""))
    best = max(range(len(values)), key=lambda i: (values[i], -i))  # the first epoch on ties
    return int(history[best]["epoch"])


class KeepSelected:
    """A training callback holding (on the CPU) the weights of the epoch `select` picks so far."""

    def __init__(self, select: str, resume: dict | None = None) -> None:
        self.select = select
        self.epoch: int | None = None if resume is None else int(resume["epoch"])
        self.weights: dict[str, torch.Tensor] | None = None if resume is None else resume["weights"]

    def __call__(self, state: EpochState) -> None:
        if self.select != "last" and selected_epoch(state.history, self.select) == state.epoch:
            self.epoch = state.epoch
            self.weights = {k: v.detach().cpu().clone() for k, v in state.model.state_dict().items()}

    def state(self) -> dict | None:
        """What a checkpoint keeps, so that a resumed training still reports the best epoch seen before it stopped."""
        return None if self.weights is None else {"epoch": torch.tensor(self.epoch), "weights": self.weights}

    def restore(self, model: torch.nn.Module, history: Sequence[dict]) -> int:
        """Load the selected weights into `model` (nothing to do for `last`); the selected epoch."""
        if self.select == "last":
            return int(history[-1]["epoch"])
        model.load_state_dict(self.weights)
        return int(self.epoch)
