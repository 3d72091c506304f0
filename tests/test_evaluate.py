"""--keep-weights stores final models (checksummed); `python -m deep evaluate` tests them on their own test split or on
another dataset with the same classes, as tasks of their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deep import provenance
from deep.check import check_store
from deep.cli import main
from deep.data import load_dataset
from deep.query import MODEL_FILE
from deep.runs import read_json, read_finished, task_folders

TRAIN = ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--no-progress", "--protocol", "random",
         "--density", "0.5"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keep") / "runs"
    assert main([*TRAIN, "--keep-weights", "--out", str(root)]) == 0
    return root


def _npz(path: Path, shift: float, classes: int = 10) -> Path:
    """digits as an .npz (its train rows, and its val + test rows as the test split), test inputs with noise added."""
    digits = load_dataset("digits", None, options=None, seed=0, imbalance=None, download=False)
    test_x = np.concatenate([digits.val.x.numpy(), digits.test.x.numpy()])
    test_x = test_x + shift * np.random.default_rng(0).standard_normal(test_x.shape).astype(np.float32)
    x = np.concatenate([digits.train.x.numpy(), test_x])
    y = np.concatenate([digits.train.y.numpy(), digits.val.y.numpy(), digits.test.y.numpy()]) % classes
    split = np.array(["train"] * len(digits.train) + ["test"] * len(test_x))
    np.savez(path, X=x, y=y, split=split)
    return path


def test_keep_weights_stores_a_checksummed_model(store: Path) -> None:
    (final,) = task_folders(store / "final")
    assert MODEL_FILE in read_json(final / "checksums.json")
    assert MODEL_FILE in read_finished(final).file_names()


def test_evaluating_on_its_own_data_reproduces_the_final_metrics_and_is_stored(store: Path, capsys) -> None:
    assert main(["evaluate", str(store), "--no-progress"]) == 0
    (final,) = task_folders(store / "final")
    (evaluation,) = task_folders(store / "evaluation")
    run = read_finished(evaluation)
    assert run.config == {"kind": "evaluation", "final": final.name, "dataset": read_json(final / "config.json")["dataset"]}
    final_metrics = read_json(final / "metrics.json")
    for key in ("accuracy", "worst_class_accuracy", "class_accuracy"):
        assert run.metrics[key] == final_metrics[key]
    assert run.metrics["weights_sha256"] == final_metrics["weights_sha256"]
    assert read_json(evaluation / provenance.FILE)["started"]
    assert f"{final_metrics['accuracy']:.4f}" in capsys.readouterr().out
    assert check_store(store).remaining == 0
    assert main(["report", str(store)]) == 0  # evaluations sit beside the final runs the report reads
    mtime = (evaluation / "done").stat().st_mtime
    assert main(["evaluate", str(store), "--no-progress"]) == 0  # again: a lookup
    assert (evaluation / "done").stat().st_mtime == mtime


def test_a_shifted_test_set_with_the_same_classes(store: Path, tmp_path: Path) -> None:
    clean = _npz(tmp_path / "clean.npz", 0.0)
    noisy = _npz(tmp_path / "noisy.npz", 0.6)
    for data in (clean, noisy):
        assert main(["evaluate", str(store), "--dataset", "npz", "--data", str(data), "--no-progress"]) == 0
    by_data = {read_finished(t).config["dataset"]["data"]: read_finished(t).metrics
               for t in task_folders(store / "evaluation")}
    assert by_data[str(noisy)]["accuracy"] < by_data[str(clean)]["accuracy"] - 0.1


def test_other_classes_and_runs_without_a_model_are_refused(store: Path, tmp_path: Path, capsys) -> None:
    five = _npz(tmp_path / "five.npz", 0.0, classes=5)
    assert main(["evaluate", str(store), "--dataset", "npz", "--data", str(five), "--no-progress"]) == 2
    assert "same classes" in capsys.readouterr().err
    bare = tmp_path / "bare"
    assert main([*TRAIN, "--out", str(bare)]) == 0
    assert main(["evaluate", str(bare)]) == 2
    assert "--keep-weights" in capsys.readouterr().err
    assert not (bare / "final" / task_folders(bare / "final")[0].name / MODEL_FILE).exists()
    capsys.readouterr()
    assert main([*TRAIN, "--keep-weights", "--out", str(bare)]) == 0  # finished: not retrained, and said so
    assert "finished without --keep-weights" in capsys.readouterr().out
