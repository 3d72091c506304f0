"""The checks every dataset passes at the door, whatever its loader: labels, classes, groups and finite inputs.

They run in load_dataset before anything trains. A class that is absent from train, validation or test, or a
label outside 0..K-1, would otherwise give a model with phantom classes whose accuracy is NaN, and worst-class
accuracy would silently skip them.
"""

from __future__ import annotations

import math

import torch

from deep.data.base import RawDataset, Split
from deep.numbers import unique_names

SHOWN = 5  # classes named in a message before "and N more"


def describe(indices: list[int], names: list[str]) -> str:
    """'class 3 (cat)', 'classes 3 (cat), 5 (dog) and 2 more', or 'classes 3, 5' where names are the numbers."""
    shown = ", ".join(str(k) if names[k] == str(k) else f"{k} ({names[k]})" for k in indices[:SHOWN])
    more = f" and {len(indices) - SHOWN} more" if len(indices) > SHOWN else ""
    return f"class{'es' if len(indices) > 1 else ''} {shown}{more}"


def check_ids(where: str, ids: torch.Tensor, count: int, what: str) -> None:
    """ValueError unless `ids` is an integer vector with values in 0..count-1."""
    if ids.dtype != torch.int64 or ids.dim() != 1:
        raise ValueError(f"{where} holds {what}s of dtype {ids.dtype} and shape {tuple(ids.shape)}; "
                         f"expected an int64 vector")
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= count):
        bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
        raise ValueError(f"{where} holds {what} {bad}, but {what}s must be integers 0..{count - 1} "
                         f"({count} {what} names); remap them to 0..K-1")


def check_raw(label: str, raw: RawDataset) -> None:
    """ValueError unless `raw` has >= 2 classes, labels 0..K-1 with every class in train, valid groups, finite inputs."""
    classes = len(raw.classes)
    if classes < 2:
        raise ValueError(f"{label} has {classes} class{'es' if classes != 1 else ''}; a classifier needs at least 2")
    unique_names(raw.classes, f"{label}: the class names")
    if raw.group_names is not None:
        unique_names(raw.group_names, f"{label}: the group names")
    splits = {"train": raw.train, "test": raw.test} | ({} if raw.val is None else {"validation": raw.val})
    for part, split in splits.items():
        where = f"{label}, {part} split,"
        check_ids(where, split.y, classes, "label")
        if (split.group is None) != (raw.group_names is None):
            state = "group ids but the dataset names no groups" if raw.group_names is None else "no group ids"
            raise ValueError(f"{where} has {state}; a dataset with groups needs group ids in every split")
        if split.group is not None:
            check_ids(where, split.group, len(raw.group_names), "group")
        if split.x.is_floating_point() and not bool(torch.isfinite(split.x).all()):
            raise ValueError(f"{where} holds NaN or infinite inputs; every feature must be finite")
    check_normalization(label, raw)
    # Labels lie in 0..K-1 now, so the counts below take K entries, never max(label) + 1.
    if classes > len(raw.train):
        raise ValueError(f"{label} names {classes} classes but has {len(raw.train)} training rows; "
                         "every class needs training rows")
    absent = torch.nonzero(torch.bincount(raw.train.y, minlength=classes) == 0).squeeze(1).tolist()
    if absent:
        raise ValueError(f"{label}: {describe(absent, raw.classes)} ha{'ve' if len(absent) > 1 else 's'} no training "
                         "rows; every class 0..K-1 needs training data (remove or remap the empty classes)")


def check_normalization(label: str, raw: RawDataset) -> None:
    """ValueError unless mean/std are both given or both None, of length 1 or the number of channels (images) or
    features (vectors), finite, with std > 0."""
    if raw.mean is None and raw.std is None:
        return
    if raw.mean is None or raw.std is None:
        raise ValueError(f"{label} gives only one of mean and std; a normalisation needs both (or neither)")
    width = raw.train.x.shape[1] if raw.train.x.dim() > 1 else 1
    what = "channels" if raw.train.x.dim() == 4 else "features"
    for name, values in (("mean", raw.mean), ("std", raw.std)):
        if len(values) not in (1, width):
            raise ValueError(f"{label} gives {len(values)} normalisation {name} values for {width} {what}: give one "
                             f"per {what[:-1]}, or one for all")
    if not all(math.isfinite(v) for v in (*raw.mean, *raw.std)) or min(raw.std) <= 0:
        raise ValueError(f"{label} has a non-finite normalisation or a std <= 0 (mean {raw.mean}, std {raw.std}); "
                         "a constant feature takes std 1")


def check_evaluation(label: str, classes: list[str], val: Split, test: Split, halved: bool) -> None:
    """ValueError unless the validation and the reported test split each hold every class."""
    for part, split in (("validation", val), ("test", test)):
        absent = torch.nonzero(torch.bincount(split.y, minlength=len(classes)) == 0).squeeze(1).tolist()
        if absent:
            # Halving: validation takes floor(n_k / 2) of a test class's n_k rows, test the rest.
            half = " (validation is half of each class of the test split, so every class needs at least 2 test rows)"
            why = half if halved else ""
            raise ValueError(f"{label}: {describe(absent, classes)} ha{'ve' if len(absent) > 1 else 's'} no {part} "
                             f"rows{why}, so their accuracy cannot be measured and worst-class accuracy would skip "
                             "them; add test data for them or remove them from the data")
