"""Launchers on digits: worker processes and a submitit job array give the local sweep's runs, each trained
once; a SIGKILLed worker's run is taken over; a failed worker stops the sweep; a corrupt cached score is redone."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import deep.experiment
import deep.query
from deep.cli import main
from deep.launch import WorkerError
from deep.query import QUERY_DIR
from deep.runs import RunStore

FAST = ["--epochs", "4", "--query-inits", "1", "--no-progress"]
SWEEP = ["sweep", "--protocols", "full", "random+drop", "--densities", "0.3", "--seeds", "1", *FAST]

# Loaded by every Python process started while the test's PYTHONPATH names its folder: counts the trainings that
# final runs and query stages start, in worker processes the test cannot monkeypatch.
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
'''


@pytest.fixture
def worker_trainings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A function that returns how many final and query trainings the worker processes started so far."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "trainings.log"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("TRAINING_LOG", str(log))
    return lambda: Counter(line.split()[0] for line in log.read_text().splitlines()) if log.exists() else Counter()


def _count_trainings(patch: pytest.MonkeyPatch) -> Counter:
    """Count, in this process, the trainings that final runs and query stages start."""
    counts: Counter = Counter()
    for module, kind in [(deep.experiment, "final"), (deep.query, "query")]:
        patch.setattr(module, "train", lambda *a, _real=module.train, _kind=kind, **k: counts.update([_kind]) or _real(*a, **k))
    return counts


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter]:
    """The sweep run in this process, and the trainings it started."""
    out = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as patch:
        counts = _count_trainings(patch)
        assert main([*SWEEP, "--out", str(out)]) == 0
    return out, counts


def _runs(out: Path) -> dict[str, np.ndarray]:
    """Every finished run, final and query, by its hash: its kept indices, or its recalls and scores."""
    runs = {run.path.name: run.array("kept") for run in RunStore(out).runs()}
    for run in RunStore(out / QUERY_DIR).runs():
        runs[run.path.name] = np.concatenate([run.array("recalls"), *(run.array(f"scores_{s}") for s in run.config["scorers"])])
    return runs


def _assert_same_runs(out: Path, reference: Path) -> None:
    """Same run hashes, identical kept indices; scores equal up to float32 sums in another thread count."""
    runs, expected = _runs(out), _runs(reference)
    assert sorted(runs) == sorted(expected)
    for key, value in expected.items():
        if value.dtype.kind == "i":
            np.testing.assert_array_equal(runs[key], value)
        else:
            np.testing.assert_allclose(runs[key], value, rtol=1e-6)


@pytest.mark.parametrize("launcher", [
    ["--launcher", "processes", "--workers", "2"],
    ["--launcher", "submitit", "--submitit-cluster", "local", "--workers", "2", "--gpus-per-task", "0",
     "--cpus-per-task", "1", "--time", "5"],
], ids=["processes", "submitit"])
def test_parallel_sweep_equals_local_and_trains_each_run_once(
    tmp_path: Path, local_sweep: tuple[Path, Counter], worker_trainings, launcher: list[str]
) -> None:
    reference, local_counts = local_sweep
    out = tmp_path / "runs"
    assert main([*SWEEP, *launcher, "--out", str(out)]) == 0
    _assert_same_runs(out, reference)
    assert worker_trainings() == local_counts == Counter(final=2, query=1)  # the recall query stage, once


def _claims(out: Path) -> list[Path]:
    return [p for p in out.glob("*/claim")] + [p for p in out.glob(f"{QUERY_DIR}/*/claim")]


def _owner(claim: Path, timeout: float = 30.0) -> int:
    """The pid in a claim file, once the file has been written in full."""
    start = time.time()
    while len(fields := claim.read_text().split()) < 3:
        assert time.time() - start < timeout, f"claim {claim} was never completed"
        time.sleep(0.01)
    return int(fields[2])


def test_sigkilled_worker_is_taken_over_and_every_run_is_present_once(tmp_path: Path, worker_trainings) -> None:
    out = tmp_path / "runs"
    argv = ["sweep", "--protocols", "full", "random", "--densities", "0.5", "--seeds", "1", "--epochs", "60",
            "--no-progress", "--launcher", "processes", "--workers", "2", "--out", str(out)]
    with ThreadPoolExecutor(1) as pool:
        sweep = pool.submit(main, argv)
        start = time.time()
        while not _claims(out) and not sweep.done():
            assert time.time() - start < 120, "no worker claimed a run"
            time.sleep(0.05)
        claim = _claims(out)[0]
        pid = _owner(claim)
        assert pid != os.getpid()
        # Kill it mid-training: once its training has started (loading the data comes first), before it is done.
        log = tmp_path / "trainings.log"
        while f"final {pid}" not in (log.read_text() if log.exists() else ""):
            assert time.time() - start < 120 and not sweep.done(), "the claiming worker never started training"
            time.sleep(0.02)
        assert not (claim.parent / "done").exists()
        os.kill(pid, signal.SIGKILL)
        assert sweep.result(timeout=300) == 0
    runs = list(RunStore(out).runs())
    assert sorted((r.config["protocol"], r.config["density"]) for r in runs) == [("full", 1.0), ("random", 0.5)]
    assert not _claims(out)
    assert worker_trainings()["final"] == 3  # the killed worker's run was started again by the other worker


def test_failed_worker_stops_the_sweep_with_its_error(tmp_path: Path) -> None:
    argv = ["sweep", "--dataset", "npz", "--data", str(tmp_path / "missing.npz"), "--protocols", "full",
            "--densities", "0.5", "--seeds", "1", *FAST, "--launcher", "processes", "--workers", "1",
            "--out", str(tmp_path / "runs")]
    with pytest.raises(WorkerError, match="worker 0 of 1 failed(.|\n)*missing.npz"):
        main(argv)


def test_corrupt_cached_scores_are_recomputed_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["sweep", "--protocols", "el2n", "--densities", "0.3", "--seeds", "1", *FAST, "--out", str(tmp_path)]
    assert main(argv) == 0
    (query,) = RunStore(tmp_path / QUERY_DIR).runs()
    scores = query.array("scores_el2n")
    file = query.path / "scores_el2n.npy"
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    trained = _count_trainings(monkeypatch)
    assert main(argv) == 0
    assert trained == Counter(query=1)  # the damaged stage was trained again, not read; the final run stands
    (query,) = RunStore(tmp_path / QUERY_DIR).runs()
    np.testing.assert_array_equal(query.array("scores_el2n"), scores)  # checksum holds again, same seed same scores
