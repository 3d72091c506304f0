"""A dataset's registry entry: its loader, the options it declares (from which the CLI makes its flags) and the
protocol a sweep on it follows by default.

An option `samples` of dataset `mnist1d` is passed as load_dataset("mnist1d", options={"samples": 5000}) and
on the command line as --mnist1d-samples 5000 (`option_flag`); its type, default and help text live on the entry.
The defaults of the paper's datasets are the paper's protocol (PROTOCOL.md gives each value's source); small CPU
datasets share CPU_DEFAULTS, suited to them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deep.data.base import RawDataset
from deep.prune import RECALL_SOURCES, Quotas
from deep.schedule import TrainConfig

# load(data, download, **options): data is the --data path (None for the default location).
Loader = Callable[..., RawDataset]


def option_flag(dataset: str, option: str) -> str:
    """The CLI flag of a dataset option, e.g. --mnist1d-samples."""
    return f"--{dataset}-{option}".replace("_", "-")


@dataclass(frozen=True)
class Option:
    """One dataset option: the type of its value, its default, the help text of its flag, and a lower bound."""

    type: type[int] | type[float] | type[str]
    default: int | float | str
    help: str
    minimum: int | float | None = None

    def check(self, flag: str, value: object) -> int | float | str:
        """`value` as this option's type, or ValueError naming `flag` when it has another type or is out of range."""
        # bool is an int to Python, but True as a sample count is a mistake, not a number.
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.type is int and not (numeric and float(value).is_integer()):
            raise ValueError(f"{flag} must be an integer, got {value!r}")
        if self.type is float and not (numeric and math.isfinite(value)):
            raise ValueError(f"{flag} must be a finite number, got {value!r}")
        if self.type is str and not isinstance(value, str):
            raise ValueError(f"{flag} must be a string, got {value!r}")
        value = self.type(value)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{flag} must be at least {self.minimum}, got {value}")
        return value


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
        given = dict(options or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise ValueError(f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; its options: {known}")
        return {key: option.check(option_flag(name, key), given.get(key, option.default))
                for key, option in self.options.items()}
