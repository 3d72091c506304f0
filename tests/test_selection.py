"""--quota-exponent auto / --recall-prior auto (deep.selection, deep.selection_task): candidates, shared proxies, the
choice, and the selection task: it never reads the test split, is deterministic and resumes to the same result."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import deep.selection_task
import deep.tasks
from deep.data.base import Split
from deep.prune import parse_protocol
from deep.report.write import write_report
from deep.runs import RunStore
from deep.selection import (
    AUTO, Candidate, candidates, check_grid, proxy_epochs, select, shared_proxies, validation_accuracies,
)
from deep.dry_run import dry_run
from deep.sweep import Setup, final_task, plan, selection_task
from deep.tasks import Runtime
from deep.work import work
from deep.train import TrainConfig


def test_candidates_cross_the_grid_with_the_priors_and_keep_given_numbers() -> None:
    assert len(candidates(AUTO, AUTO)) == 8
    assert candidates(AUTO, 1.0, (1.0, 0.5)) == [Candidate(0.5, 1.0), Candidate(1.0, 1.0)]
    assert candidates(0.5, AUTO) == [Candidate(0.5, 0.0), Candidate(0.5, 1.0)]
    with pytest.raises(ValueError, match="--exponent-grid"):
        check_grid([0.5, -1.0])


def test_candidates_with_equal_kept_sets_share_one_proxy() -> None:
    assert shared_proxies([np.array([3, 1]), np.array([1, 2]), np.array([1, 3]), np.array([1, 2])]) == [0, 1, 0, 1]


def test_proxy_epochs_is_a_small_fraction_never_zero() -> None:
    assert proxy_epochs(110) == 6 and proxy_epochs(21) == 1 and proxy_epochs(1) == 1


def test_validation_accuracies_are_worst_unit_and_average() -> None:
    y = np.array([0, 0, 1, 1, 1, 1])
    pred = np.array([0, 1, 1, 1, 1, 0])
    assert validation_accuracies(y, pred, y, 3) == (0.5, pytest.approx(4 / 6))  # unit 2 is absent: ignored


def test_select_ties_pick_the_candidate_nearest_beta_one_then_the_default_prior() -> None:
    cands = candidates(AUTO, AUTO)
    record = select(cands, [0.4] * 8, [0.5] * 8, list(range(8)), preferred_prior=1.0)
    assert (record["quota_exponent"], record["recall_prior"]) == (1.0, 1.0)
    worst = [0.4, 0.6, 0.6, 0.4, 0.4, 0.4, 0.4, 0.4]  # (0.25, 1) and (0.5, 0) tie at the top
    record = select(cands, worst, [0.5] * 8, list(range(8)), preferred_prior=1.0)
    assert (record["quota_exponent"], record["recall_prior"]) == (0.5, 0.0)
    assert [c["chosen"] for c in record["exponent_selection"]] == [False, False, True] + [False] * 5
    assert record["exponent_selection"][1] == {"quota_exponent": 0.25, "recall_prior": 1.0, "val_worst_accuracy": 0.6,
                                               "val_accuracy": 0.5, "proxy": 1, "chosen": False}


SETUP = Setup(dataset="digits", model="mlp", train=TrainConfig(10, 64, 0.05, milestones=(7,)), query_inits=1,
              quota_exponent=AUTO, recall_prior=AUTO, exponent_grid=(0.5, 1.0))
RANDOM_DROP = parse_protocol("random+drop")


def _select(root, setup: Setup = SETUP) -> dict:
    """Run the selection of random+drop at d = 0.3, seed 0, into a store at `root`; its metrics but the timing."""
    task = selection_task(setup, RANDOM_DROP, 0.3, 0)
    store = RunStore(root)
    work([task], store, Runtime(device="cpu"))
    return {k: v for k, v in store.read(task.config).metrics.items() if k != "train_seconds"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The selection as it runs normally."""
    return _select(tmp_path_factory.mktemp("selection") / "runs")


