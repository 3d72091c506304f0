"""Input tasks made from a user's files: `--scores NAME=FILE` (a scores task) and `train --kept FILE` (a subset task).

They are built from the files before anything runs and stored with `write_inputs`; from then on they are tasks like
any other, which final runs consume and `check` verifies. Their runner only explains what to do when one is missing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from deep import provenance
from deep.prune import FULL, parse_protocol
from deep.runs import RunStore
from deep.sweep import Setup, check, check_score_name, external_scores_task, final_task, subset_task
from deep.tasks import Context, Outcome, Task, dataset
from deep.vectors import read_rows, read_scores
from toy.commandline import unique_keys


@dataclass(frozen=True)
class Input:
    """An input task and what the store keeps of it."""

    task: Task
    metrics: dict
    arrays: dict[str, np.ndarray]


def values_sha256(values: np.ndarray) -> str:
    """The content name of a user's array (scores, rows), as input task configs record it."""
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


def with_score_files(setup: Setup, specs: list[str], download: bool = False) -> tuple[Setup, list[Input]]:
    """The setup with the user's `--scores NAME=FILE` files named in it, and their input tasks."""
    if not specs:
        return setup, []
    pairs = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not (sep and name and path):
            raise ValueError(f"--scores takes NAME=FILE, e.g. myscore=scores.npy, got {spec!r}")
        check_score_name(name)
        pairs.append((name, path))
    files = unique_keys("--scores", pairs)
    ids = dataset(setup.dataset_key(), download).train.ids
    given = {name: read_scores(path, ids, f"--scores {name}") for name, path in files.items()}
    setup = replace(setup, external_scores={name: values_sha256(values) for name, values in given.items()})
    inputs = [Input(external_scores_task(setup, name), {"scorer": name, "source": "file"}, {"scores": values, "ids": ids})
              for name, values in given.items()]
    return setup, inputs


def kept_task(setup: Setup, file: str, seed: int, download: bool = False) -> tuple[Task, Input]:
    """The final run of `train --kept FILE` and its subset input task."""
    check(setup, [FULL], [1.0], [seed], download)
    ids = dataset(setup.dataset_key(), download).train.ids
    rows = read_rows(file, ids, "--kept")
    subset = subset_task(setup, values_sha256(rows), int(rows.size))
    final = final_task(setup, parse_protocol("subset"), rows.size / len(ids), seed, subset=subset)
    return final, Input(subset, {"count": int(rows.size)}, {"rows": rows, "ids": ids[rows]})


def write_inputs(out: str, inputs: list[Input]) -> None:
    """Store the input tasks that are not stored yet: from then on they run like any other."""
    store = RunStore(out)
    for given in inputs:
        if not store.done(given.task.config):
            provenance.write(store.path(given.task.config), provenance.now(), None)
            store.finish(given.task.config, given.metrics, given.arrays)


def run_subset(ctx: Context) -> Outcome:
    """A subset task holds rows a user gave: it is written by the command line, never computed."""
    raise ValueError("the training rows of this run came from a file that is not in the store: pass --kept FILE again")
