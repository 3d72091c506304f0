"""Bring your own: subsets (`train --kept`) and scores (`sweep --scores NAME=FILE`) by row or by sample id, round
trips through `export-scores`, and clear errors for files that do not fit the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deep.cli import main
from deep.data import load_dataset
from deep.export import load_export
from deep.runs import RunStore

FAST = ["--dataset", "digits", "--epochs", "3", "--query-inits", "1", "--no-progress"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A store with el2n at density 0.4 and its export."""
    root = tmp_path_factory.mktemp("byo")
    assert main(["sweep", *FAST, "--protocols", "el2n", "--densities", "0.4", "--seeds", "1", "--out",
                 str(root / "runs")]) == 0
    assert main(["export-scores", str(root / "runs"), "--out", str(root / "export")]) == 0
    return root, load_export(root / "export")


def _final(out: Path, protocol: str):
    (run,) = [r for r in RunStore(out).runs("final") if r.config["protocol"] == protocol]
    return run


def test_exported_ids_name_the_kept_rows(exported: tuple[Path, dict]) -> None:
    _, export = exported
    arrays = export["kept"][0].arrays()
    ids = load_dataset("digits").train.ids
    np.testing.assert_array_equal(arrays["kept_ids"], ids[arrays["kept"]])
    scores = export["scores"][0].arrays()
    np.testing.assert_array_equal(scores["ids"], ids)


@pytest.mark.parametrize("by", ["id", "row"])
def test_a_kept_subset_round_trips_through_train_kept(exported: tuple[Path, dict], tmp_path: Path, by: str) -> None:
    _, export = exported
    arrays = export["kept"][0].arrays()
    file = tmp_path / "kept.csv"
    if by == "id":  # shuffled ids under a header `id`: the order of the file does not matter
        shuffled = np.random.default_rng(0).permutation(arrays["kept_ids"])
        file.write_text("id\n" + "\n".join(str(i) for i in shuffled) + "\n")
    else:
        np.savetxt(file, arrays["kept"], fmt="%d")
    out = tmp_path / "runs"
    assert main(["train", *FAST, "--kept", str(file), "--out", str(out)]) == 0
    run = _final(out, "subset")
    np.testing.assert_array_equal(run.array("kept"), arrays["kept"])
    assert run.metrics["num_kept"] == arrays["kept"].size
    assert run.config["density"] == pytest.approx(arrays["kept"].size / run.metrics["num_train"], abs=1e-6)


def test_exported_scores_round_trip_through_sweep_scores(exported: tuple[Path, dict], tmp_path: Path) -> None:
    root, export = exported
    scores = export["scores"][0].arrays()
    order = np.random.default_rng(1).permutation(scores["ids"].size)
    file = tmp_path / "scores.csv"
    lines = [f"{scores['ids'][i]},{float(scores['scores'][i])!r}" for i in order]
    file.write_text("id,score\n" + "\n".join(lines) + "\n")
    out = tmp_path / "runs"
    assert main(["sweep", *FAST, "--scores", f"mine={file}", "--protocols", "mine", "--densities", "0.4",
                 "--seeds", "1", "--out", str(out)]) == 0
    # The same scores, protocol and seed keep the same rows as the el2n run they came from.
    np.testing.assert_array_equal(_final(out, "mine").array("kept"), _final(root / "runs", "el2n").array("kept"))
    assert list(RunStore(out).runs("query")) == []  # no query model trained for scores given from a file
    assert main(["sweep", *FAST, "--scores", f"mine={file}", "--protocols", "mine", "--densities", "0.4",
                 "--seeds", "1", "--out", str(out)]) == 0  # the same file again: the same tasks, nothing new


@pytest.mark.parametrize(
    "argv, content, message",
    [
        (["train", "--kept"], "id\nnot-an-id\n", "is not in the dataset"),
        (["train", "--kept"], "1\n1\n", "distinct row numbers"),
        (["train", "--kept"], "5000\n", "distinct row numbers"),
        (["train", "--protocol", "random", "--kept"], "1\n2\n", "drop --protocol"),
        (["sweep", "--protocols", "mine", "--scores"], "1\n2\n", "2 scores for 1262"),
        (["sweep", "--protocols", "mine", "--scores"], "id,score\n0,1\n0,2\n" + "", "2 scores for 1262"),
        (["sweep", "--protocols", "el2n", "--scores"], "1\n", "new identifier"),
    ],
)
def test_files_that_do_not_fit_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str],
                                           content: str, message: str) -> None:
    file = tmp_path / "input.csv"
    file.write_text(content)
    value = str(file)
    if argv[-1] == "--scores":
        value = f"{'el2n' if 'el2n' in argv else 'mine'}={file}"
    assert main([argv[0], *FAST, *argv[1:], value, "--out", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
