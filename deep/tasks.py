"""Tasks: a config (its own settings plus the names of the tasks it consumes) and those tasks, and what a runner gets
(`Context`) and gives back (`Outcome`).

The kinds of task and their runners are listed in deep.kinds; deep.work runs them. This module imports neither, so
that every runner's module can import it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import torch

from deep.data import load_dataset
from deep.data.base import Dataset
from deep.models import build_model
from deep.models.pretrained import build_kwargs, normalization
from deep.runs import CHECKPOINT, Run, RunStore, as_stored, canonical_json, config_hash
from deep.train import resolve_device


@dataclass(frozen=True, eq=False)
class Task:
    """One node of the experiment graph: its config (what its name is the hash of) and the tasks it consumes."""

    config: dict
    deps: tuple[Task, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", as_stored(self.config))

    @property
    def kind(self) -> str:
        """The task's kind: a key of deep.kinds.KINDS."""
        return self.config["kind"]

    @cached_property
    def key(self) -> str:
        """The task's name: the hash of its config."""
        return config_hash(self.config)

    def dep(self, kind: str) -> Task | None:
        """The consumed task of this kind (a final run consumes at most one scores, recalls and subset task)."""
        return next((d for d in self.deps if d.kind == kind), None)


@dataclass(frozen=True)
class Runtime:
    """How to run tasks, none of which changes their results: device, downloads, progress, checkpoints."""

    device: str | None = None  # None: CUDA when available, else CPU
    download: bool = False
    progress: bool = False
    checkpoint_every: int | None = None  # epochs; None: one once 10 minutes have passed since the last
    pretrained_file: str | None = None  # the file of --pretrained PATH (configs record its sha256)
    keep_weights: bool = False  # final runs store their model (model.pt) for `python -m deep evaluate`

    @property
    def torch_device(self) -> torch.device:
        """The device tasks train on."""
        return resolve_device(self.device)


@dataclass
class Outcome:
    """What a runner hands to the store."""

    metrics: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    history: list[dict] | None = None


@lru_cache(maxsize=4)
def _load(key: str, download: bool) -> Dataset:
    spec = json.loads(key)
    return load_dataset(spec["name"], spec["data"], options=spec.get("options"), seed=spec["split_seed"],
                        imbalance=spec["imbalance"], download=download)


def dataset(key: dict, download: bool = False) -> Dataset:
    """The dataset a task's `dataset` config names, loaded once per process."""
    return _load(canonical_json(key), download)


@dataclass
class Context:
    """What a runner gets: its task, the store, the runtime, and its inputs read back."""

    task: Task
    store: RunStore
    runtime: Runtime

    @property
    def path(self) -> Path:
        """The task's directory (checkpoints go here)."""
        return self.store.path(self.task.config)

    @property
    def checkpoint_path(self) -> Path:
        """Where the task's training checkpoint lives while it runs."""
        return self.path / CHECKPOINT

    def input(self, dep: Task) -> Run:
        """A consumed task's stored result."""
        return self.store.read(dep.config)

    def dataset(self) -> Dataset:
        """The task's dataset, loaded once per process."""
        return dataset(self.task.config["dataset"], self.runtime.download)

    def make_model(self, num_classes: int, input_shape: tuple[int, ...]) -> Callable[[], torch.nn.Module]:
        """A factory of the task's model, pretrained weights loaded where its config names some."""
        kwargs = build_kwargs(self.task.config.get("weights"), self.runtime.pretrained_file)
        return lambda: build_model(self.task.config["model"], num_classes, input_shape, **kwargs)

    def normalization(self, data: Dataset) -> tuple | None:
        """The input normalisation the task's model sees (ImageNet's for pretrained weights)."""
        return normalization(self.task.config.get("weights"), data.normalization)


def closure(tasks: Iterable[Task]) -> list[Task]:
    """The tasks and everything they consume, once each (by name), inputs before the tasks that consume them."""
    ordered: dict[str, Task] = {}

    def visit(task: Task) -> None:
        if task.key in ordered:
            return
        for dep in task.deps:
            visit(dep)
        ordered[task.key] = task

    for task in tasks:
        visit(task)
    return list(ordered.values())
