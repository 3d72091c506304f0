"""Launchers on digits: worker processes (K per device) and a submitit job array give the local sweep's runs, each
trained once; workers are dealt to devices as asked; a requeued job's workers release their claims at once; a
SIGKILLed worker's run is taken over; a failed worker stops the sweep; a corrupt cached score is redone."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from deep import launch
from deep.cli import main
from deep.data import default_config
from deep.launch import (
    LaunchOptions, SweepJob, machine_workers, visible_gpus, worker_count, worker_gpus,
)
from deep.runs import RunStore
from deep.sweep import Setup, plan
from deep.tasks import Runtime
from tests.conftest import count_trainings

# On the CPU wherever the tests run: runs made in different processes are compared exactly.
FAST = ["--epochs", "4", "--query-inits", "1", "--no-progress", "--device", "cpu"]
SWEEP = ["sweep", "--dataset", "digits", "--protocols", "full", "random+drop", "--densities", "0.3", "--seeds", "1",
         *FAST]


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


SUBMITIT_CPU = ["--launcher", "submitit", "--submitit-cluster", "local", "--gpus-per-task", "0", "--time", "5"]


@pytest.mark.parametrize("launcher", [
    ["--launcher", "processes", "--workers", "2"],
    ["--launcher", "auto", "--runs-per-device", "2"],  # two CPU workers of one torch thread each
    [*SUBMITIT_CPU, "--workers", "2", "--cpus-per-task", "1"],
    [*SUBMITIT_CPU, "--workers", "1", "--cpus-per-task", "2", "--runs-per-device", "2"],  # one job, two processes
], ids=["processes", "auto-runs-per-device", "submitit", "submitit-runs-per-device"])
def test_parallel_sweep_equals_local_and_trains_each_run_once(
    tmp_path: Path, local_sweep: tuple[Path, Counter], worker_trainings, launcher: list[str]
) -> None:
    reference, local_counts = local_sweep
    out = tmp_path / "runs"
    assert main([*SWEEP, *launcher, "--out", str(out)]) == 0
    _assert_same_runs(out, reference)
    assert worker_trainings() == local_counts == Counter(final=2, query=1)  # the recall query stage, once


@pytest.mark.parametrize("gpus, cpu, cores, workers, per_device, expected", [
    (["0", "1"], False, 16, None, None, 2),  # one per GPU
    (["0", "1"], False, 16, None, 4, 8),  # K per GPU
    (["0", "1"], False, 16, 3, None, 3),  # --workers: in all
    ([], True, 8, None, None, 8),  # CPU: one per core
    ([], True, 8, None, 2, 2),  # CPU: K workers
    ([], False, 8, None, None, 1),  # one named GPU (--device cuda:1)
    ([], False, 8, None, 3, 3),  # K on the named GPU
])
def test_worker_count(gpus: list[str], cpu: bool, cores: int, workers: int | None, per_device: int | None,
                      expected: int) -> None:
    assert worker_count(gpus, cpu, cores, workers, per_device) == expected


@pytest.mark.parametrize("workers, per_device, message", [
    (2, 2, "not both"), (0, None, "--workers must be >= 1"), (None, 0, "--runs-per-device must be >= 1"),
])
def test_worker_count_refuses(workers: int | None, per_device: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        worker_count(["0"], False, 4, workers, per_device)


def test_workers_are_dealt_round_robin_over_the_gpus() -> None:
    assert worker_gpus(["3", "5"], 5) == ["3", "5", "3", "5", "3"]
    assert worker_gpus([], 2) == [None, None]


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch sees two GPUs, listed in CUDA_VISIBLE_DEVICES as 3 and 5."""
    monkeypatch.setattr(launch.torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")


def test_machine_workers_k_per_gpu_with_their_share_of_cores(two_gpus: None) -> None:
    workers = machine_workers([], "runs", Runtime(device="cuda"), None, 2, cores=16, job=1)
    assert [(w.gpu, w.index, w.threads) for w in workers] == [("3", 4, 4), ("5", 5, 4), ("3", 6, 4), ("5", 7, 4)]
    cpu = machine_workers([], "runs", Runtime(device="cpu"), None, None, cores=3)
    assert [(w.gpu, w.index, w.threads) for w in cpu] == [(None, 0, 1), (None, 1, 1), (None, 2, 1)]


def test_visible_gpus_follow_cuda_visible_devices(two_gpus: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert visible_gpus(Runtime()) == visible_gpus(Runtime(device="cuda")) == ["3", "5"]
    assert visible_gpus(Runtime(device="cpu")) == visible_gpus(Runtime(device="cuda:1")) == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus(Runtime()) == ["0", "1"]


@pytest.mark.parametrize("device, count, options, expected", [
    ("cpu", 2, LaunchOptions(), "processes"),  # one worker per core
    ("cpu", 1, LaunchOptions(), "local"),
    ("cpu", 1, LaunchOptions(runs_per_device=2), "processes"),
    ("cpu", 4, LaunchOptions(workers=1), "local"),
    ("cuda", 1, LaunchOptions(), "local"),  # one GPU, one run on it
    ("cuda", 2, LaunchOptions(), "processes"),
    ("cuda", 1, LaunchOptions(runs_per_device=4), "processes"),
])
def test_auto_starts_processes_only_for_more_than_one_worker(
    device: str, count: int, options: LaunchOptions, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`count`: the cores (on the CPU) or the GPUs there are."""
    monkeypatch.setattr(launch, "_cpu_count", lambda: count if device == "cpu" else 16)
    monkeypatch.setattr(launch.torch.cuda, "device_count", lambda: count if device == "cuda" else 0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    called = []
    monkeypatch.setattr(launch, "launch_local", lambda *args: called.append("local"))
    monkeypatch.setattr(launch, "launch_processes", lambda *args: called.append("processes"))
    launch.launch_auto([], "runs", Runtime(device=device), options)
    assert called == [expected]


def test_cli_refuses_workers_in_this_process(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([*SWEEP, "--launcher", "local", "--runs-per-device", "2", "--out", str(tmp_path)]) == 2
    assert "--launcher auto, processes or submitit" in capsys.readouterr().err


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


def test_failed_worker_stops_the_sweep_with_its_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["sweep", "--dataset", "digits", "--lr", "1e30", "--protocols", "full", "--densities", "0.5", "--seeds", "1", *FAST,
            "--launcher", "processes", "--workers", "1", "--out", str(tmp_path / "runs")]
    assert main(argv) == 1  # the worker's error, in one line: the first and last lines of its traceback
    assert re.fullmatch(r"error: python -m deep sweep failed: WorkerError: worker 0 of 1 failed: \.\.\. "
                        r".*DivergedError: training diverged at epoch 1 .*\n", capsys.readouterr().err)
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


def test_requeued_job_releases_its_workers_claims_at_once_and_resumes(tmp_path: Path, worker_trainings) -> None:
    out = tmp_path / "runs"
    setup = Setup("digits", "mlp", replace(default_config("digits", "mlp"), epochs=60))
    tasks = plan(setup, ["full", "random"], [0.5], [0])
    job = SweepJob(tasks, str(out), Runtime(device="cpu"), 0, runs_per_device=2, cores=2)
    log = tmp_path / "trainings.log"
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(job)  # in a thread: here, this process plays the SLURM job's own process
        start = time.time()
        while not (log.exists() and log.read_text()):
            assert time.time() - start < 120 and not running.done(), "no worker started training"
            time.sleep(0.02)
        requeued = job.checkpoint()  # what submitit calls on SLURM's time-out signal
        assert not _claims(out)  # released, not left to go stale
        running.result(timeout=60)  # both workers ended (killed by SIGTERM): the job's process returns
    assert requeued.function is job
    requeued.result()  # the requeued job finishes the sweep
    runs = list(RunStore(out).runs("final"))
    assert sorted((r.config["protocol"], r.config["density"]) for r in runs) == [("full", 1.0), ("random", 0.5)]
    assert not _claims(out)
    assert 2 <= worker_trainings()["final"] <= 4  # a stopped training starts again, at most once per run


def test_worker_processes_show_one_bar_not_their_trainings(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    argv = ["sweep", "--dataset", "digits", "--protocols", "full", "random", "--densities", "0.5", "--seeds", "1",
            "--epochs", "3", "--device", "cpu", "--launcher", "processes", "--workers", "2", "--out", str(tmp_path)]
    assert main(argv) == 0
    err = capfd.readouterr().err
    assert "sweep:" in err and "train:" not in err  # the parent's bar only: workers' bars would interleave
