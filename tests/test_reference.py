"""--reference paper|official: one preset that sets exactly the settings in which the two references differ."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from deep.cli import main
from deep.reference import REFERENCES, SETTINGS, resolve
from deep.schedule import TrainConfig
from tests.conftest import TINY_SWEEP

DRY = [a for a in TINY_SWEEP if a != "--no-progress"] + ["--protocols", "random", "el2n", "random+drop", "el2n+drop"]


def _plan(capsys: pytest.CaptureFixture, tmp_path, *extra: str) -> dict:
    assert main(["sweep", *DRY, *extra, "--out", str(tmp_path / "runs"), "--dry-run"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_preset_and_explicit_flags() -> None:
    assert set(REFERENCES["paper"]) == set(REFERENCES["official"]) == set(SETTINGS)
    assert all(REFERENCES["paper"][k] != REFERENCES["official"][k] for k in SETTINGS)  # only real differences
    assert resolve("official", ties="random")["ties"] == "random"  # an explicit value beats the preset
    with pytest.raises(ValueError, match="reference"):
        resolve("authors")


def test_official_changes_exactly_the_listed_settings(capsys: pytest.CaptureFixture, tmp_path) -> None:
    paper, official = _plan(capsys, tmp_path), _plan(capsys, tmp_path, "--reference", "official")
    assert paper["reference"] == {"name": "paper", **REFERENCES["paper"]}
    assert official["reference"] == {"name": "official", **REFERENCES["official"]}
    changed = {k for k in paper if paper[k] != official[k]}
    # counts: random+drop's own 16-epoch constant-LR recall model is a query training no other protocol shares
    assert changed == {"reference", "allocation", "dataset", "recalls", "tasks", "counts", "total_full_data_epochs"}
    assert official["dataset"] == {**paper["dataset"], "val_split": "first_half"}
    assert official["query"]["el2n"] == paper["query"]["el2n"]  # no ssp or dynamic_uncertainty in this sweep
    assert official["recalls"]["random+drop"] == {"epochs": 16, "inits": 1}  # el2n+drop keeps its scorer's models
    assert official["recalls"]["el2n+drop"] == paper["recalls"]["el2n+drop"]
    # An explicit flag beats the preset, and shows in the resolved plan.
    mixed = _plan(capsys, tmp_path, "--reference", "official", "--ties", "random", "--val-split", "random")
    assert mixed["reference"] == {**official["reference"], "ties": "random", "val_split": "random"}


def test_official_configs_record_the_settings(tmp_path) -> None:
    from deep.cli import _setup, build_parser
    from deep.sweep import plan

    args = build_parser().parse_args(["sweep", *DRY, "--reference", "official", "--milestones", "1",
                                      "--out", str(tmp_path)])
    tasks = {t.config["protocol"]: t for t in plan(_setup(args), args.protocols, [0.5], [1], read_data=False)}
    finals = {name: t.config for name, t in tasks.items()}
    recall_model = tasks["random+drop"].dep("recalls").deps[0].config["train"]
    assert recall_model["epochs"] == 16 and recall_model["milestones"] == []  # constant LR, one init
    assert len(tasks["random+drop"].dep("recalls").deps) == 1
    assert finals["el2n"]["ties"] == "highest" and finals["el2n"]["kept_rule"] == "official"
    assert "ties" not in finals["random+drop"] and finals["random"]["kept_rule"] == "official"
    assert finals["random+drop"]["allocation"] == "official" and "allocation" not in finals["el2n"]
    assert finals["random"]["dataset"]["val_split"] == "first_half"
    # Under paper, every setting is stored resolved where it applies.
    args = build_parser().parse_args(["sweep", *DRY, "--out", str(tmp_path)])
    paper = {t.config["protocol"]: t.config for t in plan(_setup(args), args.protocols, [0.5], [1], read_data=False)}
    assert (paper["random"]["kept_rule"], paper["random"]["select"], paper["random"]["dataset"]["val_split"]) == (
        "round", "last", "random")
    assert "ties" not in paper["random"]
    assert paper["el2n"]["ties"] == "random"


def test_exponent_selection_proxies_follow_the_reference(tmp_path) -> None:
    from deep.cli import _setup, build_parser
    from deep.sweep import plan

    args = build_parser().parse_args(["sweep", *DRY, "--reference", "official", "--quota-exponent", "auto",
                                      "--out", str(tmp_path)])
    tasks = {t.config["protocol"]: t for t in plan(_setup(args), args.protocols, [0.5], [1], read_data=False)}
    selection = tasks["el2n+drop"].dep("selection").config
    # The proxies' kept sets are made as the run's own: the official allocation, tie rule and kept count.
    assert (selection["allocation"], selection["ties"], selection["kept_rule"]) == ("official", "highest", "official")
    assert selection["dataset"]["val_split"] == "first_half"


def test_first_half_validation_split() -> None:
    import torch

    from deep.data.splits import first_half_split

    y = torch.tensor([1, 0, 1, 0, 1, 0, 0, 2, 2, 1, 2])
    val, test = first_half_split(y)
    # As the authors' code: per class, the first int(n_k / 2) rows in file order; 3 rows of class 2 give 1.
    expected = sorted(sum(([i for i in range(11) if y[i] == k][: int(0.5 * int((y == k).sum()))] for k in range(3)), []))
    assert val.tolist() == expected == [0, 1, 2, 3, 7]
    assert sorted(val.tolist() + test.tolist()) == list(range(11))


def test_prune_cli_reference(tmp_path) -> None:
    labels = np.repeat(np.arange(4), 25)
    np.save(tmp_path / "y.npy", labels)
    np.save(tmp_path / "s.npy", np.zeros(100))
    base = ["prune", "--labels", str(tmp_path / "y.npy"), "--scores", str(tmp_path / "s.npy"), "--protocol", "s",
            "--density", "0.5"]
    assert main([*base, "--reference", "official", "--out", str(tmp_path / "o.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), np.arange(50, 100))  # highest rows among ties
    assert main([*base, "--reference", "official", "--ties", "random", "--out", str(tmp_path / "r.npy")]) == 0
    assert not np.array_equal(np.load(tmp_path / "r.npy"), np.arange(50, 100))


def test_official_dynamic_uncertainty_is_the_authors_running_sum() -> None:
    """A transcription of scorers/dynamic_uncertainty.py's loop: a stack of epochs, std added at each epoch start."""
    from deep.scores.dynamic_uncertainty import official_uncertainty

    prob = np.random.default_rng(0).uniform(size=(13, 7))
    window, stack, total = 5, [], np.zeros(7)
    for epoch in range(1, 14):
        if epoch >= window:
            total += np.std(np.array(stack), axis=0, ddof=1)
            stack = stack[1:]
        stack.append(prob[epoch - 1])
    np.testing.assert_allclose(official_uncertainty(prob, window), total / (13 - window), rtol=1e-12)


