"""Class counts of the two allocations (paper's Algorithm 1, the authors' quoter) on CIFAR-10 and CIFAR-100 at
d = 0.5 ... 0.9, for the PROTOCOL.md section "Paper against official: the class counts". Prints markdown.

Run from the repository root: `python docs/allocation_tables.py`. Numpy only, deterministic (the official
quoter's random fill is shown as "+F drawn", not drawn).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a source checkout

from toy.quotas import drop_quotas, official_selection  # noqa: E402

DENSITIES = (0.5, 0.6, 0.7, 0.8, 0.9)
# The CIFAR-10 recalls (validation recalls of a 16-epoch VGG-16 query model).
CIFAR10 = [0.918, 0.964, 0.538, 0.578, 0.968, 0.832, 0.73, 0.518, 0.904, 0.56]
# CIFAR-100: 100 recalls spread as a query model's are (a beta(4, 2) sample, seed 0, rounded to the 1/50 steps of
# 50 validation images per class), two of them 1.0 as happens on CIFAR-100's small validation halves.
CIFAR100 = np.round(np.random.default_rng(0).beta(4, 2, 100) * 50) / 50
CIFAR100[[17, 71]] = 1.0


def counts(density: float, sizes: list[int], recalls) -> tuple[np.ndarray, np.ndarray, int]:
    """(paper's counts, official counts before the fill, the number the official code then draws)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero-error classes: shown in the tables, not warned about
        paper = drop_quotas(density, sizes, recalls, kept_rule="round")
        official, total = official_selection(density, sizes, recalls)
    return paper, official, total - int(official.sum())


def cifar10() -> list[str]:
    lines = ["| d | allocation | " + " | ".join(f"c{k} (r={r:g})" for k, r in enumerate(CIFAR10)) + " | drawn |",
             "|---|---|" + "---:|" * 11]
    for d in DENSITIES:
        paper, official, drawn = counts(d, [5000] * 10, CIFAR10)
        lines.append(f"| {d:g} | paper | " + " | ".join(map(str, paper)) + " | 0 |")
        lines.append(f"| {d:g} | official | " + " | ".join(map(str, official)) + f" | +{drawn} |")
    return lines


def cifar100() -> list[str]:
    lines = ["| d | kept (paper / official) | classes that differ | max \\|difference\\| (of 500) | class (recall): "
             "paper → official, the largest difference | zero-quota classes (paper / official) | drawn |",
             "|---|---|---:|---:|---|---|---:|"]
    for d in DENSITIES:
        paper, official, drawn = counts(d, [500] * 100, CIFAR100)
        diff = official - paper
        worst = int(np.argmax(np.abs(diff)))
        lines.append(
            f"| {d:g} | {paper.sum()} / {official.sum() + drawn} | {int((diff != 0).sum())} | {int(np.abs(diff).max())} "
            f"| {worst} ({CIFAR100[worst]:g}): {paper[worst]} → {official[worst]} "
            f"| {int((paper == 0).sum())} / {int((official == 0).sum())} | +{drawn} |")
    return lines


def main() -> None:
    print("CIFAR-10, 5,000 per class, the issue's recalls:\n")
    print("\n".join(cifar10()))
    print("\nCIFAR-100, 500 per class, 100 recalls from beta(4, 2) (seed 0, steps of 1/50), classes 17 and 71 at 1.0:\n")
    print("\n".join(cifar100()))


if __name__ == "__main__":
    main()
