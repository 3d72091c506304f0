"""JTT, Just Train Twice (Liu et al. 2021): upsample the training errors of a briefly trained ERM model.

The identification model is the final run's model architecture trained with ERM on the kept samples for T
epochs (option `epochs`, alias --jtt-epochs; the final schedule truncated at T); each kept sample it then
misclassifies (eval mode) is repeated 1 + lambda times (option `upweight`, alias --jtt-upweight), as JTT's code
concatenates the training set with lambda copies of its errors (anniesch/jtt run_expt.py, the `up_weight` block):
an epoch then visits N + lambda * errors rows. On Waterbirds the reference's learning rate and weight decay
(1e-5, 1.0; JTT README.md:51,57) replace the dataset's.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from deep.methods.base import Method, MethodInput, Plan
from deep.options import Option
from deep.train import predict, train

IDENTIFICATION_FRACTION = 0.2  # default T / E: JTT's Waterbirds setting, 60 of 300 epochs


def default_identification_epochs(epochs: int) -> int:
    """T when the option `epochs` is not given: a fifth of the final schedule of `epochs` epochs (at least 1)."""
    return max(1, round(IDENTIFICATION_FRACTION * epochs))


def identification_epochs(options: Mapping[str, object], epochs: int) -> int:
    """T, as the run's config records it (the final schedule's `epochs` are implied in it)."""
    return int(options["epochs"])


def identification_errors(data: MethodInput) -> torch.Tensor:
    """Boolean mask of the kept samples that an ERM model trained for T epochs misclassifies."""
    torch.manual_seed(data.seed)
    model = data.make_model()
    cfg = data.cfg.truncated(identification_epochs(data.options, data.cfg.epochs))
    train(model, data.train, cfg, seed=data.seed, device=data.device, normalization=data.normalization, progress=False)
    logits = predict(model, data.train.x, normalization=data.normalization, device=data.device)
    return logits.argmax(1) != data.train.y


def upsampled_rows(errors: torch.Tensor, upweight: int) -> np.ndarray:
    """Every row once, then each error row `upweight` more times: the rows of JTT's concatenated training set."""
    return np.concatenate((np.arange(errors.numel()), np.repeat(np.flatnonzero(errors.cpu().numpy()), upweight)))


def prepare(data: MethodInput) -> Plan:
    """All kept rows, the identification model's errors repeated lambda more times (a resumed run keeps its errors)."""
    errors = identification_errors(data) if data.resume is None else data.resume["errors"].bool()
    summary = {"identification_epochs": identification_epochs(data.options, data.cfg.epochs), "errors": int(errors.sum())}
    return Plan(upsampled_rows(errors, data.options["upweight"]), summary=lambda: summary, state={"errors": errors})


METHOD = Method(
    "JTT: retrain with the errors of a short ERM run upweighted", prepare, {
        "upweight": Option(int, 100, "lambda: extra copies of each of the identification model's training errors "
                           "(JTT's Waterbirds value, README.md:57)", minimum=1, alias="--jtt-upweight"),
        "epochs": Option(int, None, "T: epochs of the ERM identification model; derived: a fifth of the final "
                         "schedule (JTT's Waterbirds setting, 60 of 300)", minimum=1, alias="--jtt-epochs"),
    },
    derived={"epochs": default_identification_epochs},
    extra_epochs=identification_epochs,
    cost_note="a lower bound: the retraining set holds every kept row once plus `upweight` copies of each "
              "identification error, a number known only after the identification run, and its epochs are counted "
              "at the kept rows alone (at 5 % errors and upweight 100 the set is 6x larger)",
    train_defaults={"waterbirds": {"lr": 1e-5, "weight_decay": 1.0}},  # JTT README.md:51,57 (300 epochs, as here)
)
