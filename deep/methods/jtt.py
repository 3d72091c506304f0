"""JTT, Just Train Twice (Liu et al. 2021): upweight the training errors of a briefly trained ERM model.

The identification model is the final run's model architecture trained with ERM on the kept samples for T
epochs (option `epochs`, alias --jtt-epochs; the final schedule truncated at T); the kept samples it then
misclassifies (eval mode) get loss weight lambda (option `upweight`, alias --jtt-upweight), all others 1. The
paper upsamples the errors lambda times instead; here the weights enter the per-batch weighted mean sum_i w_i l_i / sum_i w_i, which has the same expected
objective without lengthening the epochs.
"""

from __future__ import annotations

import torch

from collections.abc import Mapping

from deep.methods.base import Method, MethodInput, Plan, every_row, weighted_loss
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


def prepare(data: MethodInput) -> Plan:
    """All kept rows, the identification model's errors weighted by lambda (a resumed run keeps its errors)."""
    errors = identification_errors(data) if data.resume is None else data.resume["errors"].bool()
    weights = torch.where(errors, data.options["upweight"], 1.0).to(data.device)
    summary = {"identification_epochs": identification_epochs(data.options, data.cfg.epochs), "errors": int(errors.sum())}
    return Plan(
        every_row(data),
        loss_fn=weighted_loss(lambda y, idx: weights[idx], data.cfg.label_smoothing),
        summary=lambda: summary,
        state={"errors": errors},
    )


METHOD = Method(
    "JTT: retrain with the errors of a short ERM run upweighted", prepare, {
        "upweight": Option(float, 100.0, "lambda: loss weight of the identification model's training errors "
                           "(JTT's Waterbirds value)", minimum=1, alias="--jtt-upweight"),
        "epochs": Option(int, None, "T: epochs of the ERM identification model; derived: a fifth of the final "
                         "schedule (JTT's Waterbirds setting, 60 of 300)", minimum=1, alias="--jtt-epochs"),
    },
    derived={"epochs": default_identification_epochs},
    extra_epochs=identification_epochs,
)
