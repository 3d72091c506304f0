"""One trainer for query and final models: SGD over tensors held in memory, on the CPU or a GPU.

Batches come from a seeded index permutation over tensors already on the device (no Dataset or
DataLoader), or, for an image store, are streamed from disk a batch at a time (deep.batches); uint8 images are
converted, augmented and normalised a whole batch at a time on the device. Every epoch ends with an optional validation pass and the callbacks. Per-sample outputs reach
`on_batch` callbacks at every step (query trainings record their trace there); methods that change the
loss (CDB-W's class weights, Group DRO, JTT) pass `loss_fn(logits, y, idx)` and update its state from
their callbacks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from deep.augment import rotate, train_view
from deep.batches import Inputs, Resident, Streamed, batches
from deep.checkpoint import Checkpointing
from deep.data.base import Split
from deep.metrics import classification_metrics
from deep.model_selection import SELECT, selected_epoch
from deep.runs import EpochRecord
from deep.schedule import TrainConfig, scaled_epochs

__all__ = ["TrainConfig", "scaled_epochs", "train", "predict", "resolve_device", "autocast", "DivergedError"]

Normalization = tuple[Sequence[float], Sequence[float]]
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
PREDICT_BATCH = 1024  # rows per forward pass when predicting: larger than any training batch, small enough for 224 px


class InputPipeline:
    """Turns stored inputs (uint8 images or float features, any device) into normalised float32 model inputs.

    uint8 values are divided by 255 first; then x -> (x - mean) / std with mean/std per channel (images)
    or per feature (vectors), length 1 or that dimension. Without a normalization, float inputs pass
    unchanged. On a GPU images are laid out channels_last.
    """

    def __init__(self, normalization: Normalization | None, device: torch.device) -> None:
        self.device = device
        self.memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        mean, std = normalization if normalization is not None else ((0.0,), (1.0,))
        mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32, device=device).reshape(-1)
        if mean_t.shape != std_t.shape or not bool((std_t > 0).all()):
            raise ValueError(f"normalization must be (mean, std) of equal lengths with std > 0, got {normalization}")
        self.identity = normalization is None
        # x * scale + shift in one fused op; uint8 folds the 1/255 into the scale.
        self.scale = 1.0 / std_t
        self.shift = -mean_t / std_t

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float32 copy of the batch `x` on the pipeline's device."""
        x = x.to(self.device, non_blocking=True)
        if x.dim() == 4:
            x = x.contiguous(memory_format=self.memory_format)
        if x.dtype != torch.uint8 and self.identity:
            return x.float()
        shape = (1, -1) + (1,) * (x.dim() - 2)
        scale = self.scale / 255.0 if x.dtype == torch.uint8 else self.scale
        return torch.addcmul(self.shift.view(shape), x.float(), scale.view(shape))


@dataclass
class EpochState:
    """What every callback gets after each epoch."""

    epoch: int  # 1-based
    model: nn.Module
    val_metrics: dict | None  # classification_metrics of this epoch's validation pass (None without val)
    history: list[dict]  # the history so far, this epoch included (deep.runs.EpochRecord as dicts)


Callback = Callable[[EpochState], None]
# Called after every training step with the step's (detached) logits, labels and row numbers in the training split.
BatchCallback = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]


