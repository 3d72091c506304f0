"""One trainer for query and final models: SGD over tensors held in memory, on the CPU or a GPU.

Batches come from a seeded index permutation over tensors already on the device (no Dataset or
DataLoader); uint8 images are converted, augmented and normalised a whole batch at a time on the
device. Every epoch ends with an optional validation pass and the callbacks, which is where scorers
record per-sample outputs and where methods such as CDB-W change the class weights of the loss.
Methods that need another loss (Group DRO, JTT) pass `loss_fn(logits, y, idx)`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from deep.augment import train_view
from deep.batches import Inputs, Resident, Streamed, batches
from deep.checkpoint import Checkpointing
from deep.data.base import Split
from deep.metrics import classification_metrics
from deep.schedule import TrainConfig, scaled_epochs

__all__ = ["TrainConfig", "scaled_epochs", "train", "predict", "resolve_device", "autocast", "DivergedError"]

Normalization = tuple[Sequence[float], Sequence[float]]
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
WeightsLike = torch.Tensor | np.ndarray | Sequence[float]
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
    """What every callback gets after each epoch. Set `class_weights` to change the loss from the next epoch on."""

    epoch: int  # 1-based
    model: nn.Module
    predict: Callable[[torch.Tensor], torch.Tensor]  # raw x (as stored in a Split) -> float32 CPU logits, eval mode
    prepare: Callable[[torch.Tensor], torch.Tensor]  # raw batch -> normalised model input on the training device
    val_metrics: dict | None  # classification_metrics of this epoch's validation pass (None without val)
    history: list[dict]  # the history so far, this epoch included
    class_weights: torch.Tensor | None  # per-class loss weights used this epoch; a callback may replace them


Callback = Callable[[EpochState], None]
# Called after every training step with the step's (detached) logits, labels and row numbers in the training split.
BatchCallback = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]


@dataclass
class TrainResult:
    """Per-epoch history and the best validation epoch; the model itself was trained in place."""

    history: list[dict]  # epoch, train_loss, lr, seconds, val_accuracy, val_worst_class_accuracy, val_class_recall, ...
    best_epoch: int | None  # epoch of the highest val accuracy (the first on ties); None without val
    best_val_accuracy: float | None
    best_val_class_recall: np.ndarray | None
    resumed_from_epochs: list[int]  # the epochs after which this training was resumed from a checkpoint; [] if never

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


def _class_weights(weights: WeightsLike | None, device: torch.device, has_loss_fn: bool) -> torch.Tensor | None:
    """Validated per-class loss weights as a float32 tensor on `device`."""
    if weights is None:
        return None
    if has_loss_fn:
        raise ValueError("class_weights and loss_fn cannot be combined: put the weights into loss_fn")
    w = torch.as_tensor(np.asarray(weights.cpu() if isinstance(weights, torch.Tensor) else weights), dtype=torch.float32)
    if w.dim() != 1 or not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(f"class_weights must be one finite, non-negative weight per class, not all 0; got {w.tolist()}")
    return w.to(device)


def _cross_entropy(weight: torch.Tensor | None, label_smoothing: float) -> LossFn:
    """The default loss: (class-weighted) cross-entropy with label smoothing; ignores the sample indices."""

    def loss(logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, y, weight=weight, label_smoothing=label_smoothing)

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
    losses = []
    for (start, stop), xb in zip(bounds, source.gather(order, bounds)):
        idx = order[start:stop]
        xb = train_view(xb, augment, source.crop, cfg.crop_padding, cfg.translate)
        with autocast(inputs.device):
            logits = net(inputs(xb))
        logits = logits.float()
        loss = loss_fn(logits, y[idx], idx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for callback in on_batch:
            callback(logits.detach(), y[idx], idx)
        # Kept on the device: a .item() per step would stall a GPU pipeline and cost a sync on CPU too.
        losses.append(loss.detach())
    sizes = torch.tensor([stop - start for start, stop in bounds], dtype=torch.float32, device=y.device)
    return float((torch.stack(losses).float() * sizes).sum() / sizes.sum())


class DivergedError(RuntimeError):
    """A training whose loss became NaN or infinite: never a result."""


def _validate(model: nn.Module, val: Split, val_x: Resident | Streamed, inputs: InputPipeline) -> dict:
    """classification_metrics of the model on the validation split."""
    logits = _logits(model, val_x, inputs, PREDICT_BATCH)
    return classification_metrics(val.y, logits.argmax(1), logits.shape[1], group=val.group)


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
    class_weights: WeightsLike | None = None,
    loss_fn: LossFn | None = None,
    progress: bool = True,
    max_batches: int | None = None,
    checkpoint: Checkpointing | None = None,
    resume: dict | None = None,
) -> TrainResult:
    """Train `model` in place with SGD on `train`, validating on `val` after every epoch and calling `callbacks`.

    Every epoch visits all samples once in a seeded random order; the last partial batch is kept (a
    final batch of a single row is merged into the one before, for BatchNorm). `loss_fn(logits, y, idx)`,
    with idx the batch's row numbers in `train` on the training device, replaces the default
    (class-weighted, label-smoothed) cross-entropy. `on_batch` callbacks see every step's logits.
    `max_batches` caps the batches per epoch (smoke runs, benchmarks). On the CPU the same seed gives
    the same weights and history. Model-internal randomness (dropout) is drawn from a fork of torch's
    global RNG seeded from `seed`, which is restored afterwards. With `checkpoint`, the state is saved
    when due; `resume` (a checkpoint read back) continues where it stopped, bit-identically on the CPU.
    A non-finite training loss raises DivergedError.
    """
    if len(train) == 0:
        raise ValueError("train is empty: the trainer needs at least one sample")
    if max_batches is not None and max_batches < 1:
        raise ValueError(f"max_batches must be >= 1 or None, got {max_batches}")
    device = resolve_device(device)
    weights = _class_weights(class_weights, device, loss_fn is not None)
    if device.type == "cuda":
        # Fixed input shapes: let cuDNN pick the fastest convolution algorithms once.
        torch.backends.cudnn.benchmark = True
        model.to(device, memory_format=torch.channels_last)
    else:
        model.to(device)
    inputs = InputPipeline(normalization, device)
    # Inputs in memory move to the device once; an image store streams (deep.batches).
    x, y = batches(train.x, device, move=True), train.y.to(device)
    val_x = batches(val.x, device, move=True) if val is not None else None
    net = torch.compile(model) if cfg.compile else model
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.milestones), cfg.gamma)
    bounds = _batch_bounds(len(train), cfg.batch_size)[:max_batches]
    shuffle_seed, augment_seed, model_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(3))
    shuffle = torch.Generator().manual_seed(shuffle_seed)
    augment = torch.Generator(device=device).manual_seed(augment_seed) if cfg.augment and train.x.dim() == 4 else None
    # Callbacks see train.x / val.x as users hold them; predicting on them reuses the copies already on the device.
    resident = [(train.x, x)] + ([(val.x, val_x)] if val is not None else [])

    def predict_epoch(rows: torch.Tensor) -> torch.Tensor:
        stored = next((copy for original, copy in resident if rows is original), rows)
        return _logits(model, stored, inputs, PREDICT_BATCH)

    history: list[dict] = []
    best: tuple[int, float, np.ndarray] | None = None
    resumed: list[int] = []
    start_epoch = 1
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type=device.type):
        torch.manual_seed(model_seed)
        if resume is not None:
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
            shuffle.set_state(resume["shuffle_rng"])
            if augment is not None:
                augment.set_state(resume["augment_rng"])
            torch.set_rng_state(resume["torch_rng"])
            if cuda:
                torch.cuda.set_rng_state(resume["cuda_rng"], device)
            history = resume["history"]
            best = None if resume["best"] is None else (resume["best"][0], resume["best"][1], resume["best"][2].numpy())
            weights = None if resume["class_weights"] is None else resume["class_weights"].to(device)
            start_epoch = resume["epoch"] + 1
            resumed = [*resume["resumed_from_epochs"], resume["epoch"]]
        bar = tqdm(range(start_epoch, cfg.epochs + 1), desc="train", unit="epoch", disable=not progress, leave=False)
        for epoch in bar:
            started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            order = torch.randperm(len(train), generator=shuffle).to(device)
            loss = _train_epoch(
                net, optimizer, x, y, order, bounds, inputs, loss_fn or _cross_entropy(weights, cfg.label_smoothing),
                augment, on_batch, cfg,
            )
            if not math.isfinite(loss):
                raise DivergedError(
                    f"training diverged at epoch {epoch} (loss {loss}, lr {lr:g}): lower --lr, or check the inputs"
                )
            scheduler.step()
            record = {"epoch": epoch, "train_loss": loss, "lr": lr, "val_accuracy": None, "val_class_recall": None}
            metrics = None
            if val is not None:
                metrics = _validate(model, val, val_x, inputs)
                record.update(val_accuracy=metrics["accuracy"], val_worst_class_accuracy=metrics["worst_class_accuracy"],
                              val_class_recall=metrics["class_accuracy"])
                if val.group is not None:
                    record.update(val_group_accuracy=metrics["group_accuracy"],
                                  val_worst_group_accuracy=metrics["worst_group_accuracy"])
                if best is None or metrics["accuracy"] > best[1]:
                    best = (epoch, metrics["accuracy"], np.asarray(metrics["class_accuracy"]))
            record["seconds"] = time.perf_counter() - started
            history.append(record)
            bar.set_postfix(loss=f"{loss:.4f}", **({} if metrics is None else {"val_acc": f"{metrics['accuracy']:.4f}"}))
            state = EpochState(epoch, model, predict_epoch, inputs, metrics, history, weights)
            for callback in callbacks:
                callback(state)
            weights = _class_weights(state.class_weights, device, loss_fn is not None)
            if checkpoint is not None and epoch < cfg.epochs and checkpoint.due(epoch):
                checkpoint.save({
                    "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "shuffle_rng": shuffle.get_state(),
                    "augment_rng": None if augment is None else augment.get_state(),
                    "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state(device) if cuda else None,
                    "history": history,
                    "best": None if best is None else [best[0], best[1], torch.as_tensor(best[2])],
                    "class_weights": None if weights is None else weights.cpu(), "resumed_from_epochs": resumed,
                })
        bar.close()
    return TrainResult(
        history=history,
        best_epoch=None if best is None else best[0],
        best_val_accuracy=None if best is None else best[1],
        best_val_class_recall=None if best is None else best[2],
        resumed_from_epochs=resumed,
    )
