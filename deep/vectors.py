"""One value per row, in and out of files: .npy, .csv or .txt in; .npy or .csv out. Numpy only.

A .csv or .txt file holds one value per line (after an optional one-word header), or a header line and two columns
`id,<value>` that name rows by their sample id instead of their position; `read_vector` returns the values, and the
ids when the file has them.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from deep.numbers import as_float, as_ids, load_npy, real
from deep.runs import write_atomic

SUFFIXES_IN = (".npy", ".csv", ".txt")
SUFFIXES_OUT = (".npy", ".csv")


def _number(text: str, where: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}, line {line}: {text!r} is not a number") from None
    if math.isinf(value) and text.strip().lstrip("+-").lower() not in ("inf", "infinity"):
        raise ValueError(f"{where}, line {line}: {text!r} overflows float64 (largest magnitude 1.8e308)")
    return value


def read_vector(path: str | Path, flag: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The values of a one-column file (and its ids, for an `id,value` csv); ValueError naming `flag` and the file."""
    path = Path(path)
    if path.suffix not in SUFFIXES_IN:
        raise ValueError(f"{flag} {path}: expected a {', '.join(SUFFIXES_IN)} file")
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path}: no such file")
    where = f"{flag} {path}"
    if path.suffix == ".npy":
        values = real(load_npy(path, where), where)
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
        values = np.array([_number(row[1].strip(), where, i) for i, row in enumerate(rows[1:], start=2)])
        return values, ids
    if any(len(row) != 1 for row in rows):
        raise ValueError(f"{flag} {path}: expected one value per line (or a header `id,<name>` and two columns)")
    start = 1 if _is_header(rows[0][0]) else 0  # a one-word header line, as write_vector writes
    values = [_number(row[0].strip(), where, i) for i, row in enumerate(rows[start:], start=start + 1)]
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
    return as_ids(values, f"{flag} {path}")


def write_vector(path: str | Path, values: np.ndarray, name: str) -> Path:
    """Write one value per row as .npy, or .csv with the header `name`; the folder must exist."""
    path = Path(path)
    if path.suffix not in SUFFIXES_OUT:
        raise ValueError(f"--out {path}: expected a {' or '.join(SUFFIXES_OUT)} file")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--out {path}: the folder {path.parent} does not exist")
    # Written under a temporary name, then renamed into place: a failure leaves no partial file.
    if path.suffix == ".npy":
        write_atomic(path, np.asarray(values))
    else:
        buffer = io.BytesIO()
        np.savetxt(buffer, np.asarray(values), fmt="%d" if np.asarray(values).dtype.kind in "iu" else "%.17g",
                   header=name, comments="")
        write_atomic(path, buffer.getvalue())
    return path


def rows_of_ids(ids: np.ndarray, known: np.ndarray, flag: str) -> np.ndarray:
    """The row of each id in `known` (a dataset's sample ids); ValueError naming the first unknown or repeated id."""
    index = {str(value): row for row, value in enumerate(known.tolist())}
    wanted = [str(value) for value in ids.tolist()]
    missing = next((value for value in wanted if value not in index), None)
    if missing is not None:
        raise ValueError(f"{flag}: sample id {missing!r} is not in the dataset's training set (ids look like "
                         f"{str(known[0])!r}); export-scores writes the ids of a store's runs")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"{flag}: some sample ids appear twice")
    return np.array([index[value] for value in wanted], dtype=np.int64)


def read_rows(path: str | Path, known_ids: np.ndarray, flag: str) -> np.ndarray:
    """Training rows from a file: row numbers (.npy of integers, one number per line) or sample ids (a csv or txt
    whose header line is `id`); sorted, checked to be distinct and in range."""
    path = Path(path)
    if path.suffix in (".csv", ".txt") and path.is_file():
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if lines and lines[0].lower() == "id":
            return np.sort(rows_of_ids(np.array(lines[1:]), known_ids, f"{flag} {path}"))
    values, ids = read_vector(path, flag)
    if ids is not None:
        raise ValueError(f"{flag} {path}: give row numbers, or sample ids under a header line `id`")
    rows = as_ids(values, f"{flag} {path}")
    if rows.size == 0 or rows.max() >= len(known_ids) or np.unique(rows).size != rows.size:
        raise ValueError(f"{flag} {path}: expected distinct row numbers in 0..{len(known_ids) - 1} of the training set")
    return np.sort(rows)


def read_scores(path: str | Path, known_ids: np.ndarray, flag: str) -> np.ndarray:
    """One finite score per training row, from a file in row order or with an `id,<score>` csv (any order)."""
    values, ids = read_vector(path, flag)
    values = as_float(values, f"{flag} {path}")
    if ids is not None:
        if len(ids) != len(known_ids):
            raise ValueError(f"{flag} {path}: {len(ids)} scores for {len(known_ids)} training samples")
        ordered = np.empty(len(known_ids))
        ordered[rows_of_ids(ids, known_ids, f"{flag} {path}")] = values
        values = ordered
    if values.shape != (len(known_ids),):
        raise ValueError(f"{flag} {path}: {values.size} scores for {len(known_ids)} training samples (one per row)")
    if not np.isfinite(values).all():
        raise ValueError(f"{flag} {path}: every score must be finite")
    return values
