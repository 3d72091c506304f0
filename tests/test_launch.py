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

from deep.cli import main
from deep.launch import WorkerError
from deep.runs import RunStore
from tests.conftest import count_trainings

FAST = ["--epochs", "4", "--query-inits", "1", "--no-progress"]
SWEEP = ["sweep", "--dataset", "digits", "--protocols", "full", "random+drop", "--densities", "0.3", "--seeds", "1", *FAST]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter]:
    """The sweep run in this process, and the trainings it started."""
    out = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as patch:
        counts = count_trainings(patch)
        assert main([*SWEEP, "--out", str(out)]) == 0
    return out, counts


def _runs(out: Path) -> dict[str, np.ndarray]:
    """Every finished task by kind and name: its kept indices, scores, recalls or validation recalls."""
    store = RunStore(out)
    arrays = {"final": "kept", "scores": "scores", "recalls": "class_recalls", "query": "val_class_recall"}
    return {f"{kind}/{run.key}": run.array(name) for kind, name in arrays.items() for run in store.runs(kind)}


def _assert_same_runs(out: Path, reference: Path) -> None:
    """Same task names, identical kept indices; scores equal up to float32 sums in another thread count."""
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
    return list(out.glob("*/*/claim"))


def _owner(claim: Path, timeout: float = 30.0) -> int:
    """The pid in a claim file, once the file has been written in full."""
    start = time.time()
    while len(fields := claim.read_text().split()) < 3:
        assert time.time() - start < timeout, f"claim {claim} was never completed"
        time.sleep(0.01)
    return int(fields[2])


def test_sigkilled_worker_is_taken_over_and_every_run_is_present_once(tmp_path: Path, worker_trainings) -> None:
    out = tmp_path / "runs"
    argv = ["sweep", "--dataset", "digits", "--protocols", "full", "random", "--densities", "0.5", "--seeds", "1", "--epochs", "60",
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
    runs = list(RunStore(out).runs("final"))
    assert sorted((r.config["protocol"], r.config["density"]) for r in runs) == [("full", 1.0), ("random", 0.5)]
    assert not _claims(out)
    assert worker_trainings()["final"] == 3  # the killed worker's run was started again by the other worker


def test_failed_worker_stops_the_sweep_with_its_error(tmp_path: Path) -> None:
    argv = ["sweep", "--dataset", "digits", "--lr", "1e30", "--protocols", "full", "--densities", "0.5", "--seeds", "1", *FAST,
            "--launcher", "processes", "--workers", "1", "--out", str(tmp_path / "runs")]
    with pytest.raises(WorkerError, match="worker 0 of 1 failed(.|\n)*diverged at epoch 1"):
        main(argv)
    assert not (tmp_path / "runs").exists()  # the failed run left no empty folders


def test_corrupt_cached_scores_are_recomputed_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["sweep", "--dataset", "digits", "--protocols", "el2n", "--seeds", "1", *FAST, "--out", str(tmp_path)]
    assert main([*argv, "--densities", "0.3"]) == 0
    (scores_run,) = RunStore(tmp_path).runs("scores")
    scores = scores_run.array("scores")
    file = scores_run.path / "scores.npy"
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    trained = count_trainings(monkeypatch)
    assert main([*argv, "--densities", "0.3", "0.6"]) == 0  # a new run needs the damaged scores
    # The scores were computed again from the stored query model (no query training), never read damaged.
    assert trained == Counter(final=1)
    (scores_run,) = RunStore(tmp_path).runs("scores")
    np.testing.assert_array_equal(scores_run.array("scores"), scores)  # checksum holds again, same model same scores
