"""A user's own arrays from one .npz file.

Layout (keys of the .npz, read with allow_pickle=False, so strings must be fixed-width numpy str arrays):
  X            uint8 (N, C, H, W) with C in {1, 3}: images; or a numeric (N, D) array: features, read as float32
  y            integer labels 0..K-1, shape (N,), each used; labels such as {3, 7, 100} are
               refused (remap them)
  group        optional integer group ids 0..G-1, shape (N,), every id used
  split        optional, shape (N,): "train"/"test" strings or 0 (train) / 1 (test) integers; when absent,
               the fixed stratified 70/30 holdout of deep.data.splits is used
  classes      optional class names, exactly K strings (default "0".."K-1")
  group_names  optional group names, exactly G strings (default "group 0", ...)
`--data` is the .npz file itself or a folder holding data.npz; the default is DEFAULT_ROOT/npz/data.npz.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.files import location
from deep.data.images import channel_stats
from deep.data.registry import DatasetEntry
from deep.data.splits import holdout
from deep.numbers import as_float, as_ids, check_npz_members, real, unique_names

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
    """`values` as int64, checked to be a length-n vector of non-negative integers (deep.numbers.as_ids)."""
    if values.shape != (n,):
        raise ValueError(f"'{key}' has shape {values.shape}; expected ({n},), one entry per row of X")
    # Range-checked in the values' own dtype (a uint64 never wraps to -1); contiguous_ids then refuses gaps
    # without allocating anything sized by the values.
    return as_ids(values, f"array '{key}'", limit=np.iinfo(np.int64).max)


def inputs(x: np.ndarray) -> torch.Tensor:
    """X checked and converted: uint8 (N, C, H, W) images stay uint8, (N, D) features become float32."""
    if x.dtype == np.uint8 and x.ndim == 4:
        if x.shape[1] not in (1, 3):
            raise ValueError(f"image X has shape {x.shape}; expected (N, C, H, W) with C = 1 or 3 "
                             "(for (N, H, W, C) arrays save X.transpose(0, 3, 1, 2))")
        return torch.from_numpy(np.ascontiguousarray(x))
    if x.ndim != 2:
        raise ValueError(f"X has shape {x.shape} and dtype {x.dtype}; expected uint8 images (N, C, H, W) "
                         "or numeric features (N, D)")
    return torch.from_numpy(as_float(x, "array 'X'", np.float32))


def train_mask(split: np.ndarray, n: int) -> np.ndarray:
    """True for train rows, from a split array of "train"/"test" strings or 0/1 integers."""
    if split.shape != (n,):
        raise ValueError(f"'split' has shape {split.shape}; expected ({n},), one entry per row of X")
    if split.dtype.kind in "US":
        values = np.char.lower(split.astype(str))
        train, test = values == "train", values == "test"
    else:
        real(split, "array 'split'")
        train, test = split == 0, split == 1
    if not np.all(train | test):
        raise ValueError(f"'split' holds values other than 'train'/'test' or 0/1: {np.unique(split[~(train | test)])[:5]}")
    return train


def contiguous_ids(values: np.ndarray, key: str) -> int:
    """The number of distinct ids in `values`, checked to be exactly 0..count-1, so that no id is a phantom."""
    present = np.unique(values)
    if not np.array_equal(present, np.arange(len(present))):
        shown = ", ".join(map(str, present[:8])) + (" ..." if len(present) > 8 else "")
        raise ValueError(f"'{key}' holds the values {{{shown}}}, but ids must be exactly 0..K-1 with "
                         f"every id used (absent ids would become classes or groups with no data); remap them, "
                         f"e.g. {key} = np.unique({key}, return_inverse=True)[1]")
    return len(present)


def names(arrays: dict[str, np.ndarray], key: str, count: int, default: str) -> list[str]:
    """The names stored under `key`, checked to be one per id, or `default` numbered."""
    if key not in arrays:
        return [default.format(k) for k in range(count)]
    stored = [str(name) for name in arrays[key].reshape(-1)]
    if len(stored) != count:
        raise ValueError(f"'{key}' holds {len(stored)} names but the data use ids 0..{count - 1}; "
                         f"expected {count} names, one per id")
    unique_names(stored, f"'{key}'")
    return stored


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array in the .npz at `path`; ValueError naming the file when it is no readable .npz."""
    how = "save your arrays with np.savez(path, X=..., y=...)"
    try:
        loaded = np.load(path, allow_pickle=False)
    # A truncated or foreign file fails in the zip layer (BadZipFile), while reading (EOFError, OSError), or as
    # a .npy that needs pickle (ValueError).
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"npz: {path} is not a readable .npz file ({error}); {how}") from error
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"npz: {path} holds a single array in .npy format, not an .npz archive of named arrays; {how}")
    with loaded:
        try:
            check_npz_members(path)  # dtypes and sizes from the headers, before anything is allocated
        except (OSError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"npz: {path} is corrupt ({error}); {how}") from error
        except ValueError as error:
            raise ValueError(f"npz: {error}") from error
        try:
            return {key: loaded[key] for key in loaded.files}
        except ValueError as error:  # object arrays need pickle, which is never allowed here
            raise ValueError(f"npz: {path} holds object arrays; store strings as fixed-width str arrays "
                             f"(np.array(list_of_str)) and numbers as numeric arrays ({error})") from error
        except (OSError, EOFError, zipfile.BadZipFile) as error:  # e.g. a member that fails its CRC
            raise ValueError(f"npz: {path} is corrupt ({error}); {how}") from error


def from_arrays(arrays: dict[str, np.ndarray], source: str) -> RawDataset:
    """The dataset in `arrays` (keys as in the module docstring), checked; ValueError saying what is wrong."""
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise ValueError(f"lacks {missing}; it holds {sorted(arrays)}, expected keys among {KEYS}")
    x = inputs(arrays["X"])
    n = x.shape[0]
    y = integer_labels(arrays["y"], "y", n)
    group = integer_labels(arrays["group"], "group", n) if "group" in arrays else None
    # Checked before the holdout, whose per-class loop would otherwise run max(y) + 1 times.
    classes = names(arrays, "classes", contiguous_ids(y, "y"), "{}")
    group_names = None if group is None else names(arrays, "group_names", contiguous_ids(group, "group"), "group {}")
    whole = Split(x, torch.from_numpy(y), None if group is None else torch.from_numpy(group), ids=np.arange(n))
    if "split" in arrays:
        mask = torch.from_numpy(train_mask(arrays["split"], n))
        train, test = whole.subset(mask.nonzero().squeeze(1)), whole.subset((~mask).nonzero().squeeze(1))
    else:
        train, test = holdout(whole)
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"the split leaves train with {len(train)} rows and test with {len(test)}; both need rows")
    mean, std = channel_stats(train.x) if x.dtype == torch.uint8 else (None, None)
    return RawDataset(train, test, classes, group_names, mean, std, source=source)


def load_npz(data: Path | None = None, download: bool = False) -> RawDataset:
    """Arrays X, y[, group, split, classes, group_names] from one .npz (see the module docstring)."""
    path = npz_file(data)
    arrays = read_arrays(path)
    try:
        return from_arrays(arrays, str(path.resolve()))
    except ValueError as error:  # say which file is wrong
        raise ValueError(f"npz: {path}: {error}") from error


DATASET = DatasetEntry(load_npz)
