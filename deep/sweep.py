"""A sweep: the grid of (protocol, density, seed) final runs of one setup, resumable through the run store."""

from __future__ import annotations

from dataclasses import dataclass

from tqdm.auto import tqdm

from deep.experiment import Setup, check, queries_for, run_final
from deep.prune import Protocol

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
        for d in ([1.0] if p.counts == "all" else densities)
    ]


def run_tasks(setup: Setup, root: str, tasks: list[Task], progress: bool = True) -> None:
    """Run the tasks in order in this process (query stages once per seed), skipping finished runs."""
    bar = tqdm(total=len(tasks), desc="sweep", unit="run", disable=not progress)
    by_seed: dict[int, list[Task]] = {}
    for task in tasks:
        by_seed.setdefault(task.seed, []).append(task)
    for seed, group in by_seed.items():
        bar.set_postfix_str(f"seed {seed}: query stage")
        queries = queries_for(setup, root, list(dict.fromkeys(t.protocol for t in group)), seed)
        for task in group:
            bar.set_postfix_str(f"seed {seed} {task.protocol.name} d={task.density:g}")
            run_final(setup, root, task.protocol, task.density, seed, queries)
            bar.update()
    bar.close()
