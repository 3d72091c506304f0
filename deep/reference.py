"""The two references a run can follow, as ONE preset of settings each: `paper` and `official`.

`paper` is the paper's Algorithm 1 and this repository's principled choices; `official` is what the authors' code
(avysogorets/fair-data-pruning @ 11e02c0) does, item by item (PROTOCOL.md §4b). Every setting is also a flag of its
own; a value given explicitly beats the preset. Numpy- and torch-free: `deep.prune` imports it.
"""

from __future__ import annotations

REFERENCE_NAMES = ("paper", "official")

# setting -> (paper's value, official's value); each line says where the official value comes from.
SETTINGS: dict[str, tuple] = {
    "allocation": ("density", "official"),  # quoters/drop.py + utils.py get_idxs_from_scores/dosample
    "ties": ("random", "highest"),  # diversifiers/auto.py: a stable ascending sort, the last k kept
    "kept_rule": ("round", "official"),  # schedulers/linear.py: int(N (1 - (1 - d)))
    "schedule_rule": ("density", "fraction"),  # utils.py epochs_correction: the kept fraction n/N where we use d
    "val_split": ("random", "first_half"),  # data/vision/vision_data.py: the first half of each test class
    "recall_model": ("compressed", "official"),  # main.py:55,60,74: Random+DRoP's 16 epochs, constant LR, 1 init
    "rotation": ("none", "official"),  # data/vision/mnist.py:12: RandomRotation(4) on MNIST's final trainings
    "ssp_features": ("normalized", "raw"),  # scorers/sspy.py: raw extractor features
    "du_windows": ("paper", "official"),  # scorers/dynamic_uncertainty.py: J-1 epochs within 1..E-1, / (E - J)
}
# rotation "official": the authors' rotation of each dataset's final trainings, in degrees (0 where none)
OFFICIAL_ROTATION = {"mnist": 4.0}
# Settings that are a scorer's option: setting -> (scorer, option); they travel in the scorer options.
SCORER_SETTINGS = {"ssp_features": ("ssp", "features"), "du_windows": ("dynamic_uncertainty", "windows")}
PRUNE_SETTINGS = ("allocation", "ties", "kept_rule")  # the ones deep.prune.keep reads

REFERENCES: dict[str, dict] = {name: {key: values[i] for key, values in SETTINGS.items()}
                               for i, name in enumerate(REFERENCE_NAMES)}


def resolve(reference: str, **given) -> dict:
    """The settings of `reference`, with every value given explicitly (not None) in place of the preset's."""
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {', '.join(REFERENCE_NAMES)}, got {reference!r}")
    unknown = sorted(set(given) - set(SETTINGS))
    if unknown:
        raise ValueError(f"not a reference setting: {', '.join(unknown)} (settings: {', '.join(SETTINGS)})")
    return {**REFERENCES[reference], **{k: v for k, v in given.items() if v is not None}}


def with_scorer_settings(settings: dict, scorer_options: dict[str, dict]) -> dict[str, dict]:
    """Scorer options with the resolved scorer settings filled in where the user gave no value of their own."""
    merged = {name: dict(options) for name, options in scorer_options.items()}
    for setting, (scorer, option) in SCORER_SETTINGS.items():
        merged.setdefault(scorer, {}).setdefault(option, settings[setting])
    return merged
