"""`python -m deep check RUNS`: every problem of a run store, one line each, and with `fix` the repairs that are safe.

A store can be damaged from outside: a file deleted, truncated or edited, a worker killed with -9 mid-write. The
check reads every task the way the commands read it and lists
- the format file: missing or not valid JSON; a store of another format or layout (then nothing else is checked);
- finished tasks whose config.json, metrics.json or checksums.json is missing or broken, whose config's hash
  disagrees with the directory or kind folder, or whose checksummed arrays and files are missing or damaged:
  the fix removes `done`, so that the next sweep recomputes the task;
- stale claims (unreadable, of a dead worker or of a live process that is not a worker, or without a heartbeat)
  and temporary files of writers that died: the fix deletes them; claims dated in the future (clock skew between
  nodes) are reported, and left to the sweeps, which take them over once they stay unchanged for the claim's TTL;
- finished tasks whose recorded inputs (a final run's scores, recalls or subset, a scores or recalls task's query
  trainings) are not finished: the command that made them recomputes the inputs when run again;
- files where a task folder belongs.
Tasks a live worker owns are left alone: what they hold is work in progress.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from deep.kinds import KINDS
from deep.runs import (
    CLAIM, CLAIM_TTL_S, DONE, FORMAT, FORMAT_FILE, CorruptRunError, Run, RunStore, StoreFormatError,
    claim_owner, claim_verdict, dead_temp_files, read_finished, task_folders, write_json,
)
STATES = ("finished", "damaged", "unfinished", "in progress")  # of a task folder, as the summary line counts them


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a store: the path at fault, what is wrong (naming it), and what to do about it."""

    path: Path
    what: str
    todo: str = ""  # what to do; for a repairable problem, what the repair does (imperative); "" if `what` says it
    repair: Callable[[], None] | None = None  # None: only the user can fix it
    repaired: str = ""  # what the repair did (past tense)

    def line(self, fixed: bool) -> str:
        """The problem in one line, with what to do, or what was done about it."""
        if fixed:
            return f"{self.what}: fixed, {self.repaired}"
        todo = f"--fix will {self.todo}" if self.repair else self.todo
        return f"{self.what}: {todo}" if todo else self.what


def _invalidate(task: Path, what: str) -> Problem:
    return Problem(task, what, "mark the task unfinished, so that the next sweep recomputes it",
                   lambda: (task / DONE).unlink(missing_ok=True), "marked unfinished: the next sweep recomputes it")


def _delete(file: Path, what: str) -> Problem:
    return Problem(file, f"{file}: {what}", "delete it", lambda: file.unlink(missing_ok=True), "deleted")


def _write_format(root: Path, what: str) -> Problem:
    return Problem(root / FORMAT_FILE, what, f'write {{"format": {FORMAT}}} into it',
                   lambda: write_json(root / FORMAT_FILE, {"format": FORMAT}), "written again")


@dataclass
class Check:
    """What a check found: every problem (and whether it was fixed), and how many tasks are in which state."""

    root: Path
    problems: list[tuple[Problem, bool]] = field(default_factory=list)  # (problem, fixed)
    tasks: Counter[str] = field(default_factory=Counter)  # finished, damaged, unfinished, in progress

    @property
    def remaining(self) -> int:
        """Problems left in the store."""
        return sum(not fixed for _, fixed in self.problems)

    def lines(self) -> list[str]:
        """One line per problem, then a summary line."""
        found, fixed = len(self.problems), len(self.problems) - self.remaining
        states = ", ".join(f"{self.tasks[state]} {state}" for state in STATES if self.tasks[state])
        summary = f"{self.root}: {sum(self.tasks.values())} tasks" + (f" ({states})" if states else "") + ": "
        summary += (f"{found} problems" + (f", {fixed} fixed" if fixed else "")) if found else "no problems"
        return [problem.line(done) for problem, done in self.problems] + [summary]


