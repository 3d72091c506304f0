"""A sweep: the grid of (protocol, density, seed) final runs of one setup, worked through by any number of
workers that share nothing but the run store (claims keep them from running one config twice)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deep.experiment import Setup, check, final_config, queries_for, run_final
from deep.prune import Protocol
from deep.query import POLL_S, QUERY_DIR, query_config, query_train_config
from deep.runs import DONE, RunStore, as_stored, read_json

DEFAULT_PROTOCOLS = ["full", "random", "el2n", "random+el2nq", "el2n+drop", "random+drop"]
DEFAULT_DENSITIES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@dataclass(frozen=True)
class Task:
    """One final run of the grid."""

    protocol: Protocol
    density: float
    seed: int


def plan(setup: Setup, protocols: list[str], densities: list[float], seeds: list[int]) -> list[Task]:
    """Every final run of the grid, validated before anything trains (`full` once per seed)."""
    parsed = check(setup, protocols, densities)
    return [
        Task(p, d, s)
        for s in seeds
        for p in parsed
        for d in ([1.0] if p.kind == "full" else densities)
    ]


def _needs_queries(protocol: Protocol) -> bool:
    return protocol.scorer is not None or protocol.needs_recalls


def _rotate(items: list, k: int) -> list:
    k = k % len(items) if items else 0
    return items[k:] + items[:k]


def work(setup: Setup, root: str, tasks: list[Task], worker: int = 0, after_each: Callable[[], None] = lambda: None) -> None:
    """Run the tasks until every one is finished, by this worker or by another one sharing the store.

    Runs that need no query stage come first, so that workers have work while the query stages train; worker k
    starts k runs further along and takes the seeds in its own order, so that workers spread out. A run that
    another live worker owns is looked at again after a pause (and taken over if its owner has died).
    `after_each` is called whenever a task is found or made finished.
    """
    seeds = list(dict.fromkeys(t.seed for t in tasks))
    # Every worker asks for the query stages of all the seed's protocols, so that all ask for the same configs.
    protocols = {s: list(dict.fromkeys(t.protocol for t in tasks if t.seed == s)) for s in seeds}
    order = _rotate([t for t in tasks if not _needs_queries(t.protocol)], worker) + [
        t for s in _rotate(seeds, worker) for t in tasks if t.seed == s and _needs_queries(t.protocol)
    ]
    queries: dict[int, dict] = {}
    while order:
        waiting = []
        for task in order:
            if _needs_queries(task.protocol) and task.seed not in queries:
                queries[task.seed] = queries_for(setup, root, protocols[task.seed], task.seed)
            path = run_final(setup, root, task.protocol, task.density, task.seed, queries.get(task.seed, {}))
            if (path / DONE).exists():
                after_each()
            else:
                waiting.append(task)
        if waiting:
            time.sleep(POLL_S)
        order = waiting


def _query_matches(setup: Setup, root: str, seed: int, scorer: str | None, key: str) -> bool:
    """Whether the stored query stage `key` was made with this setup's query settings for `scorer` (None: recalls)."""
    path = Path(root) / QUERY_DIR / key / "config.json"
    if not path.exists():
        return False
    stored = read_json(path)
    cfg = query_train_config(setup.train, setup.epochs_for(scorer))
    wanted = query_config(setup.dataset_key(), setup.model, seed, setup.query_inits, cfg, [])
    return {**stored, "scorers": []} == wanted and (scorer is None or scorer in stored["scorers"])


def _is_run_of(setup: Setup, root: str, task: Task, config: dict) -> bool:
    """Whether a stored final config is the task's: equal up to the query stages' hashes, which must name
    query stages made with this setup's query settings (the hashes are unknown until those stages have run)."""
    refs = config.get("query") or {}
    return config == as_stored(final_config(setup, task.protocol, task.density, task.seed, refs)) and all(
        _query_matches(setup, root, task.seed, task.protocol.scorer if kind == "scores" else None, key)
        for kind, key in refs.items() if key is not None
    )


def finished(setup: Setup, root: str, tasks: list[Task]) -> list[Task]:
    """The tasks that have a finished run in the store, found from the stored configs."""
    by_key = {}
    for task in tasks:
        c = final_config(setup, task.protocol, task.density, task.seed, {})
        by_key[(c["protocol"], c["density"], c["seed"])] = task
    found = set()
    for run in RunStore(root).runs():
        task = by_key.get((run.config.get("protocol"), run.config.get("density"), run.config.get("seed")))
        if task is not None and _is_run_of(setup, root, task, run.config):
            found.add(task)
    return [t for t in tasks if t in found]