def test_raw_ssp_features() -> None:
    import torch

    from deep.scores.ssp import prototype_distances

    features, y = torch.tensor([[3.0, 0.0], [1.0, 0.0], [0.0, 10.0], [0.0, 2.0]]), torch.tensor([0, 0, 1, 1])
    np.testing.assert_allclose(prototype_distances(features, y, 2, normalize=False), [1.0, 1.0, 4.0, 4.0])
    np.testing.assert_allclose(prototype_distances(features, y, 2), [0.0, 0.0, 0.0, 0.0])


def test_batch_rotation() -> None:
    import math

    import torch

    from deep.augment import rotate, rotate_by

    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.uint8).reshape(2, 3, 6, 6)
    quarter = rotate_by(x, torch.tensor([math.pi / 2, -math.pi / 2]))
    # A quarter turn either way is an exact permutation of the pixels (torch.rot90 one way or the other).
    assert {tuple(torch.equal(quarter[i], torch.rot90(x[i], k, (1, 2))) for k in (1, -1)) for i in range(2)} == {
        (True, False), (False, True)}
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(rotate(x, 0.0, generator), x) and rotate(x.float(), 4.0, generator).dtype == torch.float32
    small = rotate(torch.ones(64, 1, 28, 28), 4.0, torch.Generator().manual_seed(1))
    assert 0 < (small == 0).float().mean() < 0.05  # a few corner pixels rotate in as zero fill, no more


def test_official_rotation_is_mnists_only(capsys: pytest.CaptureFixture, tmp_path) -> None:
    from deep.cli import _setup, build_parser

    def setup(*extra: str):
        return _setup(build_parser().parse_args(["sweep", "--out", str(tmp_path), *extra]))

    assert setup("--dataset", "mnist", "--reference", "official").train.rotation == 4.0
    assert setup("--dataset", "mnist").train.rotation == 0.0
    assert setup("--dataset", "digits", "--reference", "official").train.rotation == 0.0
    assert setup("--dataset", "mnist", "--reference", "official", "--rotation", "0").train.rotation == 0.0
    official = setup("--dataset", "mnist", "--reference", "official")
    assert official.query_config(16).rotation == 0.0  # no augmentation in query trainings, as the authors' code
    assert TrainConfig.from_stored(asdict(official.train)) == official.train  # stored resolved, read back whole
