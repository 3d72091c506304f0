"""The task-kind registry: every kind's input fields name exactly the tasks its builder makes it consume."""

from __future__ import annotations

import pytest

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
    return closure([*finals, final_task(SETUP, parse_protocol("subset"), 0.5, 0, subset=subset)])


def test_every_kind_is_built_and_its_inputs_are_its_dependencies() -> None:
    tasks = _graph()
    assert {task.kind for task in tasks} == set(KINDS)  # the graph holds every registered kind
    for task in tasks:
        kind = KINDS[task.kind]
        named = []
        for field, input_kind in kind.inputs.items():
            value = task.config.get(field)
            keys = value if isinstance(value, list) else [value] if value else []
            named += [(key, input_kind) for key in keys]
        assert sorted(named) == sorted((dep.key, dep.kind) for dep in task.deps), task.kind
        assert all(field in task.config for field in kind.shown), task.kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_a_runner_and_a_cost(kind: str) -> None:
    tasks = [task for task in _graph() if task.kind == kind]
    assert callable(KINDS[kind].run) and tasks
    for task in tasks:
        cost = full_data_epochs(task)
        trains = kind in ("query", "final")
        assert cost > 0 if trains else cost == 0
        if kind == "final":
            assert cost == pytest.approx(task.config["train"]["epochs"] * task.config["density"])
