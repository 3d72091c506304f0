"""Statistics over seeds and the long CSV records every figure writes.

A record is one quantity of one cell (a line at one density): the experiment's and the line's fields, density,
quantity, class (blank for scalars), n_seeds, mean, std, min, max. Std uses ddof=SEED_DDOF (the population std:
0, not NaN, for one seed).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deep.prune import parse_protocol
from deep.report.results import EXPERIMENT_FIELDS, LINE_FIELDS, cells, is_full

SEED_DDOF = 0
CSV_FIELDS = (*EXPERIMENT_FIELDS, *LINE_FIELDS, "density", "quantity", "class", "n_seeds", "mean", "std", "min", "max")


@dataclass(frozen=True)
class SeedStats:
    """Statistics over seeds of a scalar or per-class quantity (std with ddof=SEED_DDOF)."""

    n: int
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray


def seed_stats(values: Sequence[float] | Sequence[Sequence[float]]) -> SeedStats:
    """Mean, std, min and max over the first axis (one entry per seed)."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError("values must hold one entry per seed, got none")
    return SeedStats(array.shape[0], array.mean(0), array.std(0, ddof=SEED_DDOF), array.min(0), array.max(0))


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation over the entries finite in both vectors; NaN when either is constant there."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    # A spread at rounding level is no spread: centring it would give an arbitrary +-1.
    if x.size < 2 or any(np.ptp(v) <= 1e-12 * max(1.0, np.abs(v).max()) for v in (x, y)):
        return float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    return float(np.clip(xc @ yc / math.sqrt((xc @ xc) * (yc @ yc)), -1.0, 1.0))


def cell_fields(row: dict) -> dict:
    """The fields a record of `row`'s cell carries: experiment, line and density."""
    return {field: row[field] for field in (*EXPERIMENT_FIELDS, *LINE_FIELDS, "density")}


def stat_records(fields: dict, quantity: str, values: Sequence) -> list[dict]:
    """Records of one quantity's seed statistics: one record for a scalar, one per class for a vector."""
    stats = seed_stats(values)
    base = {**fields, "quantity": quantity, "n_seeds": stats.n}
    columns = lambda i: {"mean": float(stats.mean[i]), "std": float(stats.std[i]),  # noqa: E731
                         "min": float(stats.low[i]), "max": float(stats.high[i])}
    if stats.mean.ndim == 0:
        return [{**base, "class": "", **columns(())}]
    return [{**base, "class": k, **columns(k)} for k in range(stats.mean.size)]


def metric_records(rows: Sequence[dict], quantities: Iterable[str]) -> list[dict]:
    """Seed statistics of each quantity in every cell of `rows` that reports it for all its seeds."""
    records = []
    for quantity in quantities:
        for cell in cells(rows).values():
            values = [row.get(quantity) for row in cell]
            if all(v is not None for v in values):
                records += stat_records(cell_fields(cell[0]), quantity, values)
    return records


def full_class_accuracy(rows: Sequence[dict]) -> np.ndarray | None:
    """Per-class test accuracy of the `full` runs, mean over seeds (None without full runs)."""
    full = [row["class_accuracy"] for row in rows if is_full(row)]
    return seed_stats(full).mean if full else None


def correlation_records(rows: Sequence[dict], full_accuracy: np.ndarray) -> list[dict]:
    """Per seed, Pearson r between the kept class densities and the full-data class accuracy; stats over seeds."""
    return [
        record
        for cell in cells(rows).values()
        if parse_protocol(cell[0]["protocol"]).changes_class_proportions
        for record in stat_records(
            cell_fields(cell[0]), "correlation", [pearson(row["class_density"], full_accuracy) for row in cell]
        )
    ]


def write_csv(path: Path, records: Sequence[dict], fields: Sequence[str] = CSV_FIELDS) -> Path:
    """Write records as CSV with the given columns (None as a blank cell)."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows({key: "" if value is None else value for key, value in r.items()} for r in records)
    return path
