"""The training schedule: SGD hyper-parameters, augmentation and the epoch rules for pruned and query trainings.

Numpy- and torch-free, so that dataset registry entries can declare their reference schedules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace


def scaled_epochs(epochs: int, density: float) -> int:
    """Epochs for training on a fraction `density` of the data: int((0.5 + 0.5 d) E / d), the reference code's rule."""
    if not 0 < density <= 1:
        raise ValueError(f"density must lie in (0, 1], got {density}")
    return int((0.5 + 0.5 * density) * epochs / density)


@dataclass(frozen=True)
class TrainConfig:
    """SGD hyper-parameters and schedule: LR drops by `gamma` at each of `milestones` (epochs, 1-based ends)."""

    epochs: int  # passes over the training data
    batch_size: int  # samples per SGD step
    lr: float  # initial learning rate
    momentum: float = 0.9  # SGD momentum (a fraction)
    nesterov: bool = False
    weight_decay: float = 5e-4  # L2 penalty coefficient
    milestones: tuple[int, ...] = ()  # epochs after which the LR is multiplied by `gamma`
    gamma: float = 0.2  # LR factor at each milestone
    label_smoothing: float = 0.0  # fraction of the target mass spread uniformly over the classes
    augment: bool = True  # random shift + horizontal flip; only applies to image inputs (N, C, H, W)
    crop_padding: int | None = None  # shift = crop from the zero-padded image, padding in pixels; None = H // 8
    translate: float | None = None  # shift = RandomAffine(translate=(t, t)) instead: up to t * size, zero fill
    compile: bool = False  # torch.compile the model for training (worth it on a GPU)

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        checks = {
            # 0 epochs = the model stays at its init: the query stage of a scorer that needs no training.
            "epochs must be >= 0": self.epochs >= 0,
            "batch_size must be >= 1": self.batch_size >= 1,
            "lr must be > 0": self.lr > 0,
            "momentum must be >= 0": self.momentum >= 0,
            "nesterov needs momentum > 0": not self.nesterov or self.momentum > 0,
            "weight_decay must be >= 0": self.weight_decay >= 0,
            "gamma must be > 0": self.gamma > 0,
            "label_smoothing must lie in [0, 1)": 0 <= self.label_smoothing < 1,
            "crop_padding must be >= 0": self.crop_padding is None or self.crop_padding >= 0,
            "translate must lie in (0, 1)": self.translate is None or 0 < self.translate < 1,
            "give crop_padding or translate, not both": self.crop_padding is None or self.translate is None,
            "milestones must be strictly increasing positive epochs": all(
                a < b for a, b in zip((0, *self.milestones), self.milestones)
            ),
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid TrainConfig ({'; '.join(failed)}): {self}")

    @classmethod
    def from_stored(cls, stored: Mapping[str, object]) -> TrainConfig:
        """A TrainConfig from its stored form (a task config's `train`: `asdict` of one, lists for tuples)."""
        return cls(**{**stored, "milestones": tuple(stored["milestones"])})

    def scaled_for_density(self, density: float) -> TrainConfig:
        """This config for a fraction `density` of the data: E' = scaled_epochs(E, d), milestones m -> int(m (E' / E))
        (the reference code's `epochs_correction`)."""
        epochs = scaled_epochs(self.epochs, density)
        return replace(self, epochs=epochs, milestones=_milestones(self.milestones, epochs / self.epochs))

    def truncated(self, epochs: int) -> TrainConfig:
        """The schedule stopped after `epochs` epochs: milestones past the end drop out (JTT's identification model)."""
        return replace(self, epochs=epochs, milestones=tuple(m for m in self.milestones if m < epochs))

    def compressed(self, epochs: int) -> TrainConfig:
        """The whole schedule squeezed into `epochs` epochs, milestones m -> int(m epochs / E) (the reference code's
        short query trainings: 16 of 160 epochs drop the LR at 8 and 12 instead of 80 and 120)."""
        if self.epochs == 0:
            return replace(self, epochs=epochs)
        return replace(self, epochs=epochs, milestones=_milestones(self.milestones, epochs / self.epochs))


def _milestones(milestones: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """int(m * factor) for each milestone, once each; those that fall to epoch 0 drop out."""
    return tuple(sorted({int(m * factor) for m in milestones} - {0}))
