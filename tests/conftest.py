"""Shared fixtures: the image cache in a temporary folder, counting the trainings a command starts (here, or in
worker processes) and killing a process at a chosen checkpoint."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import settings

# CI draws the same examples every run (a pass stays a pass, a failure reproduces); elsewhere hypothesis explores new
# ones each run, which is how it finds bugs.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

import deep.experiment
import deep.query

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One torch thread per test worker (pytest -n N), in this process and every process a test starts: threads of
    # workers sharing the cores wait for each other (a tiny MLP step went from 6 ms to 155 ms).
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# Sweeps run in this process unless a test names a launcher (or clears this): the tests count trainings here.
os.environ.setdefault("DROP_LAUNCHER", "local")

# Loaded by every Python process started while the test's PYTHONPATH names its folder. TRAINING_LOG: count the
# trainings that final runs and query tasks start, in processes the test cannot monkeypatch. KILL_AT=save:N kills
# the process with SIGKILL right after its N-th checkpoint is written; KILL_AT=write:N kills it half-way through
# writing the N-th (a partial temporary file is left, the checkpoint itself is not replaced).
SITECUSTOMIZE = '''
import os

if os.environ.get("TRAINING_LOG"):
    import deep.experiment
    import deep.query

    def _counting(kind, real):
        def wrapped(*args, **kwargs):
            with open(os.environ["TRAINING_LOG"], "a") as log:
                log.write(f"{kind} {os.getpid()}\\n")
            return real(*args, **kwargs)
        return wrapped

    deep.experiment.train = _counting("final", deep.experiment.train)
    deep.query.train = _counting("query", deep.query.train)

if os.environ.get("KILL_AT"):
    import signal
    import deep.checkpoint

    _mode, _n = os.environ["KILL_AT"].split(":")
    _count = [0]
    _real_write = deep.checkpoint.write_atomic

    def _write(path, data):
        _count[0] += 1
        if _mode == "write" and _count[0] == int(_n):
            with open(path.with_name(f".{path.name}.killed.tmp"), "wb") as f:
                f.write(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        _real_write(path, data)
        if _mode == "save" and _count[0] == int(_n):
            os.kill(os.getpid(), signal.SIGKILL)

    deep.checkpoint.write_atomic = _write
'''


@pytest.fixture(autouse=True)
def image_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point $DROP_CACHE (deep.data.image_cache) at this test session's temporary space, never at ~/.cache."""
    monkeypatch.setenv("DROP_CACHE", str(tmp_path_factory.getbasetemp() / "image_cache"))


@pytest.fixture
def hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the SITECUSTOMIZE hook on the PYTHONPATH of every process the test starts; returns the training log."""
    folder = tmp_path / "hook"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]))
    log = tmp_path / "trainings.log"
    monkeypatch.setenv("TRAINING_LOG", str(log))
    return log


@pytest.fixture
def worker_trainings(hooks: Path):
    """A function that returns how many final and query trainings the started processes began so far."""
    return lambda: Counter(line.split()[0] for line in hooks.read_text().splitlines()) if hooks.exists() else Counter()


def count_trainings(patch: pytest.MonkeyPatch) -> Counter:
    """Count, in this process, the trainings that final runs and query tasks start."""
    counts: Counter = Counter()
    for module, kind in [(deep.experiment, "final"), (deep.query, "query")]:
        patch.setattr(module, "train", lambda *a, _real=module.train, _kind=kind, **k: counts.update([_kind]) or _real(*a, **k))
    return counts


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """The trainings started in this process by final runs and query tasks, counted as they start."""
    return count_trainings(monkeypatch)


# A sweep with every kind of task (query, scores, recalls, final) that takes seconds on a CPU, in one process.
TINY_SWEEP = ["--dataset", "digits", "--model", "mlp", "--epochs", "2", "--query-inits", "1", "--densities", "0.5",
              "--seeds", "1", "--no-progress", "--protocols", "random", "el2n+drop", "--launcher", "local"]


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run store of TINY_SWEEP, made once per session: tests copy it before changing anything."""
    from deep.cli import main

    root = tmp_path_factory.mktemp("tiny") / "runs"
    assert main(["sweep", *TINY_SWEEP, "--out", str(root)]) == 0
    return root
