"""A dataset's registry entry: its loader, the options it declares (from which the CLI makes its flags) and the
protocol a sweep on it follows by default.

An option `samples` of dataset `mnist1d` is passed as load_dataset("mnist1d", options={"samples": 5000}) and
on the command line as --mnist1d-samples 5000 (`option_flag`); its type, default and help text live on the entry.
The defaults of the paper's datasets are the paper's protocol (PROTOCOL.md gives each value's source); small CPU
datasets share CPU_DEFAULTS, suited to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deep.data.base import RawDataset
from deep.options import Option, resolve
from deep.prune import RECALL_SOURCES, Quotas
from deep.schedule import TrainConfig

# load(data, download, **options): data is the --data path (None for the default location).
Loader = Callable[..., RawDataset]


def option_flag(dataset: str, option: str) -> str:
    """The CLI flag of a dataset option, e.g. --mnist1d-samples."""
    return f"--{dataset}-{option}".replace("_", "-")


@dataclass(frozen=True)
class Defaults:
    """What a sweep on a dataset uses unless a flag says otherwise."""

    model: str
    train: Mapping[str, TrainConfig]  # model name -> schedule; "*" for any other model
    recall_prior: float = Quotas.recall_prior  # Beta pseudo-count smoothing DRoP's recalls (deep.prune.Quotas)
    recall_source: str = RECALL_SOURCES[0]  # where DRoP's recalls come from (see deep.sweep)
    pretrained: str | None = None  # --pretrained of the default model: "imagenet", or None (trained from scratch)

    def schedule(self, model: str) -> TrainConfig:
        """The reference schedule of `model` on this dataset."""
        return self.train.get(model, self.train["*"])


# Small data on a CPU: >= 95% test accuracy on digits with the mlp in seconds (tests/test_train.py). Their
# validation halves are small (27 digits per class), so DRoP's recalls are smoothed by Laplace's rule.
CPU_DEFAULTS = Defaults(
    model="mlp",
    train={"*": TrainConfig(epochs=30, batch_size=64, lr=0.05, weight_decay=5e-4, milestones=(20,), augment=False)},
    recall_prior=1.0,
)


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader, the options the loader takes as keyword arguments, and its defaults."""

    load: Loader
    options: Mapping[str, Option] = field(default_factory=dict)
    defaults: Defaults = CPU_DEFAULTS

    def __call__(self, data: Path | None, download: bool = False, **options: object) -> RawDataset:
        """The raw dataset, loaded with the given options (the others at their defaults)."""
        return self.load(data, download, **options)

    def resolve(self, name: str, options: Mapping[str, object] | None) -> dict[str, int | float | str]:
        """Every option of this entry (registered as `name`): the given values checked, the rest at their defaults."""
        return resolve(self.options, options, f"dataset {name!r}", lambda key: option_flag(name, key))
