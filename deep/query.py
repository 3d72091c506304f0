"""The query tasks: train one query model, score with it, and average validation recalls over query models.

A query training is one model trained on the full training set with the final schedule compressed into its query
length (LR drops scaled alike; see deep.sweep.Setup.query_config). It keeps what every scorer needs (see deep.scores.base): its weights, its trace (each training
sample's true-class probability and correctness at every epoch, recorded from the training steps at no extra
cost) and its per-class (and per-group) validation accuracy at its epoch of best validation accuracy. Scorers and
DRoP's recalls are tasks of their own over query trainings, so any scorer asked for later, by any sweep, reuses a
finished query training of the same settings without training again.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deep.checkpoint import Checkpointing
from deep.data.base import Dataset
from deep.data.store import StoredImages
from deep.models import build_model
from deep.models.pretrained import normalization
from deep.runs import Run
from deep.scores import SCORERS, QueryModel, Trace
from deep.seeds import derive
from deep.tasks import Context, Outcome
from deep.train import Normalization, TrainConfig, train

MODEL_FILE = "model.pt"


def weights_file(model: nn.Module) -> bytes:
    """The bytes of a stored model (`model.pt`): its state_dict on the CPU, read back with weights_only=True."""
    buffer = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def weights_digest(model: nn.Module) -> str:
    """sha256 of every parameter and buffer of a model, in state_dict order: equal digests = identical weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class TraceRecorder:
    """Records every training sample's true-class probability and correctness from each training step.

    With `folder` (streamed data: ImageNet's trace is 1.28 M samples x 90 epochs) the epochs are written to
    memory-mapped files there, trace_prob.partial.npy and trace_correct.partial.npy of `epochs` rows, instead of
    being held; a checkpoint then records only how many rows are written.
    """

    def __init__(self, n: int, device: torch.device, resume: dict | None = None, folder: Path | None = None,
                 epochs: int = 0) -> None:
        self.prob = torch.full((n,), float("nan"), device=device)
        self.correct = torch.zeros(n, dtype=torch.bool, device=device)
        self.epochs_prob: list[torch.Tensor] = [] if resume is None or folder else list(resume["prob"])
        self.epochs_correct: list[torch.Tensor] = [] if resume is None or folder else list(resume["correct"])
        self.disk: tuple[np.ndarray, np.ndarray] | None = None
        self.written = 0 if resume is None or not folder else int(resume["written"])
        if folder is not None:
            mode = "r+" if self.written else "w+"
            self.disk = tuple(np.lib.format.open_memmap(folder / f"trace_{name}.partial.npy", mode=mode, dtype=dtype,
                                                        shape=(epochs, n))
                              for name, dtype in (("prob", np.float32), ("correct", np.bool_)))

    def on_batch(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> None:
        """Store the batch's outputs at its rows."""
        self.prob[idx] = torch.softmax(logits, dim=1).gather(1, y[:, None])[:, 0]
        self.correct[idx] = logits.argmax(1) == y

    def on_epoch(self, state: object) -> None:
        """Close the epoch: keep a CPU copy of its outputs (a row of the files on disk, with a folder)."""
        if self.disk is not None:
            for rows, values in zip(self.disk, (self.prob, self.correct)):
                rows[self.written] = values.cpu().numpy()
                rows.flush()  # before any checkpoint counts the row as written
            self.written += 1
        else:
            self.epochs_prob.append(self.prob.cpu().clone())
            self.epochs_correct.append(self.correct.cpu().clone())
        self.prob.fill_(float("nan"))

    def state_dict(self) -> dict:
        """The epochs recorded so far (or, on disk, their number), for a checkpoint."""
        if self.disk is not None:
            return {"written": self.written}
        return {"prob": self.epochs_prob, "correct": self.epochs_correct}

    def trace(self) -> Trace:
        """The recorded trace, (E, N) arrays (memory-mapped with a folder)."""
        if self.disk is not None:
            return Trace(self.disk[0][: self.written], self.disk[1][: self.written])
        return Trace(torch.stack(self.epochs_prob).numpy(), torch.stack(self.epochs_correct).numpy())


def run_query_training(ctx: Context) -> Outcome:
    """Train one query model on the full training split; keep its weights, trace and best-epoch recalls."""
    config, dataset = ctx.task.config, ctx.dataset()
    seed = derive(config["seed"], "query", config["init"])
    checkpoint = Checkpointing(ctx.checkpoint_path, ctx.runtime.checkpoint_every)
    _, outcome = train_query_model(
        dataset, ctx.make_model(dataset.num_classes, dataset.input_shape), ctx.normalization(dataset),
        TrainConfig.from_stored(config["train"]), seed, ctx.runtime.torch_device, checkpoint, ctx.runtime.progress,
        trace_folder=ctx.path if isinstance(dataset.train.x, StoredImages) else None,
    )
    return outcome


def train_query_model(
    dataset: Dataset, make_model: Callable[[], nn.Module], normalization: Normalization | None, cfg: TrainConfig,
    seed: int, device: torch.device, checkpoint: Checkpointing | None = None, progress: bool = False,
    trace_folder: Path | None = None,
) -> tuple[nn.Module, Outcome]:
    """A query model trained from seed `seed` (resuming from `checkpoint` if it holds one), and what it keeps;
    the trace is written to memory-mapped files in `trace_folder` when given (streamed data)."""
    torch.manual_seed(seed)
    model = make_model()
    resume = None if checkpoint is None else checkpoint.load()
    recorder = TraceRecorder(len(dataset.train), device, None if resume is None else resume["extra"], trace_folder,
                             cfg.epochs)
    if checkpoint is not None:
        checkpoint.extra = recorder.state_dict
    result = train(
        model, dataset.train, cfg, seed=seed, device=device, normalization=normalization, val=dataset.val,
        callbacks=[recorder.on_epoch], on_batch=[recorder.on_batch], progress=progress,
        checkpoint=checkpoint, resume=resume,
    )
    best = result.best
    trace = recorder.trace()
    arrays = {"val_class_recall": np.asarray(best["val_class_recall"], dtype=np.float64),
              "trace_prob": trace.prob, "trace_correct": trace.correct}
    if best["val_group_accuracy"] is not None:
        arrays["val_group_accuracy"] = np.asarray(best["val_group_accuracy"], dtype=np.float64)
    metrics = {"epochs": cfg.epochs, "seed": seed, "best_epoch": result.best_epoch,
               "best_val_accuracy": result.best_val_accuracy, "resumed_from_epochs": result.resumed_from_epochs,
               "train_seconds": float(sum(r["seconds"] for r in result.history)),
               "weights_sha256": weights_digest(model)}
    return model, Outcome(metrics, arrays, {MODEL_FILE: weights_file(model)}, result.history)


def query_model(run: Run, dataset: Dataset, device: torch.device, options: dict) -> QueryModel:
    """A finished query training as scorers see it (the weights are loaded on first use)."""
    config = run.config

    def load() -> nn.Module:
        model = build_model(config["model"], dataset.num_classes, dataset.input_shape)
        model.load_state_dict(torch.load(run.file(MODEL_FILE), map_location="cpu", weights_only=True))
        return model

    trace = Trace(run.array("trace_prob"), run.array("trace_correct"))
    return QueryModel(dataset.train, dataset.num_classes, normalization(config.get("weights"), dataset.normalization),
                      device, run.metrics["seed"], config["train"]["epochs"], options, trace, load)


def untrained_query_model(ctx: Context, dataset: Dataset) -> QueryModel:
    """What a scorer of 0 query epochs (`random`) sees: the first query model's seed and init, no trace; nothing
    trains or is stored for it."""
    seed = derive(ctx.task.config["seed"], "query", 0)
    make_model = ctx.make_model(dataset.num_classes, dataset.input_shape)

    def load() -> nn.Module:
        torch.manual_seed(seed)
        return make_model()

    n = len(dataset.train)
    trace = Trace(np.zeros((0, n), np.float32), np.zeros((0, n), bool))
    return QueryModel(dataset.train, dataset.num_classes, ctx.normalization(dataset), ctx.runtime.torch_device, seed,
                      0, ctx.task.config["options"], trace, load)


def run_scores(ctx: Context) -> Outcome:
    """A scorer's scores averaged over its query trainings; refuses non-finite scores."""
    config, dataset = ctx.task.config, ctx.dataset()
    name = config["scorer"]
    if "external" in config:
        raise ValueError(f"the scores {name!r} came from a file that is not in the store: pass --scores {name}=FILE again")
    queries = [query_model(ctx.input(dep), dataset, ctx.runtime.torch_device, config["options"])
               for dep in ctx.task.deps] or [untrained_query_model(ctx, dataset)]
    per_model = [np.asarray(SCORERS[name].score(query), dtype=np.float64) for query in queries]
    scores = np.mean(per_model, axis=0)
    if scores.shape != (len(dataset.train),) or not np.isfinite(scores).all():
        raise ValueError(f"scorer {name!r} gave {scores.shape} scores with non-finite values for "
                         f"{len(dataset.train)} training samples: its scores are not usable")
    return Outcome({"scorer": name, "inits": len(per_model)}, {"scores": scores, "ids": dataset.train.ids})


def run_recalls(ctx: Context) -> Outcome:
    """DRoP's validation recalls: per-class (and per-group) validation accuracy averaged over query trainings."""
    runs = [ctx.input(dep) for dep in ctx.task.deps]
    arrays = {"class_recalls": np.mean([r.array("val_class_recall") for r in runs], axis=0)}
    if all("val_group_accuracy" in r.array_names() for r in runs):
        arrays["group_recalls"] = np.mean([r.array("val_group_accuracy") for r in runs], axis=0)
    return Outcome({"class_recalls": arrays["class_recalls"].tolist(), "inits": len(runs)}, arrays)