def test_selection_never_reads_the_test_split(reference: dict, tmp_path, monkeypatch) -> None:
    real, served = deep.tasks.dataset, []

    def poisoned(key: dict, download: bool = False):
        data = real(key, download)
        served.append(key)
        generator = torch.Generator().manual_seed(1)
        test = data.test
        noise = Split(torch.randn(test.x.shape, generator=generator), test.y[torch.randperm(len(test), generator=generator)],
                      test.group, test.ids)
        return replace(data, test=noise)

    monkeypatch.setattr(deep.tasks, "dataset", poisoned)
    assert _select(tmp_path / "runs") == reference
    assert served  # every task of that store saw the poisoned test split


def test_selection_records_every_candidate_and_is_deterministic(reference: dict, tmp_path) -> None:
    assert len(reference["exponent_selection"]) == 4
    assert sum(c["chosen"] for c in reference["exponent_selection"]) == 1
    assert reference["proxies"] == len({c["proxy"] for c in reference["exponent_selection"]})
    assert _select(tmp_path / "runs") == reference


def test_a_resumed_selection_equals_an_uninterrupted_one(reference: dict, tmp_path, monkeypatch) -> None:
    real, calls = deep.selection_task.train, []

    def killed_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(deep.selection_task, "train", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        _select(tmp_path / "runs")
    monkeypatch.setattr(deep.selection_task, "train", lambda *a, **k: calls.append(2) or real(*a, **k))
    resumed = _select(tmp_path / "runs")
    assert calls.count(2) == reference["proxies"] - 2  # the two finished proxies are not trained again
    assert [c for c in resumed["exponent_selection"]] == reference["exponent_selection"]
    task_dir = RunStore(tmp_path / "runs").path(selection_task(SETUP, RANDOM_DROP, 0.3, 0).config)
    assert not list(task_dir.glob("proxy-*.json"))  # the partial results are gone once the record holds them


def test_final_runs_consume_the_selection_and_record_the_values_used(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    finals = plan(SETUP, ["random+drop"], [0.3], [0], read_data=False)
    work(finals, store, Runtime(device="cpu"))
    metrics = store.read(finals[0].config).metrics
    chosen = next(c for c in metrics["exponent_selection"] if c["chosen"])
    assert (metrics["quota_exponent"], metrics["recall_prior"]) == (chosen["quota_exponent"], chosen["recall_prior"])
    assert finals[0].config["quota_exponent"] == AUTO and "selection" in finals[0].config
    written = write_report(tmp_path / "runs", tmp_path / "report")
    figure = tmp_path / "report" / "chosen_exponent.csv"
    assert figure in written and (tmp_path / "report" / "chosen_exponent.png") in written
    row = next(csv.DictReader(figure.open()))
    assert row["line"] == "random+drop (β=auto, α=auto)" and float(row["quota_exponent"]) == metrics["quota_exponent"]


def test_selection_is_shared_by_methods_and_counted_by_the_dry_run() -> None:
    erm = final_task(SETUP, RANDOM_DROP, 0.3, 0)
    jtt = final_task(replace(SETUP, method="jtt"), RANDOM_DROP, 0.3, 0)
    assert erm.key != jtt.key and erm.dep("selection").key == jtt.dep("selection").key
    fixed = final_task(replace(SETUP, quota_exponent=1.0, recall_prior=1.0), RANDOM_DROP, 0.3, 0)
    assert fixed.dep("selection") is None and "selection" not in fixed.config
    plan_json = dry_run(SETUP, [erm], ["random+drop"])
    assert plan_json["counts"]["selection"] == 1
    selection = next(t for t in plan_json["tasks"] if t["kind"] == "selection")
    final = next(t for t in plan_json["tasks"] if t["kind"] == "final")
    assert plan_json["selection_to_final_epochs"] == round(selection["full_data_epochs"] / final["full_data_epochs"], 3)
    json.dumps(plan_json)
