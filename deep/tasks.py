"""The one execution path: tasks, what runs them, and the loop every command and launcher works through.

A task is a config (its own settings plus the names of the tasks it consumes) and those tasks. The kinds:
`query` (one query model trained on the full data: weights, per-epoch trace, validation recalls), `scores` (a
scorer's scores averaged over query models, or read from a user's file), `recalls` (DRoP's validation recalls
averaged over query models), `final` (prune, train from scratch, evaluate) and `subset` (training rows a user
gave; like file scores, written by the command line before anything runs). `train`, `sweep` and every launcher call `work`, which runs
each task through `execute` once its inputs are finished; "finished" is a lookup of the task's own directory.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from deep.data import load_dataset
from deep.data.base import Dataset
from deep.models import build_model
from deep.models.pretrained import build_kwargs, normalization
from deep.runs import (
    CHECKPOINT, CLAIM, CorruptRunError, Run, RunStore, as_stored, canonical_json, claim_wait_message, config_hash,
)
from deep.train import resolve_device

POLL_S = 1.0  # how often a worker waiting on another worker's task looks at the store again


@dataclass(frozen=True, eq=False)
class Task:
    """One node of the experiment graph: its config (what its name is the hash of) and the tasks it consumes."""

    config: dict
    deps: tuple[Task, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", as_stored(self.config))

    @property
    def kind(self) -> str:
        """query, scores, recalls, final or subset."""
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


def _runners() -> dict[str, Callable[[Context], Outcome]]:
    # Imported here: the runners' modules import this one for Task, Context and Outcome.
    from deep.experiment import run_final
    from deep.query import run_query_training, run_recalls, run_scores

    return {"query": run_query_training, "scores": run_scores, "recalls": run_recalls, "final": run_final,
            "subset": run_subset}


def run_subset(ctx: Context) -> Outcome:
    """A subset task holds rows a user gave: it is written by the command line, never computed."""
    raise ValueError("the training rows of this run came from a file that is not in the store: pass --kept FILE again")


def write_input(store: RunStore, task: Task, metrics: dict, arrays: dict[str, np.ndarray]) -> None:
    """Store an input task made from a user's file (scores, rows) unless it is there: it runs like any other."""
    if not store.done(task.config):
        store.finish(task.config, metrics, arrays)




def execute(task: Task, store: RunStore, runtime: Runtime) -> str:
    """Run `task` unless finished or owned by another live worker: returns "done", "busy" or "blocked".

    "blocked": an input is unfinished or corrupt. A corrupt input is marked unfinished, so that it is computed
    again, never used.
    """
    if store.done(task.config):
        return "done"
    for dep in task.deps:
        if not store.done(dep.config):
            return "blocked"
    claim = store.claim(task.config)
    if claim is None:
        return "done" if store.done(task.config) else "busy"
    try:
        with claim:
            for dep in task.deps:
                try:
                    store.read(dep.config).verify()
                except CorruptRunError as error:
                    tqdm.write(f"warning: {error}; computing {dep.kind} task {dep.key} again", file=sys.stderr)
                    store.invalidate(dep.config)
                    return "blocked"
            outcome = _runners()[task.kind](Context(task, store, runtime))
            store.finish(task.config, outcome.metrics, outcome.arrays, outcome.files, outcome.history)
    except BaseException:
        store.remove_if_empty(task.config)
        raise
    return "done"


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


def _depth(task: Task) -> int:
    return 1 + max((_depth(d) for d in task.deps), default=-1)


def _rotate(items: list, k: int) -> list:
    k = k % len(items) if items else 0
    return items[k:] + items[:k]


def work(
    tasks: Iterable[Task], store: RunStore, runtime: Runtime, worker: int = 0,
    on_done: Callable[[Task], None] = lambda task: None,
) -> None:
    """Run the tasks and their inputs until every one is finished, by this worker or by another sharing the store.

    Tasks are taken by depth (query trainings and runs without inputs first, then scores and recalls, then the
    runs that need them), worker k starting k tasks further along each level, so that workers spread out. A task
    another live worker owns, or whose inputs are unfinished, is looked at again after a pause. `on_done` is
    called once per task, when it is found or made finished.
    """
    graph = closure(tasks)
    levels: dict[int, list[Task]] = {}
    for task in graph:
        levels.setdefault(_depth(task), []).append(task)
    pending = [t for depth in sorted(levels) for t in _rotate(levels[depth], worker)]
    by_key = {t.key: t for t in graph}
    announced: set[str] = set()  # tasks whose claim this worker has said it waits on
    while pending:
        waiting, progressed, busy = [], False, []
        for task in pending:
            state = execute(task, store, runtime)
            if state == "done":
                on_done(task)
                progressed = True
            else:
                waiting.append(task)
                busy += [task] if state == "busy" else []
        # Idle, with nothing else to run: say which claims it waits on and for how long at most, once each.
        for task in busy if not progressed else []:
            if task.key not in announced:
                announced.add(task.key)
                tqdm.write(claim_wait_message(store.path(task.config) / CLAIM, store.claim_ttl), file=sys.stderr)
        # An input found corrupt was marked unfinished: put it back in the queue ahead of its consumers.
        back = [by_key[d.key] for t in waiting for d in t.deps if d.key not in {w.key for w in waiting}
                and not store.done(d.config)]
        pending = closure(back + waiting) if back else waiting
        if pending and not progressed:
            time.sleep(POLL_S)
