"""The selection task: `--quota-exponent auto` / `--recall-prior auto` for one DRoP protocol, density and seed.

Each candidate's kept set comes from `deep.prune.keep`, exactly as its final run would keep it; one proxy trains per
distinct kept set (plain ERM, the task's short schedule, the same init for every candidate so that they differ only
in their data) and is scored on the validation split; `deep.selection.select` chooses. The test split is never
read. A proxy's validation result is written into the task folder as soon as it is known, so a killed selection
resumes without training it again, and ends as it would have uninterrupted (the proxies are seeded).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from deep.experiment import validation_recalls
from deep.prune import keep
from deep.runs import write_json
from deep.seeds import derive
from deep.selection import Candidate, select, shared_proxies, validation_accuracies
from deep.tasks import Context, Outcome
from deep.train import TrainConfig, predict, train

PARTIAL = "proxy-{}.json"  # one finished proxy's validation accuracies, until the task finishes


def run_selection(ctx: Context) -> Outcome:
    """Choose beta and alpha for the task's protocol, density and seed by validation worst-unit accuracy."""
    config, dataset = ctx.task.config, ctx.dataset()
    by_group = config["quota_unit"] == "group"
    raw_recalls, val_sizes = validation_recalls(ctx, dataset, by_group)
    scores = ctx.task.dep("scores")
    labels = dataset.train.y.numpy()
    cands = [Candidate(**c) for c in config["candidates"]]
    kept = [keep(labels, config["density"], config["protocol"],
                 scores=None if scores is None else ctx.input(scores).array("scores"), recalls=raw_recalls,
                 groups=dataset.train.group.numpy() if by_group else None, min_count=config["min_count"],
                 recall_prior=c.recall_prior, val_sizes=val_sizes, seed=config["seed"],
                 allocation=config["allocation"], exponent=c.quota_exponent) for c in cands]
    proxies = shared_proxies(kept)
    results = {i: _proxy(ctx, kept[i], by_group) for i in sorted(set(proxies))}
    record = select(cands, [results[p]["worst"] for p in proxies], [results[p]["average"] for p in proxies],
                    proxies, config["preferred_prior"])
    for i in results:  # the record holds them now
        (ctx.path / PARTIAL.format(_digest(kept[i]))).unlink(missing_ok=True)
    return Outcome({**record, "proxies": len(results), "proxy_epochs": config["train"]["epochs"],
                    "train_seconds": sum(r["seconds"] for r in results.values())})


def _digest(kept: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(kept, dtype=np.int64).tobytes()).hexdigest()[:16]


def _proxy(ctx: Context, kept: np.ndarray, by_group: bool) -> dict:
    """Validation worst-unit and average accuracy of a proxy trained on `kept` (read back if already trained)."""
    partial = ctx.path / PARTIAL.format(_digest(kept))
    if partial.exists():
        return json.loads(partial.read_text())
    config, dataset = ctx.task.config, ctx.dataset()
    seed = derive(config["seed"], "selection")
    torch.manual_seed(seed)
    model = ctx.make_model(dataset.num_classes, dataset.input_shape)()
    normalization = ctx.normalization(dataset)
    result = train(model, dataset.train.subset(torch.as_tensor(kept)), TrainConfig.from_stored(config["train"]), seed=seed,
                   device=ctx.runtime.torch_device, normalization=normalization, progress=False)
    val = dataset.val
    predicted = predict(model, val.x, normalization=normalization, device=ctx.runtime.torch_device).argmax(1)
    units, num_units = (val.group, dataset.num_groups) if by_group else (val.y, dataset.num_classes)
    worst, average = validation_accuracies(val.y.numpy(), predicted.numpy(), units.numpy(), num_units)
    outcome = {"worst": worst, "average": average, "seconds": float(sum(r["seconds"] for r in result.history))}
    write_json(partial, outcome)
    return outcome
