"""The task-kind registry: each kind of a sweep is built by its builder, names exactly the tasks it consumes in its
input fields, and has a runner and a cost."""

from __future__ import annotations

import pytest

from deep.evaluation import evaluation_task
from deep.kinds import KINDS, full_data_epochs
from deep.prune import parse_protocol
from deep.schedule import TrainConfig
from deep.sweep import Setup, final_task, plan, subset_task
from deep.tasks import Task, closure

SETUP = Setup("digits", "mlp", TrainConfig(epochs=4, batch_size=32, lr=0.1, augment=False), query_inits=2)


def _graph() -> list[Task]:
    finals = plan(SETUP, ["full", "random", "el2n", "random+el2nq", "el2n+drop", "random+drop"], [0.5], [0],
                  read_data=False)
    subset = subset_task(SETUP, "sha256:0", 10)
    return closure([*finals, final_task(SETUP, parse_protocol("subset"), 0.5, 0, subset=subset),
                    evaluation_task(finals[0])])


def test_every_kind_of_a_sweep_names_its_dependencies_in_its_input_fields() -> None:
    tasks = _graph()
    # The graph holds every kind of a sweep (kinds other modules add may stand outside it), each registered.
    assert {"query", "scores", "recalls", "final", "subset"} <= {task.kind for task in tasks} <= set(KINDS)
    for task in tasks:
        kind = KINDS[task.kind]
        named = []
        for field, input_kind in kind.inputs.items():
            value = task.config.get(field)
            keys = value if isinstance(value, list) else [value] if value else []
            named += [(key, input_kind) for key in keys]
        assert sorted(named) == sorted((dep.key, dep.kind) for dep in task.deps), task.kind
        assert all(field in task.config for field in kind.shown), task.kind


@pytest.mark.parametrize("kind", ["query", "scores", "recalls", "final", "subset"])
def test_every_kind_of_a_sweep_has_a_runner_and_a_cost(kind: str) -> None:
    tasks = [task for task in _graph() if task.kind == kind]
    assert callable(KINDS[kind].run) and tasks
    for task in tasks:
        cost = full_data_epochs(task)
        trains = kind in ("query", "final")
        assert cost > 0 if trains else cost == 0
        if kind == "final":
            assert cost == pytest.approx(task.config["train"]["epochs"] * task.config["density"])


def test_every_sweep_kind_builds_tasks_of_its_kind() -> None:
    arguments = {  # each builder's own arguments
        "query": (SETUP, 2, 0, 0), "scores": (SETUP, "el2n", 0), "recalls": (SETUP, "el2n", 0),
        "final": (SETUP, parse_protocol("random+drop"), 0.5, 0), "subset": (SETUP, "sha256:0", 10),
    }
    assert set(arguments) <= set(KINDS)
    for kind, args in arguments.items():
        assert KINDS[kind].build(*args).kind == kind
