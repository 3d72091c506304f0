"""Quotas over groups, the spurious-digits benchmark, and the group pipeline end to end (sweep -> metrics -> report)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.cli import main
from deep.data import load_dataset
from deep.data.spurious_digits import BACKGROUND, TRAIN_AGREEMENT
from deep.prune import keep
from toy.quotas import kept_count
from deep.report import format_summary, format_table, load_results, write_report
from deep.runs import RunStore
from deep.sweep import Setup, plan
from deep.tasks import Runtime
from deep.work import work
from deep.train import TrainConfig
from toy.quotas import drop_quotas

FAST = ["--epochs", "2", "--query-inits", "1", "--no-progress", "--seeds", "1", "--densities", "0.5"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 40), min_size=2, max_size=8).flatmap(
        lambda sizes: st.tuples(st.just(sizes), st.lists(st.floats(0, 0.95), min_size=len(sizes), max_size=len(sizes)))
    ),
    st.floats(0.05, 1.0),
    st.integers(0, 2**16),
)
def test_group_quotas_sum_exactly_and_follow_drop(case: tuple[list[int], list[float]], density: float,
                                                 seed: int) -> None:
    sizes, recalls = case
    groups = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(sizes)), sizes))
    labels = groups % 2  # quotas follow the groups, whatever the classes
    kept = keep(labels, density, "random+drop", groups=groups, recalls=recalls, seed=seed)
    assert kept.size == kept_count(density, groups.size)
    assert np.bincount(groups[kept], minlength=len(sizes)).tolist() == drop_quotas(density, sizes, recalls).tolist()


def test_a_unit_without_validation_samples_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"units \[1\] have no validation samples"):
        keep(np.zeros(3, int), 0.5, "random+drop", groups=np.array([0, 1, 2]), recalls=np.array([0.5, np.nan, 0.5]))


def test_spurious_digits_background_tracks_the_label_in_train_and_flips_in_test() -> None:
    data = load_dataset("spurious_digits")
    assert data.classes == ["digit 0-4", "digit 5-9"] and data.num_groups == 4
    for split, agreement in ((data.train, TRAIN_AGREEMENT), (data.val, 1 - TRAIN_AGREEMENT),
                             (data.test, 1 - TRAIN_AGREEMENT)):
        attribute = split.group % 2
        assert torch.equal(split.group // 2, split.y)
        assert float((attribute == split.y).float().mean()) == pytest.approx(agreement, abs=0.05)
        # The attribute is the background shade: grey background rows hold BACKGROUND and no black pixel.
        grey = split.x[attribute == 1]
        assert bool((grey != 0).all()) and bool((grey == BACKGROUND).any(1).all())


def test_group_pipeline_end_to_end_on_spurious_digits(tmp_path: Path) -> None:
    """A tiny sweep with group quotas and Group DRO: worst-group metrics in metrics.json and in the report."""
    setup = Setup("spurious_digits", "mlp", TrainConfig(epochs=2, batch_size=128, lr=0.1, augment=False),
                  query_inits=1, method="group_dro", quota_unit="group")
    work(plan(setup, ["full", "random+drop"], [0.5], [0]), RunStore(tmp_path), Runtime())
    runs = {run.config["protocol"]: run for run in RunStore(tmp_path).runs("final")}
    assert set(runs) == {"full", "random+drop"}
    pruned = runs["random+drop"]
    assert pruned.config["method"] == "group_dro" and pruned.config["quota_unit"] == "group"
    assert pruned.config["method_options"] == {"step": 0.01, "sampling": "balanced"}
    metrics = pruned.metrics
    assert 0 <= metrics["worst_group_accuracy"] <= min(metrics["group_accuracy"]) + 1e-12
    assert len(metrics["method_summary"]["group_weights"]) == 4
    # The kept group counts are DRoP's quotas from the query stage's per-group validation accuracy.
    assert len(metrics["recalls"]) == 4
    assert metrics["group_counts"] == drop_quotas(0.5, metrics["group_sizes"], metrics["recalls"]).tolist()
    assert sum(metrics["group_counts"]) == metrics["num_kept"] == kept_count(0.5, metrics["num_train"])
    recalls = next(RunStore(tmp_path).runs("recalls"))
    np.testing.assert_allclose(recalls.array("group_recalls"), metrics["val_recalls"])  # before the recall prior
    assert np.all(np.abs(np.asarray(metrics["recalls"]) - 0.5) < np.abs(recalls.array("group_recalls") - 0.5))
    assert "worst-group" in format_table(load_results(tmp_path))
    summary = format_summary(load_results(tmp_path)).splitlines()  # what the sweep prints
    assert summary[1].split()[-1] == "worst-group"  # a row per protocol and density: metrics are the columns
    assert f"{metrics['worst_group_accuracy']:.4f} ± 0.0000" in next(line for line in summary if line.startswith("random+drop"))
    write_report(tmp_path, tmp_path / "report")
    with open(tmp_path / "report" / "group_robustness.csv", newline="") as f:
        records = list(csv.DictReader(f))
    worst = {(r["method"], r["protocol"]): float(r["mean"]) for r in records if r["quantity"] == "worst_group_accuracy"}
    assert worst[("group_dro", "random+drop")] == pytest.approx(metrics["worst_group_accuracy"])
    assert (tmp_path / "report" / "group_robustness.png").stat().st_size > 0


def test_cli_method_and_quota_unit_reach_the_run_config(tmp_path: Path) -> None:
    args = ["sweep", "--dataset", "debug", "--method", "subg", "--quota-unit", "group",
            "--protocols", "random+drop", "--out", str(tmp_path), *FAST]
    assert main(args) == 0
    (run,) = RunStore(tmp_path).runs("final")
    assert (run.config["method"], run.config["quota_unit"]) == ("subg", "group")
    counts = run.metrics["method_summary"]["group_counts_trained"]
    assert len(set(c for c in counts if c)) == 1 and run.metrics["num_trained"] == sum(counts)
    assert np.isin(run.array("trained"), run.array("kept")).all()


@pytest.mark.parametrize("args, message", [
    (["--dataset", "digits", "--quota-unit", "group"], "needs a dataset with groups"),
    (["--dataset", "debug", "--dro-step", "0.1"], "--dro-step do"),
    (["--dataset", "debug", "--method", "group_dro", "--jtt-upweight", "5"], "--jtt-upweight do"),
    (["--dataset", "debug", "--method", "group_dro", "--method-option", "jtt.upweight=5"],
     "--method-option jtt.upweight do"),
    (["--dataset", "debug", "--method", "group_dro", "--method-option", "group_dro.steps=1"],
     "method 'group_dro' has no option 'steps'; its options: step"),
    (["--dataset", "debug", "--method", "group_dro", "--method-option", "group_dro.step=-1"],
     "--method-option group_dro.step must be > 0"),
    (["--dataset", "debug", "--method-option", "dro.step=1"], "--method-option names unknown method 'dro'"),
])
def test_cli_refuses_before_training(args: list[str], message: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    dataset = [] if "--dataset" in args else ["--dataset", "digits"]  # each flag once: a second value is refused
    assert main(["sweep", *dataset, "--protocols", "random+drop", "--out", str(tmp_path), *FAST, *args]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_method_option_and_its_alias_are_one_setting() -> None:
    from deep.cli import _setup, build_parser

    def options(*flags: str) -> dict:
        args = build_parser().parse_args(["sweep", "--dataset", "debug", "--method", "jtt", *flags])
        return _setup(args).method_options_for(30)

    assert options() == {"upweight": 100.0, "epochs": 6}  # a fifth of the 30 epochs
    assert options("--jtt-upweight", "5", "--jtt-epochs", "2") == {"upweight": 5.0, "epochs": 2}
    assert options("--method-option", "jtt.upweight=5", "jtt.epochs=2") == {"upweight": 5.0, "epochs": 2}


def test_help_lists_every_option_of_every_method_and_scorer(capsys: pytest.CaptureFixture[str]) -> None:
    from deep.methods import METHODS
    from deep.scores import SCORERS

    assert main(["sweep", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    named = [f"{name}.{key}" for registry in (METHODS, SCORERS) for name, entry in registry.items()
             for key in entry.options]
    assert {"group_dro.step", "jtt.upweight", "jtt.epochs", "forgetting.never_learned"} <= set(named)
    assert all(f"{option}:" in text for option in named)
