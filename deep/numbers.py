"""The one validator of numbers read from outside (npz arrays, .npy/.csv/.txt vectors): numpy only.

Every reader passes what it read through here before using it, so that a value is never other than it seems:
- only real numbers: bool, complex, object, string, void and date dtypes are refused, naming the file and array;
- a cast never changes a value silently: a finite value beyond the target dtype's range is refused as an
  overflow (not as "NaN or infinite"), an integer id is range-checked in its own dtype before the cast (so a
  uint64 2**64 - 1 is reported as such, never as the -1 it would wrap to);
- integer ids are checked against a bound before anything is allocated by them (a bincount of 10**12 classes);
- a .npy header is checked against the bytes that follow it, so a header promising more data than the file
  holds is an error naming the file, not a MemoryError.
`where` is what a message names: the flag and the file, or the file and the array.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

# Ids (labels, groups, predictions, rows) above this are refused before anything is sized by them: 2**24 classes
# take a 128 MiB count array, more than any dataset here has classes.
ID_LIMIT = 2**24
REAL_KINDS = "iuf"  # signed, unsigned, floating; everything else is not a real number
KIND_NAMES = {"b": "bool", "c": "complex", "O": "object", "U": "string", "S": "bytes", "V": "structured",
              "M": "datetime", "m": "timedelta"}


def real(values: np.ndarray, where: str) -> np.ndarray:
    """`values` unchanged when its dtype holds real numbers; ValueError naming `where` and the dtype otherwise."""
    kind = values.dtype.kind
    if kind not in REAL_KINDS:
        raise ValueError(f"{where} has dtype {values.dtype} ({KIND_NAMES.get(kind, kind)}), not real numbers; "
                         "store integers or floats (e.g. labels as int64, scores as float64)")
    return values


def as_float(values: np.ndarray, where: str, dtype: type = np.float64) -> np.ndarray:
    """Real `values` cast to float `dtype`, refusing NaN/infinite values and finite values the cast would overflow."""
    real(values, where)
    if values.dtype.kind == "f" and values.size and not np.isfinite(values).all():
        bad = values[~np.isfinite(values)][0]
        raise ValueError(f"{where} holds {bad} (NaN or infinite); every value must be a finite number")
    largest = float(np.finfo(dtype).max)
    for extreme in (values.min(), values.max()) if values.size else ():
        with np.errstate(over="ignore"):
            if abs(float(extreme)) > largest:  # a finite value that the cast would turn into inf
                raise ValueError(f"{where} holds {extreme}, a finite value that overflows {np.dtype(dtype).name} "
                                 f"(largest magnitude {largest:.6g}); rescale the values")
    return values.astype(dtype)


def as_ids(values: np.ndarray, where: str, limit: int = ID_LIMIT) -> np.ndarray:
    """Integer ids in 0..limit-1 as int64: integers, or floats with integral values; range-checked before the cast."""
    real(values, where)
    if not values.size:
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all() or not np.equal(np.mod(values, 1), 0).all():
            bad = values[~(np.isfinite(values) & np.equal(np.mod(values, 1), 0))][0]
            raise ValueError(f"{where} holds {bad}, a non-integer id; expected integers 0, 1, ...")
    low, high = values.min(), values.max()  # compared in the values' own dtype: nothing wraps
    if low < 0:
        raise ValueError(f"{where} holds {low}, a negative id; expected integers 0, 1, ...")
    if high >= limit:
        raise ValueError(f"{where} holds {high}, but ids must be below {limit}; remap them to 0..K-1 "
                         "(e.g. np.unique(ids, return_inverse=True)[1])")
    return values.astype(np.int64)


def ids_from_text(texts: list[str], where: str, first_line: int = 2) -> np.ndarray:
    """Integer ids written as text (a CSV column, data from line `first_line`), checked by as_ids; ValueError naming
    the line of a value that is no integer or overflows int64."""
    values = []
    for line, text in enumerate(texts, start=first_line):
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"{where}, line {line}: {text!r} is not an integer") from None
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"{where}, line {line}: {text.strip()} overflows int64")
        values.append(value)
    return as_ids(np.array(values, dtype=np.int64), where)


def check_npy_header(file: IO[bytes], available: int, where: str, real_only: bool = True) -> None:
    """ValueError unless the .npy whose bytes start at `file` declares no more data than `available` bytes hold,
    and a real dtype (`real_only`; else any dtype but object). Leaves `file` past the header."""
    start = file.tell()
    fmt = np.lib.format
    try:
        version = fmt.read_magic(file)
        read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f".npy format version {version} is not read here (1.0 and 2.0 are)")
        shape, _, dtype = read_header(file)
    except (ValueError, OSError, EOFError, SyntaxError) as error:
        raise ValueError(f"{where}: not a readable .npy array ({error})") from error
    if real_only:
        real(np.empty(0, dtype=dtype), where)
    elif dtype.hasobject:
        raise ValueError(f"{where} holds object arrays, which need pickle (never used here); store strings as "
                         "fixed-width str arrays (np.array(list_of_str)) and numbers as numeric arrays")
    needed = math.prod(shape) * dtype.itemsize
    held = available - (file.tell() - start)
    if needed > held:
        raise ValueError(f"{where}: its header promises shape {shape} of {dtype} ({needed:,} bytes) but the file "
                         f"holds {held:,} bytes of data; the file is truncated or corrupt, write it again")


def load_npy(path: Path, where: str) -> np.ndarray:
    """A .npy array, its header checked (check_npy_header) before anything is allocated."""
    with open(path, "rb") as file:
        check_npy_header(file, path.stat().st_size, where)
        file.seek(0)
        try:
            return np.load(file, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"{where}: not a readable .npy array ({error})") from error


def check_npz_members(path: Path) -> None:
    """Every member of the .npz at `path` checked by check_npy_header for its size and for object dtypes (string
    arrays stay: names and splits; each numeric array is checked where it is used)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".npy"):
                with archive.open(info) as member:
                    check_npy_header(member, info.file_size, f"{path}, array {info.filename[:-4]!r},", False)


def unique_names(names: list[str], where: str) -> None:
    """ValueError naming the first name that `names` (class or group names) holds twice."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{where} names {name!r} twice; every class (or group) needs a name of its own")
        seen.add(name)
