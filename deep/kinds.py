"""Task kinds: the one registry of what builds, runs, feeds and costs each kind of task.

`KINDS[name]` is a `Kind`: the builder of its tasks (in deep.sweep or deep.inputs), its runner (a function
Context -> Outcome), the config fields in which it names the tasks it consumes (what `check` follows), the fields
`sweep --dry-run` shows of it and its training cost in full-data-epoch equivalents. The run store keeps each kind in
a folder of that name; deep.work runs a task with its kind's runner.

Adding a kind is one module (its builder and runner; it registers nothing and never imports this module) plus one
entry below. Only modules above the runners import this one (deep.work, deep.check, deep.dry_run, deep.export), so
the registry never sits in an import circle (tests/test_imports.py checks every module of toy/ and deep/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from deep import evaluation, experiment, inputs, query, selection_task, sweep
from deep.tasks import Context, Outcome, Task


def no_training(config: dict) -> float:
    """The cost of a task that trains nothing (it reads its inputs)."""
    return 0.0


def query_cost(config: dict) -> float:
    """A query training's cost: its epochs on the full data."""
    return float(config["train"]["epochs"])


@dataclass(frozen=True)
class Kind:
    """One kind of task: how its tasks are built, run, connected to their inputs and costed."""

    build: Callable[..., Task]  # makes a task of this kind (its config and the tasks it consumes)
    run: Callable[[Context], Outcome]  # computes a task's result from its finished inputs
    inputs: dict[str, str] = field(default_factory=dict)  # config field naming consumed tasks -> their kind
    shown: tuple[str, ...] = ()  # config fields `sweep --dry-run` lists for each task of this kind
    cost: Callable[[dict], float] = no_training  # training in full-data-epoch equivalents, from the config


KINDS: dict[str, Kind] = {
    "query": Kind(sweep.query_training, query.run_query_training, shown=("seed", "init"), cost=query_cost),
    "scores": Kind(sweep.scores_task, query.run_scores, {"queries": "query"}, shown=("scorer",)),
    "recalls": Kind(sweep.recalls_task, query.run_recalls, {"queries": "query"}),
    "final": Kind(sweep.final_task, experiment.run_final,
                  {"scores": "scores", "recalls": "recalls", "subset": "subset", "selection": "selection"},
                  shown=("protocol", "density", "seed"), cost=experiment.final_cost),
    "subset": Kind(sweep.subset_task, inputs.run_subset),
    "evaluation": Kind(evaluation.evaluation_task, evaluation.run_evaluation, {"final": "final"},
                       shown=("final", "dataset")),
    "selection": Kind(sweep.selection_task, selection_task.run_selection, {"scores": "scores", "recalls": "recalls"},
                      shown=("protocol", "density", "seed"), cost=sweep.selection_cost),
}


def full_data_epochs(task: Task) -> float:
    """A task's training in full-data-epoch equivalents (what its kind's cost says)."""
    return KINDS[task.kind].cost(task.config)
