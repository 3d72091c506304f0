"""`python -m deep prune`: the CLI gives the indices of deep.prune.keep, reads and writes the file formats, refuses
bad files by name; and the README's own-training-loop example runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from deep.cli import main
from deep.prune import keep, recalls_from_predictions
from deep.vectors import read_vector, write_vector

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    arrays = {
        "labels": rng.integers(0, 4, 300), "groups": rng.integers(0, 6, 300), "scores": rng.normal(size=300),
        "val_labels": rng.integers(0, 4, 120), "val_predictions": rng.integers(0, 4, 120),
        "recalls": np.array([0.9, 0.5, 0.7, 0.3]), "group_recalls": rng.uniform(0.2, 0.9, 6),
    }
    paths = {}
    for name, values in arrays.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], values)
    np.savetxt(tmp_path / "scores.txt", arrays["scores"])  # the same scores as text
    paths["scores_txt"] = tmp_path / "scores.txt"
    return paths


def _cli(files: dict[str, Path], tmp_path: Path, *args: str, out: str = "kept.npy") -> np.ndarray:
    path = tmp_path / out
    assert main(["prune", "--labels", str(files["labels"]), "--out", str(path), *args]) == 0
    return read_vector(path, "--out")[0].astype(np.int64)


@pytest.mark.parametrize("out", ["kept.npy", "kept.csv"])
def test_cli_equals_the_api(files: dict[str, Path], tmp_path: Path, out: str, capsys: pytest.CaptureFixture) -> None:
    labels, scores = np.load(files["labels"]), np.load(files["scores"])
    recalls = np.load(files["recalls"])
    cases = [
        (["--protocol", "random", "--density", "0.4", "--seed", "3"], dict(protocol="random", density=0.4, seed=3)),
        (["--protocol", "myscore", "--density", "0.3", "--scores", str(files["scores_txt"])],
         dict(protocol="myscore", density=0.3, scores=scores)),
        (["--protocol", "random+myscoreq", "--density", "0.3", "--scores", str(files["scores"])],
         dict(protocol="random+myscoreq", density=0.3, scores=scores)),
        (["--protocol", "random+drop", "--density", "0.5", "--recalls", str(files["recalls"]), "--quota-exponent",
          "0.5", "--allocation", "count"],
         dict(protocol="random+drop", density=0.5, recalls=recalls, exponent=0.5, allocation="count")),
    ]
    for args, kwargs in cases:
        kwargs = dict(kwargs)
        expected = keep(labels, kwargs.pop("density"), kwargs.pop("protocol"), **kwargs)
        np.testing.assert_array_equal(_cli(files, tmp_path, *args, out=out), expected)
    assert "class 3:" in capsys.readouterr().out


def test_recalls_from_validation_predictions_and_groups(files: dict[str, Path], tmp_path: Path) -> None:
    labels, scores = np.load(files["labels"]), np.load(files["scores"])
    recalls = recalls_from_predictions(np.load(files["val_labels"]), np.load(files["val_predictions"]), 4)
    kept = _cli(files, tmp_path, "--protocol", "s+drop", "--density", "0.3", "--scores", str(files["scores"]),
                "--val-labels", str(files["val_labels"]), "--val-predictions", str(files["val_predictions"]))
    np.testing.assert_array_equal(kept, keep(labels, 0.3, "s+drop", scores=scores, recalls=recalls))
    groups, group_recalls = np.load(files["groups"]), np.load(files["group_recalls"])
    kept = _cli(files, tmp_path, "--protocol", "random+drop", "--density", "0.5", "--groups", str(files["groups"]),
                "--recalls", str(files["group_recalls"]))
    np.testing.assert_array_equal(kept, keep(labels, 0.5, "random+drop", groups=groups, recalls=group_recalls))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scores", "MISSING.npy", "--protocol", "s"], "no such file"),
        (["--scores", "labels.json", "--protocol", "s"], "expected a .npy, .csv, .txt file"),
        (["--protocol", "s"], "needs scores"),
        (["--protocol", "random+drop"], "needs recalls"),
        (["--protocol", "random+drop", "--val-labels", "val_labels.npy"], "go together"),
        (["--protocol", "random+drop", "--recalls", "recalls.npy", "--val-labels", "val_labels.npy",
          "--val-predictions", "val_predictions.npy"], "not both"),
        (["--protocol", "random", "--density", "2"], "density"),
        (["--protocol", "random", "--labels", "bad_labels.txt"], "line 2"),
        (["--protocol", "random", "--labels", "scores.npy"], "integer"),
        (["--protocol", "random", "--out", "nowhere/kept.npy"], "does not exist"),
        (["--protocol", "random", "--out", "kept.json"], "--out"),
    ],
)
def test_bad_input_is_a_clear_error(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture,
                                    args: list[str], message: str) -> None:
    (tmp_path / "bad_labels.txt").write_text("1\nx\n2\n")
    (tmp_path / "labels.json").write_text("[]")
    base = {"--labels": str(files["labels"]), "--density": "0.5", "--out": str(tmp_path / "kept.npy")}
    # A flag is given once (a second, different value is refused): the case's own value replaces the base one.
    argv = ["prune", *[item for flag, value in base.items() if flag not in args for item in (flag, value)]]
    for flag in ("--scores", "--recalls", "--val-labels", "--val-predictions", "--labels", "--out"):
        if flag in args:
            i = args.index(flag)
            args = [*args[:i + 1], str(tmp_path / args[i + 1]), *args[i + 2:]]
    assert main([*argv, *args]) == 2
    assert message in capsys.readouterr().err


def test_vectors_round_trip_and_ids(tmp_path: Path) -> None:
    values = np.array([3, 1, 4, 1, 5])
    for name in ("v.npy", "v.csv"):
        write_vector(tmp_path / name, values, "index")
        read, ids = read_vector(tmp_path / name, "--x")
        np.testing.assert_array_equal(read, values) and ids is None
    (tmp_path / "by_id.csv").write_text("id,score\ntrain/cat/1.png,0.5\ntrain/dog/7.png,2\n")
    read, ids = read_vector(tmp_path / "by_id.csv", "--scores")
    assert ids.tolist() == ["train/cat/1.png", "train/dog/7.png"] and read.tolist() == [0.5, 2.0]


def test_the_readme_training_loop_example_runs() -> None:
    """The README's 'Your own training loop' code block, executed as a user would paste it."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Your own training loop"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    kept, labels = namespace["kept"], namespace["labels"]
    assert kept.size == round(0.5 * labels.size) and len(namespace["loader"].dataset) == kept.size
