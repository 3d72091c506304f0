"""Exporting a run store's scores and kept indices, and loading the export back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deep.cli import main
from deep.export import load_export
from deep.runs import RunStore


def _store(root: Path) -> tuple[dict, dict, dict]:
    scores = {"kind": "scores", "scorer": "el2n", "seed": 0, "queries": ["q"]}
    recalls = {"kind": "recalls", "queries": ["q"]}
    final = {"kind": "final", "protocol": "random+drop", "density": 0.5, "seed": 0}
    store = RunStore(root)
    store.finish(scores, {"inits": 1}, {"scores": np.linspace(0, 1, 6)})
    store.finish(recalls, {"inits": 1}, {"class_recalls": np.array([0.5, 1.0])})
    store.finish(final, {"accuracy": 0.9}, {"kept": np.array([0, 2, 5])})
    return scores, recalls, final


def test_export_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    scores_cfg, recalls_cfg, final = _store(tmp_path / "runs")
    assert main(["export-scores", str(tmp_path / "runs"), "--out", str(tmp_path / "export")]) == 0
    assert "manifest.json" in capsys.readouterr().out
    entries = load_export(tmp_path / "export")
    (scores,), (recalls,), (kept,) = entries["scores"], entries["recalls"], entries["kept"]
    assert scores.config == scores_cfg and recalls.config == recalls_cfg
    assert kept.config == final and kept.metrics == {"accuracy": 0.9}
    np.testing.assert_array_equal(scores.arrays()["scores"], np.linspace(0, 1, 6))
    np.testing.assert_array_equal(recalls.arrays()["class_recalls"], [0.5, 1.0])
    np.testing.assert_array_equal(kept.arrays()["kept"], [0, 2, 5])


def test_corrupt_array_is_not_exported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    *_, final = _store(tmp_path / "runs")
    (RunStore(tmp_path / "runs").path(final) / "kept.npy").write_bytes(b"garbage")
    assert main(["export-scores", str(tmp_path / "runs"), "--out", str(tmp_path / "export")]) == 2
    assert "checksum" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [(["export-scores", "MISSING"], "does not exist"), (["export-scores", "EMPTY"], "no finished runs")])
def test_bad_folders_give_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str) -> None:
    (tmp_path / "EMPTY").mkdir()
    folder = str(tmp_path / argv[1])
    assert main([argv[0], folder, "--out", str(tmp_path / "export")]) == 2
    assert message in capsys.readouterr().err


def test_load_export_needs_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="export-scores"):
        load_export(tmp_path)
