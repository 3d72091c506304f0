"""A user's own arrays from one .npz file.

Layout (keys of the .npz, read with allow_pickle=False, so strings must be fixed-width numpy str arrays):
  X            uint8 (N, C, H, W) with C in {1, 3}: images; or a numeric (N, D) array: features, read as float32
  y            integer labels 0..K-1, shape (N,)
  group        optional non-negative integer group ids, shape (N,)
  split        optional, shape (N,): "train"/"test" strings or 0 (train) / 1 (test) integers; when absent,
               the fixed stratified 70/30 holdout of deep.data.splits is used
  classes      optional class names, K strings (default "0".."K-1")
  group_names  optional group names (default "group 0", ...)
`--data` is the .npz file itself or a folder holding data.npz; the default is DEFAULT_ROOT/npz/data.npz.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.files import location
from deep.data.images import channel_stats
from deep.data.splits import holdout

FILE_NAME = "data.npz"
KEYS = ("X", "y", "group", "split", "classes", "group_names")


def npz_file(data: Path | str | None) -> Path:
    """The .npz to read: `data` itself, or data.npz inside it (default DEFAULT_ROOT/npz/data.npz)."""
    path = location(data, "npz")
    if path.is_dir() or data is None:
        path = path / FILE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"npz: no file at {path.resolve()}. Save your arrays with "
                                f"np.savez(path, X=..., y=...[, group=..., split=...]) and pass --data path "
                                f"(the .npz file, or a folder holding {FILE_NAME}).")
    return path


def integer_labels(values: np.ndarray, key: str, n: int) -> np.ndarray:
    """`values` as int64, checked to be a length-n vector of non-negative integers."""
    if values.shape != (n,):
        raise ValueError(f"npz: '{key}' has shape {values.shape}; expected ({n},), one entry per row of X")
    if not (np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.bool_)):
        integral = np.issubdtype(values.dtype, np.floating) and np.all(np.isfinite(values) & (values == np.round(values)))
        if not integral:
            raise ValueError(f"npz: '{key}' has dtype {values.dtype} with non-integer values; expected integers 0, 1, ...")
    if n and values.min() < 0:
        raise ValueError(f"npz: '{key}' holds negative values; expected integers 0, 1, ...")
    return values.astype(np.int64)


def inputs(x: np.ndarray) -> torch.Tensor:
    """X checked and converted: uint8 (N, C, H, W) images stay uint8, (N, D) features become float32."""
    if x.dtype == np.uint8 and x.ndim == 4:
        if x.shape[1] not in (1, 3):
            raise ValueError(f"npz: image X has shape {x.shape}; expected (N, C, H, W) with C = 1 or 3 "
                             "(for (N, H, W, C) arrays save X.transpose(0, 3, 1, 2))")
        return torch.from_numpy(np.ascontiguousarray(x))
    if x.ndim != 2 or not (np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)):
        raise ValueError(f"npz: X has shape {x.shape} and dtype {x.dtype}; expected uint8 images (N, C, H, W) "
                         "or numeric features (N, D)")
    features = x.astype(np.float32)
    if not np.all(np.isfinite(features)):
        raise ValueError("npz: X holds NaN or infinite values; expected finite features")
    return torch.from_numpy(features)


def train_mask(split: np.ndarray, n: int) -> np.ndarray:
    """True for train rows, from a split array of "train"/"test" strings or 0/1 integers."""
    if split.shape != (n,):
        raise ValueError(f"npz: 'split' has shape {split.shape}; expected ({n},), one entry per row of X")
    if split.dtype.kind in "US":
        values = np.char.lower(split.astype(str))
        train, test = values == "train", values == "test"
    elif split.dtype.kind in "iub":
        train, test = split == 0, split == 1
    else:
        raise ValueError(f"npz: 'split' has dtype {split.dtype}; expected 'train'/'test' strings or 0/1 integers")
    if not np.all(train | test):
        raise ValueError(f"npz: 'split' holds values other than 'train'/'test' or 0/1: {np.unique(split[~(train | test)])[:5]}")
    return train


def names(arrays: dict[str, np.ndarray], key: str, count: int, default: str) -> list[str]:
    """The names stored under `key`, checked to cover `count` ids, or `default` numbered."""
    if key not in arrays:
        return [default.format(k) for k in range(count)]
    stored = [str(name) for name in arrays[key].reshape(-1)]
    if len(stored) < count:
        raise ValueError(f"npz: '{key}' names {len(stored)} entries but the ids go up to {count - 1}; "
                         f"expected at least {count} names")
    return stored


def load_npz(data: Path | None = None, download: bool = False) -> RawDataset:
    """Arrays X, y[, group, split, classes, group_names] from one .npz (see the module docstring)."""
    path = npz_file(data)
    with np.load(path, allow_pickle=False) as archive:
        try:
            arrays = {key: archive[key] for key in archive.files}
        except ValueError as error:  # object arrays need pickle, which is never allowed here
            raise ValueError(f"npz: {path} holds object arrays; store strings as fixed-width str arrays "
                             f"(np.array(list_of_str)) and numbers as numeric arrays ({error})") from error
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise ValueError(f"npz: {path} lacks {missing}; it holds {sorted(arrays)}, expected keys among {KEYS}")
    x = inputs(arrays["X"])
    n = x.shape[0]
    y = integer_labels(arrays["y"], "y", n)
    group = integer_labels(arrays["group"], "group", n) if "group" in arrays else None
    whole = Split(x, torch.from_numpy(y), None if group is None else torch.from_numpy(group))
    if "split" in arrays:
        mask = torch.from_numpy(train_mask(arrays["split"], n))
        train, test = whole.subset(mask.nonzero().squeeze(1)), whole.subset((~mask).nonzero().squeeze(1))
    else:
        train, test = holdout(whole)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"npz: the split of {path} leaves train with {len(train)} rows and test with {len(test)}; "
                         "both need rows")
    classes = names(arrays, "classes", int(y.max()) + 1, "{}")
    group_names = None if group is None else names(arrays, "group_names", int(group.max()) + 1, "group {}")
    mean, std = channel_stats(train.x) if x.dtype == torch.uint8 else (None, None)
    return RawDataset(train, test, classes, group_names, mean, std, source=str(path.resolve()))
