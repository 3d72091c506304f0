"""A final run: prune with the task's protocol, train from scratch on the kept samples with its method, evaluate.

Everything a final run does follows from its config (deep.final.FinalConfig, made by deep.sweep.final_task): the consumed
scores and recalls tasks, the protocol, density and seed, the method and its options, the quota unit (classes,
or the dataset's groups such as Waterbirds' 2 y + place) and the density-scaled schedule. The kept indices come
from `deep.prune.keep`, the same numpy function users call on their own labels and scores.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import torch

from deep.checkpoint import Checkpointing
from deep.data.base import Dataset
from deep.final import FinalConfig
from deep.methods import METHODS, MethodInput
from deep.metrics import classification_metrics
from deep.prune import keep, smoothed_recalls
from deep.query import MODEL_FILE, weights_digest, weights_file
from deep.seeds import derive, method_seed
from deep.tasks import Context, Outcome
from deep.train import predict, train


def _counts(labels: np.ndarray, kept: np.ndarray, num: int, name: str) -> dict:
    """Sizes, kept counts and kept densities per class or group, as metrics."""
    sizes = np.bincount(labels, minlength=num)
    counts = np.bincount(labels[kept], minlength=num)
    return {f"{name}_sizes": sizes.tolist(), f"{name}_counts": counts.tolist(),
            f"{name}_density": (counts / np.maximum(sizes, 1)).tolist()}


def validation_recalls(ctx: Context, dataset: Dataset, by_group: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """The raw validation recalls of the consumed recalls task (per class or group) and the validation sizes."""
    val_units = (dataset.val.group if by_group else dataset.val.y).numpy()
    sizes = np.bincount(val_units, minlength=dataset.num_groups if by_group else dataset.num_classes)
    task = ctx.task.dep("recalls")
    if task is None:
        return None, sizes
    run = ctx.input(task)
    name = "group_recalls" if by_group else "class_recalls"
    if name not in run.array_names():
        raise ValueError(f"the recalls task {run.path} holds no {name}: the dataset has no groups")
    return run.array(name), sizes


def run_final(ctx: Context) -> Outcome:
    """Prune, train from scratch on the kept samples with the run's method, evaluate on the test split."""
    config, dataset = FinalConfig.from_dict(ctx.task.config), ctx.dataset()
    device = ctx.runtime.torch_device
    by_group = config.quota_unit == "group"
    raw_recalls, val_sizes = validation_recalls(ctx, dataset, by_group)
    scores_task = ctx.task.dep("scores")
    # --quota-exponent / --recall-prior auto: the values the run's selection task chose on validation.
    selection = ctx.task.dep("selection")
    chosen = ctx.input(selection).metrics if selection is not None else {}
    quotas = None if config.quotas is None else replace(
        config.quotas, exponent=chosen.get("quota_exponent", config.quotas.exponent),
        recall_prior=chosen.get("recall_prior", config.quotas.recall_prior))
    train_split = dataset.train
    subset = ctx.task.dep("subset")
    kept = ctx.input(subset).array("rows") if subset is not None else keep(
        train_split.y.numpy(), config.density, config.protocol,
        scores=None if scores_task is None else ctx.input(scores_task).array("scores"),
        recalls=raw_recalls, groups=train_split.group.numpy() if by_group else None, val_sizes=val_sizes,
        seed=config.seed, **({} if quotas is None else asdict(quotas)),
    )
    cfg = config.train
    seed = derive(config.seed, "final")
    kept_split = train_split.subset(torch.as_tensor(kept))
    has_groups = train_split.group is not None
    checkpoint = Checkpointing(ctx.checkpoint_path, ctx.runtime.checkpoint_every)
    resume = checkpoint.load()
    make_model, normalization = ctx.make_model(dataset.num_classes, dataset.input_shape), ctx.normalization(dataset)
    # The method plans first (JTT trains its identification model here, unless resuming), so the final init below
    # is the same whatever the method.
    plan = METHODS[config.method].prepare(MethodInput(
        kept_split, kept_split.group if has_groups else kept_split.y,
        dataset.num_groups if has_groups else dataset.num_classes, dataset.num_classes, cfg,
        method_seed(config.seed, config.method), device, normalization, make_model, config.method_options,
        None if resume is None else resume["extra"]["method"],
    ))
    checkpoint.extra = lambda: {"method": {k: v.detach().cpu() for k, v in plan.state.items()}}
    torch.manual_seed(seed)
    model = make_model()
    result = train(
        model, kept_split.subset(torch.as_tensor(plan.rows)), cfg, seed=seed, device=device,
        normalization=normalization, val=dataset.val, callbacks=plan.callbacks, loss_fn=plan.loss_fn,
        progress=ctx.runtime.progress, checkpoint=checkpoint, resume=resume,
    )
    metrics = evaluate(model, dataset, device, normalization)
    labels = train_split.y.numpy()
    recalls = None if raw_recalls is None else smoothed_recalls(raw_recalls, val_sizes, quotas.recall_prior)
    metrics.update(
        val_accuracy=result.best_val_accuracy,
        num_train=int(labels.size),
        num_kept=int(kept.size),
        num_trained=int(plan.rows.size),
        **_counts(labels, kept, dataset.num_classes, "class"),
        **(_counts(train_split.group.numpy(), kept, dataset.num_groups, "group") if has_groups else {}),
        recalls=None if recalls is None else recalls.tolist(),  # what DRoP's counts were made from
        val_recalls=None if raw_recalls is None else raw_recalls.tolist(),  # before smoothing
        quota_exponent=None if quotas is None else quotas.exponent,  # the values DRoP's counts used
        recall_prior=None if quotas is None else quotas.recall_prior,
        exponent_selection=chosen.get("exponent_selection"),  # each candidate with its validation accuracies
        method_summary=plan.summary(),
        train_seconds=float(sum(r["seconds"] for r in result.history)),
        epochs=cfg.epochs,
        resumed_from_epochs=result.resumed_from_epochs,
        weights_sha256=weights_digest(model),
        dataset_info=dataset.info,  # provenance: where the data were read from, split sizes, options
    )
    # "trained" only where the method subsamples the kept set (subg); otherwise it equals "kept".
    trained = {} if plan.rows.size == kept.size else {"trained": kept[plan.rows]}
    arrays = {"kept": kept, "kept_ids": train_split.ids[kept], **trained}
    files = {MODEL_FILE: weights_file(model)} if ctx.runtime.keep_weights else {}  # for `python -m deep evaluate`
    return Outcome(metrics, arrays, files, result.history)


def final_cost(config: dict) -> float:
    """A final run's training in full-data-epoch equivalents: its epochs (plus those of models its method trains
    itself, e.g. JTT's identification model) times its density."""
    final = FinalConfig.from_dict(config)
    epochs = final.train.epochs
    epochs += METHODS[final.method].extra_epochs(final.method_options, epochs)
    return epochs * final.density


def evaluate(model: torch.nn.Module, dataset: Dataset, device: torch.device, normalization: tuple | None) -> dict:
    """Test-set metrics of a trained model (group metrics weighted by the full training set's group sizes)."""
    test = dataset.test
    pred = predict(model, test.x, normalization=normalization, device=device).argmax(1)
    train_groups = None
    if test.group is not None and dataset.train.group is not None:
        train_groups = np.bincount(dataset.train.group.numpy(), minlength=dataset.num_groups)
    return classification_metrics(
        test.y, pred, dataset.num_classes, group=test.group,
        num_groups=dataset.num_groups or None, train_group_counts=train_groups,
    )
