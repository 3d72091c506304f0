"""The one execution path: the loop every command and launcher works through.

`train`, `sweep` and every launcher call `work`, which runs each task through `execute` once its inputs are
finished, with the runner its kind names in deep.kinds.KINDS; "finished" is a lookup of the task's own directory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable

from tqdm.auto import tqdm

from deep import provenance
from deep.kinds import KINDS
from deep.runs import CLAIM, CorruptRunError, RunStore, claim_wait_message
from deep.tasks import Context, Runtime, Task, closure

POLL_S = 1.0  # how often a worker waiting on another worker's task looks at the store again


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
            started = provenance.now()
            outcome = KINDS[task.kind].run(Context(task, store, runtime))
            provenance.write(store.path(task.config), started, str(runtime.torch_device))
            store.finish(task.config, outcome.metrics, outcome.arrays, outcome.files, outcome.history)
    except BaseException:
        store.remove_if_empty(task.config)
        raise
    return "done"


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
