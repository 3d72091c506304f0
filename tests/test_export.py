"""Exporting a run store's scores and kept indices, and loading the export back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deep.cli import main
from deep.export import load_export
from deep.query import QUERY_DIR
from deep.runs import RunStore


def _store(root: Path) -> tuple[dict, dict]:
    query = {"kind": "query", "seed": 0, "scorers": ["el2n"]}
    final = {"kind": "final", "protocol": "random+drop", "density": 0.5, "seed": 0}
    RunStore(root / QUERY_DIR).finish(query, {"epochs": 3}, {"scores_el2n": np.linspace(0, 1, 6), "recalls": np.array([0.5, 1.0])})
    RunStore(root).finish(final, {"accuracy": 0.9}, {"kept": np.array([0, 2, 5])})
    return query, final


def test_export_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    query, final = _store(tmp_path / "runs")
    assert main(["export-scores", str(tmp_path / "runs"), "--out", str(tmp_path / "export")]) == 0
    assert "manifest.json" in capsys.readouterr().out
    entries = load_export(tmp_path / "export")
    (scores,), (kept,) = entries["scores"], entries["kept"]
    assert scores.config == query and kept.config == final and kept.metrics == {"accuracy": 0.9}
    np.testing.assert_array_equal(scores.arrays()["scores_el2n"], np.linspace(0, 1, 6))
    np.testing.assert_array_equal(scores.arrays()["recalls"], [0.5, 1.0])
    np.testing.assert_array_equal(kept.arrays()["kept"], [0, 2, 5])


def test_corrupt_array_is_not_exported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _, final = _store(tmp_path / "runs")
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