def _format_problem(root: Path) -> tuple[Problem | None, bool]:
    """The problem of the store's format file or layout, if any, and whether its tasks can be checked."""
    try:
        RunStore(root)
    except StoreFormatError as error:  # another format, or a file where a kind folder belongs: the message says what to do
        return Problem(root, str(error)), False
    except CorruptRunError as error:  # store.json is unreadable; the tasks' own hashes still say whether they are sound
        return _write_format(root, str(error.__cause__ or error)), True
    if not (root / FORMAT_FILE).is_file():
        return _write_format(root, f"{root / FORMAT_FILE} is missing"), True
    return None, True


def _task_problems(path: Path, claim_ttl: float) -> tuple[str, Run | None, list[Problem]]:
    """The state of one task directory (one of STATES), the task if it is finished and sound, and its problems."""
    claim = path / CLAIM
    try:
        stale, why = claim_verdict(claim, claim_ttl)
        if not stale:  # a live worker owns it: what it holds is work in progress; a skewed date is reported
            skewed = Problem(claim, f"{claim}: claim of {claim_owner(claim)} {why}",
                             "make the clocks of the nodes that share this store agree (e.g. NTP)")
            return "in progress", None, [skewed] if why else []
        problems = [_delete(claim, f"stale claim ({why})")]
    except FileNotFoundError:
        problems = []
    problems += [_delete(tmp, "temporary file of a writer that died") for tmp in dead_temp_files(path)]
    try:
        run = read_finished(path)
    except CorruptRunError as error:
        return "damaged", None, [*problems, _invalidate(path, str(error))]
    return ("unfinished" if run is None else "finished"), run, problems


def _input_problems(run: Run) -> list[Problem]:
    """A finished task's recorded inputs that are not finished."""
    root = run.path.parent.parent
    problems = []
    for name, kind in KINDS[run.path.parent.name].inputs.items():
        value = run.config.get(name)
        for key in value if isinstance(value, list) else [value] if value else []:
            if not (root / kind / key / DONE).exists():
                problems.append(Problem(
                    run.path, f"{run.path} consumed {root / kind / key}, which is not finished",
                    "run the command that made it again: it recomputes missing inputs (and stores --kept and "
                    "--scores files again)",
                ))
    return problems


def check_store(root: Path | str, fix: bool = False, progress: bool = False, claim_ttl: float = CLAIM_TTL_S) -> Check:
    """Every problem of the run store at `root`; with `fix`, the repairs that are safe are made (see the module)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"run folder {root} does not exist: pass the folder a sweep wrote its runs to")
    if not root.is_dir():
        raise ValueError(f"{root} is a file, not a run folder: pass the folder a sweep wrote its runs to")
    result = Check(root)

    def found(problem: Problem) -> None:
        repair = fix and problem.repair is not None
        if repair:
            problem.repair()
        result.problems.append((problem, repair))

    problem, readable = _format_problem(root)
    if problem is not None and not any((root / kind).exists() for kind in KINDS):
        raise ValueError(f"{root} holds no run store ({problem.what}): pass the folder a sweep wrote its runs to")
    if problem is not None:
        found(problem)
    if not readable:
        return result
    for tmp in dead_temp_files(root):
        found(_delete(tmp, "temporary file of a writer that died"))
    for kind in KINDS:
        for entry in sorted((root / kind).iterdir()) if (root / kind).is_dir() else []:
            if not entry.is_dir() and not entry.name.startswith("."):
                found(Problem(entry, f"{entry} is a file where a task folder belongs: move it out of the run store"))
    paths = [path for kind in KINDS for path in task_folders(root / kind)]
    sound = []
    for path in tqdm(paths, desc="check", unit="task", disable=not progress):
        state, run, problems = _task_problems(path, claim_ttl)
        result.tasks["unfinished" if state == "damaged" and fix else state] += 1
        sound += [run] if run is not None else []
        for problem in problems:
            found(problem)
    # Inputs are looked at once every task has been checked (and repaired), so that an input just marked
    # unfinished shows as the missing input it now is.
    for run in sound:
        for problem in _input_problems(run):
            found(problem)
    return result
