"""Model selection: which epoch of a final training is reported (`--select`); deep.train keeps its weights.

`last` reports the last epoch (the papers' DRoP protocol has no early stopping); `val_accuracy` and
`val_worst_group` report the epoch of best validation accuracy or best validation worst-group accuracy, the first
on ties, as group_DRO, JTT and WILDS report theirs. The test split is evaluated once, on the selected weights.
"""

from __future__ import annotations

from collections.abc import Sequence

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
