"""One value per row, in and out of files: .npy, .csv or .txt in; .npy or .csv out. Numpy only.

A .csv or .txt file holds one value per line (after an optional one-word header), or a header line and two columns
`id,<value>` that name rows by their sample id instead of their position; `read_vector` returns the values, and the
ids when the file has them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SUFFIXES_IN = (".npy", ".csv", ".txt")
SUFFIXES_OUT = (".npy", ".csv")


def _number(text: str, path: Path, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}, line {line}: {text!r} is not a number") from None


def read_vector(path: str | Path, flag: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The values of a one-column file (and its ids, for an `id,value` csv); ValueError naming `flag` and the file."""
    path = Path(path)
    if path.suffix not in SUFFIXES_IN:
        raise ValueError(f"{flag} {path}: expected a {', '.join(SUFFIXES_IN)} file")
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path}: no such file")
    if path.suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"{flag} {path}: not a readable .npy array ({error})") from error
        if values.ndim != 1:
            raise ValueError(f"{flag} {path}: expected one value per row (a 1-D array), got shape {values.shape}")
        return values, None
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{flag} {path}: the file is empty")
    if len(rows[0]) == 2 and rows[0][0].strip().lower() == "id":
        if any(len(row) != 2 for row in rows[1:]):
            raise ValueError(f"{flag} {path}: every line after the header must be `id,value`")
        ids = np.array([row[0].strip() for row in rows[1:]])
        values = np.array([_number(row[1].strip(), path, i) for i, row in enumerate(rows[1:], start=2)])
        return values, ids
    if any(len(row) != 1 for row in rows):
        raise ValueError(f"{flag} {path}: expected one value per line (or a header `id,<name>` and two columns)")
    start = 1 if _is_header(rows[0][0]) else 0  # a one-word header line, as write_vector writes
    values = [_number(row[0].strip(), path, i) for i, row in enumerate(rows[start:], start=start + 1)]
    return np.array(values), None


def _is_header(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return True
    return False


def read_labels(path: str | Path, flag: str) -> np.ndarray:
    """A vector of non-negative integer ids (labels, groups, predictions) in row order."""
    values, ids = read_vector(path, flag)
    if ids is not None:
        raise ValueError(f"{flag} {path}: give labels in row order, one per line, without an id column")
    if values.dtype.kind == "f":
        if not np.isfinite(values).all() or not np.equal(np.mod(values, 1), 0).all():
            raise ValueError(f"{flag} {path}: expected integer class ids")
        values = values.astype(np.int64)
    if values.dtype.kind not in "iu" or (values.size and values.min() < 0):
        raise ValueError(f"{flag} {path}: expected integer ids >= 0")
    return values.astype(np.int64)


def write_vector(path: str | Path, values: np.ndarray, name: str) -> Path:
    """Write one value per row as .npy, or .csv with the header `name`; the folder must exist."""
    path = Path(path)
    if path.suffix not in SUFFIXES_OUT:
        raise ValueError(f"--out {path}: expected a {' or '.join(SUFFIXES_OUT)} file")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--out {path}: the folder {path.parent} does not exist")
    if path.suffix == ".npy":
        np.save(path, np.asarray(values), allow_pickle=False)
    else:
        np.savetxt(path, np.asarray(values), fmt="%d" if np.asarray(values).dtype.kind in "iu" else "%.17g",
                   header=name, comments="")
    return path
