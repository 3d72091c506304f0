"""Fake run stores for the report tests: final-run configs and metrics as deep.sweep.final_task and deep.experiment.run_final write them, written as finished runs.

`write_run` is the only function that knows where a run goes in a store.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from deep.final import FinalConfig
from deep.prune import RECALL_SOURCES, Quotas, parse_protocol
from deep.runs import RunStore
from deep.schedule import TrainConfig

SIZES = np.array([60, 50, 40, 30])
FULL_ACCURACY = np.array([0.95, 0.90, 0.75, 0.55])  # per class, before seed noise
PROTOCOLS = ("random", "el2n", "random+el2nq", "el2n+drop", "random+drop")
DENSITIES = tuple(round(0.1 * i, 1) for i in range(1, 10))
SEEDS = (0, 1, 2)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_run(root: Path, config: dict, metrics: dict) -> Path:
    """Store one finished final run under `root`; returns its folder."""
    return RunStore(root).finish(config, metrics, {"kept": np.arange(int(metrics["num_kept"]))})


def config(protocol: str, density: float, seed: int, model: str = "mlp", method: str = "erm",
           quota_unit: str = "class", variant: dict | None = None, **dataset: object) -> dict:
    """A final-run config exactly as deep.sweep.final_task and deep.experiment.run_final write them; `variant` adds fields such as quota_exponent."""
    parsed = parse_protocol(protocol)
    final = FinalConfig(
        dataset={"name": "digits", "data": None, "imbalance": None, "split_seed": 0, **dataset}, model={"model": model},
        protocol=protocol, density=1.0 if parsed.is_full else density, seed=seed, method=method, method_options={},
        quota_unit=quota_unit, train=TrainConfig(epochs=3, batch_size=32, lr=0.1),
        quotas=Quotas() if parsed.needs_recalls else None,
        recall_source=RECALL_SOURCES[0] if parsed.needs_recalls else None,
        scorer_options={} if parsed.needs_scores else None,
        scores="abc" if parsed.needs_scores else None, recalls="def" if parsed.needs_recalls else None,
    )
    return {**final.to_dict(), **(variant or {})}


def metrics(class_accuracy: np.ndarray, counts: np.ndarray, sizes: np.ndarray = SIZES, groups: bool = False) -> dict:
    """Metrics as deep.sweep.final_task and deep.experiment.run_final write them, consistent with the given class accuracies and kept counts."""
    class_accuracy = np.asarray(class_accuracy, dtype=float)
    support = np.full(class_accuracy.size, 20)
    hits = np.round(class_accuracy * support).astype(int)
    confusion = np.diag(hits) + np.roll(np.diag(support - hits), 1, axis=1)
    out = {
        "accuracy": float(class_accuracy.mean()),
        "worst_class_accuracy": float(class_accuracy.min()),
        "class_accuracy": class_accuracy.tolist(),
        "max_min_gap": float(class_accuracy.max() - class_accuracy.min()),
        "class_accuracy_std": float(class_accuracy.std()),
        "confusion": confusion.tolist(),
        "val_accuracy": float(class_accuracy.mean()),
        "num_train": int(sizes.sum()),
        "num_kept": int(counts.sum()),
        "class_sizes": sizes.tolist(),
        "class_counts": np.asarray(counts).tolist(),
        "class_density": (counts / sizes).tolist(),
        "recalls": None,
        "train_seconds": 0.1,
        "epochs": 3,
    }
    if groups:
        out.update(group_accuracy=[0.9, 0.5], worst_group_accuracy=0.5, weighted_group_accuracy=0.8)
    return out


def class_weights(protocol: str) -> np.ndarray:
    """How a protocol spreads its budget over classes: score-based ones favour the hard classes."""
    if protocol == "random":
        return np.ones(SIZES.size)
    return 1.0 - FULL_ACCURACY + (0.2 if parse_protocol(protocol).kind in ("score", "random+quota") else 0.0)


def counts_for(protocol: str, density: float) -> np.ndarray:
    """Kept counts per class: density ~ weights, capped at the class size."""
    share = class_weights(protocol) * density * SIZES.sum() / (class_weights(protocol) * SIZES).sum()
    return np.minimum(np.round(share * SIZES), SIZES).astype(int)


def fill_store(root: Path, protocols: tuple[str, ...] = PROTOCOLS, seeds: tuple[int, ...] = SEEDS,
               full: bool = True, model: str = "mlp", groups: bool = False,
               densities: tuple[float, ...] = DENSITIES) -> dict[tuple, dict]:
    """Write finished synthetic runs; returns their metrics by (protocol, density, seed)."""
    written = {}
    for seed in seeds:
        noise = np.random.default_rng(seed)
        cells = [(p, d) for p in protocols for d in densities] + ([("full", 1.0)] if full else [])
        for protocol, density in cells:
            accuracy = np.clip(FULL_ACCURACY * (0.6 + 0.4 * density) + noise.normal(0, 0.02, SIZES.size), 0, 1)
            counts = SIZES if protocol == "full" else counts_for(protocol, density)
            m = metrics(accuracy, counts, groups=groups)
            write_run(root, config(protocol, density, seed, model), m)
            written[(protocol, density, seed)] = m
    return written


def flat_run(root: Path, protocol: str, density: float, seed: int, value: float, groups: bool = False,
             model: str = "mlp", method: str = "erm", quota_unit: str = "class", variant: dict | None = None,
             **dataset: object) -> dict:
    """One run whose class accuracies (and group accuracies) all equal `value`; returns its metrics."""
    m = metrics(np.full(SIZES.size, value), counts_for("random", density) if protocol != "full" else SIZES)
    if groups:
        m.update(group_accuracy=[value, value / 2], worst_group_accuracy=value / 2, weighted_group_accuracy=value)
    write_run(root, config(protocol, density, seed, model, method, quota_unit, variant, **dataset), m)
    return m


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV file as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def key(record: dict) -> tuple[str, float, str]:
    """A figure CSV record's (protocol, density, quantity)."""
    return record["protocol"], float(record["density"]), record["quantity"]
