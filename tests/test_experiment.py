"""End to end on digits: train, store, resume, sweep, cache, and errors before any training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import deep.experiment
import deep.query
from deep.cli import main
from deep.report import load_results
from deep.runs import RunStore
from toy.quotas import drop_quotas

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--epochs", "4", "--query-inits", "1", "--no-progress"]


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the trainings started by final runs and by query stages."""
    counts = {"final": 0, "query": 0}

    def counting(kind: str, real):
        def wrapped(*args, **kwargs):
            counts[kind] += 1
            return real(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(deep.experiment, "train", counting("final", deep.experiment.train))
    monkeypatch.setattr(deep.query, "train", counting("query", deep.query.train))
    return counts


def _metrics(out: Path) -> list[dict]:
    return [run.metrics for run in RunStore(out).runs()]


def test_mlp_on_digits_reaches_95_and_is_not_trained_twice(tmp_path: Path, trainings: dict[str, int]) -> None:
    args = ["train", "--dataset", "digits", "--model", "mlp", "--seed", "0", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    (metrics,) = _metrics(tmp_path)
    assert metrics["accuracy"] >= 0.95
    for key in ["accuracy", "worst_class_accuracy", "class_accuracy", "max_min_gap", "class_accuracy_std"]:
        assert key in metrics
    assert len(metrics["class_accuracy"]) == 10 and metrics["worst_class_accuracy"] <= metrics["accuracy"]
    assert trainings["final"] == 1
    assert main(args) == 0
    assert trainings["final"] == 1  # found the finished run


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    for name in ["a", "b"]:
        assert main(["train", "--seed", "3", "--out", str(tmp_path / name), *FAST]) == 0
    a, b = (_metrics(tmp_path / name)[0] for name in ["a", "b"])
    a.pop("train_seconds"), b.pop("train_seconds")
    assert a == b


def _wait_for(predicate, timeout: float = 120.0) -> None:
    start = time.time()
    while not predicate():
        if time.time() - start > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def test_killed_run_is_not_counted_and_rerun_completes(tmp_path: Path) -> None:
    args = ["train", "--epochs", "300", "--out", str(tmp_path), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "deep", *args], cwd=ROOT)
    _wait_for(lambda: any(tmp_path.glob("*/claim")))
    time.sleep(0.5)  # mid-training
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert not any(tmp_path.glob("*/done")) and list(RunStore(tmp_path).runs()) == []
    assert main(args) == 0  # the dead worker's claim does not block the re-run
    assert len(_metrics(tmp_path)) == 1


def test_killed_sweep_resumes_without_redoing_or_missing_runs(tmp_path: Path, trainings: dict[str, int]) -> None:
    args = ["sweep", "--protocols", "full", "random", "random+drop", "--densities", "0.3", "0.6", "--seeds", "1",
            "--epochs", "20", "--query-inits", "1", "--no-progress", "--out", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "deep", *args], cwd=ROOT, stdout=subprocess.DEVNULL)
    _wait_for(lambda: any(tmp_path.glob("*/done")))
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    done_before = {run.path.name for run in RunStore(tmp_path).runs()}
    assert 1 <= len(done_before) < 5  # killed half-way: some runs finished, some not
    assert main(args) == 0
    runs = list(RunStore(tmp_path).runs())
    assert len(runs) == 5 and done_before <= {run.path.name for run in runs}
    assert trainings["final"] == 5 - len(done_before)  # only the missing runs were trained
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith("_")]) == 5  # no run folder twice


SWEEP = ["sweep", "--protocols", "full", "random", "el2n", "random+el2nq", "el2n+drop", "random+drop",
         "--densities", "0.3", "0.6", "--seeds", "1", *FAST]


def test_sweep_counts_quotas_and_cache(tmp_path: Path, trainings: dict[str, int]) -> None:
    assert main([*SWEEP, "--out", str(tmp_path)]) == 0
    runs = list(RunStore(tmp_path).runs())
    assert len(runs) == 1 + 5 * 2
    for run in runs:
        m, c = run.metrics, run.config
        kept = run.array("kept")
        assert kept.size == (m["num_train"] if c["protocol"] == "full" else int(np.floor(c["density"] * m["num_train"] + 0.5)))
        if c["protocol"] == "random+drop":
            expected = drop_quotas(c["density"], m["class_sizes"], m["recalls"])
            np.testing.assert_array_equal(m["class_counts"], expected)
            # The default recall prior (1) keeps every class, even one without a validation error.
            assert min(m["class_counts"]) > 0 and c["recall_prior"] == 1.0
            assert np.all(np.asarray(m["recalls"]) < 1) and len(m["val_recalls"]) == 10
    assert trainings["final"] == 11 and trainings["query"] == 2  # el2n's short query, and the recall query
    assert main([*SWEEP, "--out", str(tmp_path)]) == 0
    assert trainings["final"] == 11 and trainings["query"] == 2  # cached: nothing trained again


def test_scorer_without_training_needs_no_query_epochs(tmp_path: Path, trainings: dict[str, int]) -> None:
    args = ["sweep", "--protocols", "random+randomq", "--densities", "0.5", "--seeds", "1", *FAST, "--out", str(tmp_path)]
    assert main(args) == 0
    (run,) = RunStore(tmp_path).runs()
    assert run.metrics["num_kept"] == int(np.floor(0.5 * run.metrics["num_train"] + 0.5))
    assert trainings == {"final": 1, "query": 0}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "nope"], "unknown dataset"),
        (["train", "--model", "nope"], "unknown model"),
        (["sweep", "--protocols", "nope"], "unknown protocol"),
        (["sweep", "--densities", "1.5"], "densities"),
        (["sweep", "--densities", "0"], "densities"),
        (["sweep", "--protocols", "forgetting", "--query-epochs", "forgetting=0"], "forgetting"),
        (["train", "--dataset", "npz"], "npz"),
        (["sweep", "--recall-prior", "-1"], "recall-prior"),
        (["train", "--epochs", "0"], "--epochs"),
    ],
)
def test_bad_input_fails_before_training(
    tmp_path: Path, trainings: dict[str, int], capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    assert main([*argv, "--out", str(tmp_path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert trainings == {"final": 0, "query": 0}
