"""scikit-learn's bundled 8x8 handwritten digits: offline and small, for tests and quick demos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deep.data.base import RawDataset, Split
from deep.data.registry import DatasetEntry
from deep.data.splits import holdout


def load_digits(data: Path | None = None, download: bool = False) -> RawDataset:
    """The 1,797 digits as float32 features (N, 64) = pixel / 16 in [0, 1], 10 classes, the fixed 70/30 holdout."""
    if data is not None:
        raise ValueError(f"digits is bundled with scikit-learn and reads no files, but --data {data} was given; "
                         "use --dataset npz for your own arrays")
    # Imported here: scikit-learn takes seconds to import, which every worker process would pay for at start-up.
    from sklearn.datasets import load_digits as sklearn_digits

    x, y = sklearn_digits(return_X_y=True)
    train, test = holdout(Split(torch.from_numpy((x / 16.0).astype(np.float32)), torch.from_numpy(y.astype(np.int64)),
                                ids=np.arange(len(y))))
    return RawDataset(train, test, classes=[str(k) for k in range(10)], source="sklearn.datasets.load_digits")


DATASET = DatasetEntry(load_digits)