@dataclass
class TrainResult:
    """Per-epoch history and the best validation epoch; the model itself was trained in place."""

    history: list[dict]  # one deep.runs.EpochRecord per epoch, as a dict
    best_epoch: int | None  # epoch of the highest val accuracy (the first on ties); None without val
    best_val_accuracy: float | None
    best_val_class_recall: np.ndarray | None
    resumed_from_epochs: list[int]  # the epochs after which this training was resumed from a checkpoint; [] if never
    selected_epoch: int | None = None  # the epoch whose weights the model ends with (`select`); None without epochs

    @property
    def best(self) -> dict | None:
        """The history record of the best validation epoch (None without val)."""
        return None if self.best_epoch is None else self.history[self.best_epoch - 1]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The given device, or "cuda" when a GPU is available, else "cpu"."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each batch; the last partial batch is kept, merged into the previous one if it has 1 row."""
    starts = list(range(0, n, batch_size))
    # A batch of one sample breaks BatchNorm in training mode, so it joins its predecessor instead.
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, [*starts[1:], n]))


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on a GPU, a no-op elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _logits(model: nn.Module, x: Inputs | Resident | Streamed, inputs: InputPipeline, batch_size: int) -> torch.Tensor:
    """Float32 CPU logits of `model` in eval mode on every row of `x` (inputs or their batch source), in batches."""
    source = x if isinstance(x, (Resident, Streamed)) else batches(x, inputs.device)
    if len(source) == 0:
        raise ValueError("x is empty: predict needs at least one row")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast(inputs.device):
            out = [model(inputs(xb)).float() for xb in source.ordered(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).cpu()


def predict(
    model: nn.Module,
    x: Inputs,
    *,
    normalization: Normalization | None,
    device: str | torch.device | None = None,
    batch_size: int = PREDICT_BATCH,
) -> torch.Tensor:
    """Logits (N, K) as a float32 CPU tensor, in eval mode without gradients; device None = the model's device."""
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    device = torch.device(device)
    model.to(device)
    return _logits(model, x, InputPipeline(normalization, device), batch_size)


def _cross_entropy(label_smoothing: float) -> LossFn:
    """The default loss: cross-entropy with label smoothing; ignores the sample indices."""

    def loss(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)

    return loss


def _train_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    source: Resident | Streamed,
    y: torch.Tensor,
    order: torch.Tensor,
    bounds: list[tuple[int, int]],
    inputs: InputPipeline,
    loss_fn: LossFn,
    augment: torch.Generator | None,
    on_batch: Sequence[BatchCallback],
    cfg: TrainConfig,
) -> float:
    """One pass over `bounds` of the permutation `order`; returns the mean training loss (one host sync)."""
    net.train()
    total = torch.zeros((), device=y.device)
    for (start, stop), xb in zip(bounds, source.gather(order, bounds)):
        idx = order[start:stop]
        if augment is not None and cfg.rotation > 0:
            xb = rotate(xb, cfg.rotation, augment)
        # The generator also exists for a rotation alone: the shift + flip only where cfg.augment asks for it.
        xb = train_view(xb, augment if cfg.augment else None, source.crop, cfg.crop_padding, cfg.translate)
        with autocast(inputs.device):
            logits = net(inputs(xb))
        logits = logits.float()
        loss = loss_fn(logits, y[idx], idx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for callback in on_batch:
            callback(logits.detach(), y[idx], idx)
        # Summed on the device, in place: a .item() per step would stall a GPU pipeline, and a list of per-step
        # scalars would pin the heap's reused batch blocks on a CPU (deep.batches.reuse_heap).
        total += loss.detach() * (stop - start)
    return float(total) / sum(stop - start for start, stop in bounds)


class DivergedError(RuntimeError):
    """A training whose loss became NaN or infinite: never a result."""


def _validate(model: nn.Module, val: Split, val_x: Resident | Streamed, inputs: InputPipeline) -> dict:
    """classification_metrics of the model on the validation split."""
    logits = _logits(model, val_x, inputs, PREDICT_BATCH)
    return classification_metrics(val.y, logits.argmax(1), logits.shape[1], group=val.group)


@dataclass
class _Training:
    """What a training carries from epoch to epoch: exactly what a checkpoint saves and a resume restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.MultiStepLR
    shuffle: torch.Generator  # the batch order
    augment: torch.Generator | None  # the augmentation's draws (None: no augmentation)
    device: torch.device
    epoch: int = 0  # epochs finished
    history: list[dict] = field(default_factory=list)
    best: tuple[int, float, np.ndarray] | None = None  # (epoch, val accuracy, val class recall) of the best epoch
    resumed: list[int] = field(default_factory=list)  # epochs after which the training was resumed
    select: str = "last"  # which epoch's weights the training ends with (deep.model_selection.SELECT)
    selected: tuple[int, dict] | None = None  # (epoch, CPU weights) that `select` picks so far; None for "last"

    def state_dict(self) -> dict:
        """The checkpoint of the training so far; `load_state_dict` reads back every key written here."""
        cuda = self.device.type == "cuda"
        return {
            "epoch": self.epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "shuffle_rng": self.shuffle.get_state(),
            "augment_rng": None if self.augment is None else self.augment.get_state(),
            "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
            "history": self.history,
            "best": None if self.best is None else [self.best[0], self.best[1], torch.as_tensor(self.best[2])],
            "resumed_from_epochs": self.resumed,
            "selected": None if self.selected is None else {"epoch": self.selected[0], "weights": self.selected[1]},
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint that `state_dict` wrote (the global torch RNG included)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.shuffle.set_state(state["shuffle_rng"])
        if self.augment is not None:
            self.augment.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.history = state["history"]
        best = state["best"]
        self.best = None if best is None else (best[0], best[1], best[2].numpy())
        self.epoch = state["epoch"]
        self.resumed = [*state["resumed_from_epochs"], state["epoch"]]
        selected = state["selected"]
        self.selected = None if selected is None else (int(selected["epoch"]), selected["weights"])

    def keep_selected(self) -> None:
        """After an epoch: hold (on the CPU) this epoch's weights if `select` picks it so far."""
        if self.select != "last" and selected_epoch(self.history, self.select) == self.epoch:
            self.selected = (self.epoch, {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()})

    def finish(self) -> None:
        """Load the selected epoch's weights into the model (for "last" it holds them already)."""
        if self.selected is not None:
            self.model.load_state_dict(self.selected[1])

    def result(self) -> TrainResult:
        """What the training gives back."""
        best = self.best
        return TrainResult(
            history=self.history,
            best_epoch=None if best is None else best[0],
            best_val_accuracy=None if best is None else best[1],
            best_val_class_recall=None if best is None else best[2],
            resumed_from_epochs=self.resumed,
            selected_epoch=self.selected[0] if self.selected is not None else (
                self.history[-1]["epoch"] if self.history else None),
        )


def _build(model: nn.Module, cfg: TrainConfig, seed: int, device: torch.device, augment: bool,
           select: str = "last") -> tuple[_Training, int]:
    """The model placed on `device`, its optimiser, schedule and seeded generators; and the seed of the model's own
    randomness (dropout)."""
    if device.type == "cuda":
        # Fixed input shapes: let cuDNN pick the fastest convolution algorithms once.
        torch.backends.cudnn.benchmark = True
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.milestones), cfg.gamma)
    shuffle_seed, augment_seed, model_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(3))
    shuffle = torch.Generator().manual_seed(shuffle_seed)
    augmenter = torch.Generator(device=device).manual_seed(augment_seed) if augment else None
    return _Training(model, optimizer, scheduler, shuffle, augmenter, device, select=select), model_seed


