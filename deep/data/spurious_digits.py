"""Spurious digits: scikit-learn's real 8x8 digits with a background shade that tracks the label in train only.

A CPU-sized stand-in for Waterbirds. Label y: 0 for digits 0-4, 1 for digits 5-9. Attribute a: the
background (pixels of value 0) is left black (a = 0) or set to BACKGROUND grey (a = 1); group = 2 y + a, as
in Waterbirds. In train, a = y for TRAIN_AGREEMENT of the rows; in test the correlation flips (a = y for
1 - TRAIN_AGREEMENT of the rows), so a model that reads the background fails the groups that were rare.
Rows are the fixed 70/30 holdout of `digits`; the attribute is drawn with a fixed seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.digits import load_digits
from deep.data.registry import DatasetEntry

TRAIN_AGREEMENT = 0.9
BACKGROUND = 0.25  # grey level of the background for a = 1 (digit strokes lie in (0, 1])
CLASSES = ["digit 0-4", "digit 5-9"]
GROUP_NAMES = [f"{label}/{shade} background" for label in CLASSES for shade in ("black", "grey")]
ATTRIBUTE_SEED = 0


def with_background(split: Split, agreement: float, rng: np.random.Generator) -> Split:
    """The binary-label split with the background shaded by an attribute that equals y in `agreement` of rows."""
    y = (split.y >= 5).long()
    a = torch.where(torch.from_numpy(rng.random(len(y)) < agreement), y, 1 - y)
    x = torch.where(split.x == 0, BACKGROUND * a[:, None].float(), split.x)
    return Split(x, y, 2 * y + a, split.ids)


def load_spurious_digits(data: Path | None = None, download: bool = False) -> RawDataset:
    """Float32 features (N, 64), 2 classes (digit < 5, >= 5), 4 groups; background agrees with y 90% / 10%."""
    if data is not None:
        raise ValueError(f"spurious_digits is built from scikit-learn's bundled digits and reads no files, "
                         f"but --data {data} was given")
    digits = load_digits()
    rng = np.random.default_rng(ATTRIBUTE_SEED)
    train = with_background(digits.train, TRAIN_AGREEMENT, rng)
    test = with_background(digits.test, 1 - TRAIN_AGREEMENT, rng)
    return RawDataset(train, test, list(CLASSES), list(GROUP_NAMES),
                      source=f"sklearn.datasets.load_digits, background agreement {TRAIN_AGREEMENT} train / "
                             f"{1 - TRAIN_AGREEMENT:g} test, seed {ATTRIBUTE_SEED}")


DATASET = DatasetEntry(load_spurious_digits)