def _epoch(
    run: _Training, net: nn.Module, x: Resident | Streamed, y: torch.Tensor, bounds: list[tuple[int, int]],
    inputs: InputPipeline, loss_fn: LossFn, on_batch: Sequence[BatchCallback], cfg: TrainConfig,
    val: Split | None, val_x: Resident | Streamed | None,
    sampler: Callable[[torch.Generator], torch.Tensor] | None = None,
) -> dict | None:
    """Train one epoch, validate, and record it in the history; returns the validation metrics (None without val)."""
    started = time.perf_counter()
    epoch = run.epoch + 1
    lr = run.optimizer.param_groups[0]["lr"]
    order = (torch.randperm(len(x), generator=run.shuffle) if sampler is None else sampler(run.shuffle)).to(run.device)
    loss = _train_epoch(net, run.optimizer, x, y, order, bounds, inputs, loss_fn, run.augment, on_batch, cfg)
    if not math.isfinite(loss):
        raise DivergedError(f"training diverged at epoch {epoch} (loss {loss}, lr {lr:g}): lower --lr, or check the inputs")
    run.scheduler.step()
    record = EpochRecord(epoch=epoch, train_loss=loss, lr=lr)
    metrics = None
    if val is not None:
        metrics = _validate(run.model, val, val_x, inputs)
        record.val_accuracy, record.val_class_recall = metrics["accuracy"], metrics["class_accuracy"]
        record.val_worst_class_accuracy = metrics["worst_class_accuracy"]
        if val.group is not None:
            record.val_group_accuracy = metrics["group_accuracy"]
            record.val_worst_group_accuracy = metrics["worst_group_accuracy"]
        if run.best is None or metrics["accuracy"] > run.best[1]:
            run.best = (epoch, metrics["accuracy"], np.asarray(metrics["class_accuracy"]))
    record.seconds = time.perf_counter() - started
    run.history.append(asdict(record))
    run.epoch = epoch
    run.keep_selected()
    return metrics


def train(
    model: nn.Module,
    train: Split,
    cfg: TrainConfig,
    *,
    seed: int,
    device: str | torch.device | None = None,
    normalization: Normalization | None = None,
    val: Split | None = None,
    callbacks: Sequence[Callback] = (),
    on_batch: Sequence[BatchCallback] = (),
    loss_fn: LossFn | None = None,
    progress: bool = True,
    max_batches: int | None = None,
    checkpoint: Checkpointing | None = None,
    resume: dict | None = None,
    sampler: Callable[[torch.Generator], torch.Tensor] | None = None,
    select: str = "last",
) -> TrainResult:
    """Train `model` in place with SGD on `train`, validating on `val` after every epoch and calling `callbacks`.

    Every epoch visits all samples once in a seeded random order; the last partial batch is kept (a
    final batch of a single row is merged into the one before, for BatchNorm). `loss_fn(logits, y, idx)`,
    with idx the batch's row numbers in `train` on the training device, replaces the default
    (label-smoothed) cross-entropy. `on_batch` callbacks see every step's logits.
    `max_batches` caps the batches per epoch (smoke runs, benchmarks). On the CPU the same seed gives
    the same weights and history. Model-internal randomness (dropout) is drawn from a fork of torch's
    global RNG seeded from `seed`, which is restored afterwards. With `checkpoint`, the state is saved
    when due; `resume` (a checkpoint read back) continues where it stopped, bit-identically on the CPU.
    `sampler(generator)` replaces the epoch's random permutation by len(train) row numbers of its own (drawn from
    the shuffle generator, e.g. with replacement: group_dro's group-balanced sampling).
    `select` (deep.model_selection.SELECT) says which epoch's weights the model ends with: the last, or the best on
    validation so far (held on the CPU, checkpointed with the rest); TrainResult.selected_epoch names it.
    A non-finite training loss raises DivergedError.
    """
    if len(train) == 0:
        raise ValueError("train is empty: the trainer needs at least one sample")
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be >= 1 or None, got {max_batches}")
    if select not in SELECT:
        raise ValueError(f"--select must be one of {', '.join(SELECT)}, got {select!r}")
    if select != "last" and val is None:
        raise ValueError(f"--select {select} needs a validation split")
    device = resolve_device(device)
    inputs = InputPipeline(normalization, device)
    # Inputs in memory move to the device once; an image store streams (deep.batches).
    x, y = batches(train.x, device, move=True), train.y.to(device)
    val_x = batches(val.x, device, move=True) if val is not None else None
    augments = (cfg.augment or cfg.rotation > 0) and train.x.dim() == 4
    run, model_seed = _build(model, cfg, seed, device, augments, select)
    net = torch.compile(model) if cfg.compile else model
    loss_fn = loss_fn or _cross_entropy(cfg.label_smoothing)
    bounds = _batch_bounds(len(train), cfg.batch_size)[:max_batches]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], device_type=device.type):
        torch.manual_seed(model_seed)
        if resume is not None:
            run.load_state_dict(resume)
        bar = tqdm(range(run.epoch + 1, cfg.epochs + 1), desc="train", unit="epoch", disable=not progress, leave=False)
        for epoch in bar:
            metrics = _epoch(run, net, x, y, bounds, inputs, loss_fn, on_batch, cfg, val, val_x, sampler)
            bar.set_postfix(loss=f"{run.history[-1]['train_loss']:.4f}",
                            **({} if metrics is None else {"val_acc": f"{metrics['accuracy']:.4f}"}))
            state = EpochState(epoch, model, metrics, run.history)
            for callback in callbacks:
                callback(state)
            if checkpoint is not None and epoch < cfg.epochs and checkpoint.due(epoch):
                checkpoint.save(run.state_dict())
        bar.close()
    run.finish()
    return run.result()
