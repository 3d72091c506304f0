"""End to end on digits: the experiment graph (names by content, one execution path), resuming killed runs
exactly from checkpoints, extending stores, concurrent sweeps, and errors before any training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from deep.cli import main
from deep.report import format_summary, format_table, load_results
from deep.runs import RunStore, read_json
from toy.quotas import drop_quotas

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--epochs", "4", "--query-inits", "1", "--no-progress"]
KINDS = ("query", "scores", "recalls", "final")


def _finals(out: Path) -> list:
    return list(RunStore(out).runs("final"))


def _tree(out: Path) -> dict[str, bytes]:
    """Every file of every finished task, by relative path: to see that nothing was rewritten."""
    return {str(p.relative_to(out)): p.read_bytes() for kind in KINDS for p in (out / kind).glob("*/*") if p.is_file()}


def test_mlp_on_digits_reaches_95_and_is_not_trained_twice(tmp_path: Path, trainings: Counter) -> None:
    args = ["train", "--dataset", "digits", "--model", "mlp", "--seed", "0", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    (run,) = _finals(tmp_path)
    metrics = run.metrics
    assert metrics["accuracy"] >= 0.95
    for key in ["accuracy", "worst_class_accuracy", "class_accuracy", "max_min_gap", "class_accuracy_std"]:
        assert key in metrics
    assert len(metrics["class_accuracy"]) == 10 and metrics["worst_class_accuracy"] <= metrics["accuracy"]
    assert metrics["resumed_from_epochs"] == []
    assert metrics["dataset_info"]["sizes"]["train"] == metrics["num_train"]  # the data's provenance travels along
    history = (run.path / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,lr,val_accuracy,val_worst_class_accuracy,seconds"
    assert len(history) == 1 + run.config["train"]["epochs"]
    assert trainings["final"] == 1
    assert main(args) == 0
    assert trainings["final"] == 1  # found the finished run


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    for name in ["a", "b"]:
        assert main(["train", "--dataset", "digits", "--seed", "3", "--out", str(tmp_path / name), *FAST]) == 0
    a, b = (_finals(tmp_path / name)[0].metrics for name in ["a", "b"])
    a.pop("train_seconds"), b.pop("train_seconds")
    assert a == b


def _wait_for(predicate, timeout: float = 120.0) -> None:
    start = time.time()
    while not predicate():
        if time.time() - start > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def test_killed_run_is_not_counted_and_rerun_completes(tmp_path: Path) -> None:
    args = ["train", "--dataset", "digits", "--epochs", "300", "--out", str(tmp_path), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "deep", *args], cwd=ROOT)
    _wait_for(lambda: any(tmp_path.glob("final/*/claim")))
    time.sleep(0.5)  # mid-training
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert not any(tmp_path.glob("*/*/done")) and _finals(tmp_path) == []
    assert main(args) == 0  # the dead worker's claim does not block the re-run
    assert len(_finals(tmp_path)) == 1


def test_killed_sweep_resumes_without_redoing_or_missing_runs(tmp_path: Path, trainings: Counter) -> None:
    args = ["sweep", "--dataset", "digits", "--protocols", "full", "random", "random+drop", "--densities", "0.3", "0.6", "--seeds", "1",
            "--epochs", "20", "--query-inits", "1", "--no-progress", "--out", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, "-m", "deep", *args], cwd=ROOT, stdout=subprocess.DEVNULL)
    _wait_for(lambda: any(tmp_path.glob("final/*/done")))
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    done_before = {run.key for run in _finals(tmp_path)}
    assert 1 <= len(done_before) < 5  # killed half-way: some runs finished, some not
    assert main(args) == 0
    runs = _finals(tmp_path)
    assert len(runs) == 5 and done_before <= {run.key for run in runs}
    assert trainings["final"] == 5 - len(done_before)  # only the missing runs were trained
    assert len(list((tmp_path / "final").iterdir())) == 5  # no run folder twice


SWEEP = ["sweep", "--dataset", "digits", "--protocols", "full", "random", "el2n", "random+el2nq", "el2n+drop", "random+drop",
         "--densities", "0.3", "0.6", "--seeds", "1", *FAST]


def test_sweep_counts_quotas_and_cache(tmp_path: Path, trainings: Counter) -> None:
    assert main([*SWEEP, "--out", str(tmp_path)]) == 0
    runs = _finals(tmp_path)
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
    # One query training: el2n's short query model is also the one random+drop and el2n+drop take recalls from.
    assert trainings == Counter(final=11, query=1)
    assert main([*SWEEP, "--out", str(tmp_path)]) == 0
    assert trainings == Counter(final=11, query=1)  # cached: nothing trained again
    assert main([*SWEEP, "--out", str(tmp_path), "--recall-source", "separate"]) == 0
    assert trainings == Counter(final=15, query=2)  # DRoP's 4 runs again, from a full-length recall model


def test_scorer_without_training_needs_no_query_epochs(tmp_path: Path, trainings: Counter) -> None:
    args = ["sweep", "--dataset", "digits", "--protocols", "random+randomq", "--densities", "0.5", "--seeds", "1", *FAST, "--out", str(tmp_path)]
    assert main(args) == 0
    (run,) = _finals(tmp_path)
    assert run.metrics["num_kept"] == int(np.floor(0.5 * run.metrics["num_train"] + 0.5))
    assert trainings == Counter(final=1)


GRID = ["--densities", "0.5", "--seeds", "1", *FAST]


def test_extending_a_store_trains_only_what_is_new(tmp_path: Path, trainings: Counter) -> None:
    out = ["--out", str(tmp_path)]
    assert main(["sweep", "--dataset", "digits", "--protocols", "full", "random", "random+drop", *GRID, *out]) == 0
    first = _tree(tmp_path)
    assert trainings == Counter(final=3, query=1)
    bigger = ["sweep", "--dataset", "digits", "--protocols", "full", "random", "random+drop", "el2n", "forgetting+drop",
              "--densities", "0.3", "0.5", "--seeds", "2", *FAST, *out]
    assert main(bigger) == 0
    after = _tree(tmp_path)
    assert {path: after[path] for path in first} == first  # every finished task kept its directory and bytes
    # New: 15 final runs (9 per seed, less the 3 of seed 0 that exist); the full-length forgetting queries of both
    # seeds (forgetting+drop's recalls too) and the short query of seed 1 (el2n's and random+drop's recalls).
    assert trainings == Counter(final=18, query=4)
    assert len(load_results(tmp_path)) == 18 and "seeds" not in format_table(load_results(tmp_path))
    assert main(["train", "--dataset", "digits", "--protocol", "random+drop", "--density", "0.5", "--seed", "0", *FAST, *out]) == 0
    assert main(["train", "--dataset", "digits", "--protocol", "forgetting+drop", "--density", "0.3", "--seed", "1", *FAST, *out]) == 0
    assert trainings == Counter(final=18, query=4)  # `train` of runs a sweep finished trains nothing
    # No two different tasks trained identical models: seeds are independent replicates.
    digests = [run.metrics["weights_sha256"] for kind in ("query", "final") for run in RunStore(tmp_path).runs(kind)]
    assert len(digests) == 18 + 4 and len(set(digests)) == len(digests)


def test_a_rerun_reports_identically(tmp_path: Path) -> None:
    args = ["sweep", "--dataset", "digits", "--protocols", "full", "random", "random+drop", *GRID, "--out", str(tmp_path)]
    assert main(args) == 0
    table = format_table(load_results(tmp_path))
    assert main(args) == 0
    assert format_table(load_results(tmp_path)) == table


def _run_tasks(out: Path) -> dict[str, tuple[dict, dict[str, np.ndarray]]]:
    """Every finished task by kind and name: metrics without timings, and its arrays."""
    tasks = {}
    store = RunStore(out)
    for kind in KINDS:
        for run in store.runs(kind):
            metrics = {k: v for k, v in run.metrics.items() if k not in ("train_seconds", "resumed_from_epochs")}
            tasks[f"{kind}/{run.key}"] = (metrics, {name: run.array(name) for name in run.array_names()})
    return tasks


KILLS = [
    (["--protocols", "random", "--method", "erm"], "save:2", "final"),
    (["--protocols", "random", "--method", "cdbw"], "write:3", "final"),
    (["--protocols", "random", "--method", "group_dro"], "save:3", "final"),
    (["--protocols", "random", "--method", "jtt"], "save:2", "final"),
    (["--protocols", "random", "--method", "subg", "--dataset", "debug"], "save:1", "final"),
    (["--protocols", "forgetting"], "write:2", "query"),
    (["--protocols", "dynamic_uncertainty"], "save:4", "query"),
]


@pytest.mark.parametrize("args, kill, killed", KILLS, ids=[f"{a[3] if len(a) > 3 else a[1]}-{k}" for a, k, _ in KILLS])
def test_a_killed_training_resumes_bit_identically(
    tmp_path: Path, hooks: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], kill: str, killed: str
) -> None:
    dataset = [] if "--dataset" in args else ["--dataset", "digits"]  # a flag is given once (repeats are refused)
    grid = ["sweep", *dataset, *args, "--densities", "0.5", "--seeds", "1", "--epochs", "6", "--query-inits", "1",
            "--no-progress", "--checkpoint-every", "1"]
    env = {**os.environ, "KILL_AT": kill, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run([sys.executable, "-m", "deep", *grid, "--out", str(tmp_path / "killed")], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL)
    assert proc.returncode == -signal.SIGKILL
    (task,) = [p for p in (tmp_path / "killed" / killed).iterdir() if (p / "checkpoint.pt").exists()]
    assert not (task / "done").exists()
    assert main([*grid, "--out", str(tmp_path / "killed")]) == 0  # resumes from the last whole checkpoint
    assert main([*grid, "--out", str(tmp_path / "straight")]) == 0
    resumed, straight = _run_tasks(tmp_path / "killed"), _run_tasks(tmp_path / "straight")
    assert sorted(resumed) == sorted(straight)
    for name, (metrics, arrays) in straight.items():
        assert resumed[name][0] == metrics, name  # weights_sha256 included: the same weights
        for array, value in arrays.items():
            np.testing.assert_array_equal(resumed[name][1][array], value, err_msg=f"{name}: {array}")
    mode, count = kill.split(":")
    epoch = int(count) - (mode == "write")  # a kill mid-write leaves the checkpoint before it
    assert read_json(task / "metrics.json")["resumed_from_epochs"] == [epoch]
    assert not list(task.glob("checkpoint.pt")) and not list(task.glob(".*.tmp"))  # cleaned up once done


def test_concurrent_sweeps_on_one_store_train_every_task_once(tmp_path: Path, worker_trainings) -> None:
    out = ["--out", str(tmp_path / "runs")]
    a = ["sweep", "--dataset", "digits", "--protocols", "full", "random", "random+drop", "el2n", *GRID[:-3], *out]
    b = ["sweep", "--dataset", "digits", "--protocols", "random", "random+drop", "el2n+drop", *GRID[:-3], *out]
    procs = [subprocess.Popen([sys.executable, "-m", "deep", *argv, "--query-inits", "1", "--no-progress"], cwd=ROOT,
                              stdout=subprocess.DEVNULL) for argv in (a, b)]
    assert [p.wait() for p in procs] == [0, 0]
    store = RunStore(tmp_path / "runs")
    finals = list(store.runs("final"))
    assert sorted(r.config["protocol"] for r in finals) == ["el2n", "el2n+drop", "full", "random", "random+drop"]
    # el2n's short query (every DRoP run's recalls too), trained once although both sweeps needed it
    assert worker_trainings() == Counter(final=5, query=1)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "nope"], "unknown dataset"),
        (["train", "--dataset", "digits", "--model", "nope"], "unknown model"),
        (["sweep", "--dataset", "digits", "--protocols", "nope"], "unknown protocol"),
        (["sweep", "--dataset", "digits", "--densities", "1.5"], "densities"),
        (["sweep", "--dataset", "digits", "--densities", "0"], "densities"),
        (["sweep", "--dataset", "digits", "--protocols", "forgetting", "--query-epochs", "forgetting=0"], "forgetting"),
        (["train", "--dataset", "npz"], "npz"),
        (["sweep", "--dataset", "digits", "--recall-prior", "-1"], "recall-prior"),
        (["train", "--dataset", "digits", "--epochs", "0"], "--epochs"),
        (["sweep", "--dataset", "digits", "--query-inits", "0"], "--query-inits"),
        (["sweep", "--dataset", "digits", "--seeds", "0"], "--seeds"),
        (["train", "--dataset", "digits", "--protocol", "full", "--density", "0.3"], "--protocol full"),
        (["sweep", "--dataset", "digits", "--scorer-option", "dynamic_uncertainty.size=3"], "no option 'size'"),
        (["sweep", "--dataset", "digits", "--scorer-option", "nope.window=3"], "unknown scorer"),
    ],
)
def test_bad_input_fails_before_training(
    tmp_path: Path, trainings: Counter, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    assert main([*argv, "--out", str(tmp_path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert trainings == Counter()
    assert not any(tmp_path.iterdir())  # nothing left behind


def test_an_older_store_gets_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "_query").mkdir()
    assert main(["sweep", "--dataset", "digits", *GRID, "--out", str(tmp_path)]) == 2
    assert "older version" in capsys.readouterr().err


def test_scorer_option_reaches_the_scores_task(tmp_path: Path) -> None:
    args = ["sweep", "--dataset", "digits", "--protocols", "dynamic_uncertainty", *GRID, "--out", str(tmp_path)]
    assert main([*args, "--scorer-option", "dynamic_uncertainty.window=3"]) == 0
    assert main(args) == 0  # the default window is another scores task (and another final run)
    windows = sorted(run.config["options"]["window"] for run in RunStore(tmp_path).runs("scores"))
    assert windows == [3, 10] and len(list(RunStore(tmp_path).runs("query"))) == 1  # one query training serves both
    summary = format_summary(load_results(tmp_path))  # two lines, told apart by the option
    assert "dynamic_uncertainty (window=3, windows=paper)" in summary
    assert "dynamic_uncertainty (window=10, windows=paper)" in summary


def test_quota_exponent_and_allocation_reach_the_counts_and_the_report(tmp_path: Path) -> None:
    args = ["sweep", "--dataset", "digits", "--protocols", "random+drop", "--dataset", "digits", "--imbalance", "4", *GRID, "--out", str(tmp_path)]
    assert main(args) == 0
    assert main([*args, "--quota-exponent", "0.5", "--allocation", "count"]) == 0
    runs = {(r.config["quota_exponent"], r.config["allocation"]): r for r in _finals(tmp_path)}
    assert sorted(runs) == [(0.5, "count"), (1.0, "density")]
    for (beta, allocation), run in runs.items():
        m = run.metrics
        expected = drop_quotas(0.5, m["class_sizes"], m["recalls"], exponent=beta, allocation=allocation)
        np.testing.assert_array_equal(m["class_counts"], expected)
    assert runs[(0.5, "count")].metrics["class_counts"] != runs[(1.0, "density")].metrics["class_counts"]
    assert "quota_exponent" in format_table(load_results(tmp_path))
    summary = format_summary(load_results(tmp_path))
    assert "random+drop (β=0.5, count allocation)" in summary


def test_dry_run_prints_the_resolved_plan_without_data_or_training(
    tmp_path: Path, trainings: Counter, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "runs"
    argv = ["sweep", "--dataset", "cifar100", "--data", str(tmp_path / "nowhere"), "--dry-run", "--out", str(out)]
    assert main(argv) == 0  # the data folder does not exist: nothing is read
    plan = json.loads(capsys.readouterr().out)
    assert plan["model"] == "vgg19" and plan["train"]["epochs"] == 160 and plan["train"]["milestones"] == [80, 120]
    assert plan["train"]["weight_decay"] == 5e-4 and plan["train"]["translate"] == 0.15
    assert plan["query"]["el2n"] == {"epochs": 16, "inits": 5, "options": {}}  # 5 inits at 10% of the schedule
    assert plan["recalls"] == {"el2n+drop": {"epochs": 16, "inits": 5}, "random+drop": {"epochs": 16, "inits": 1}}
    assert (plan["recall_prior"], plan["recall_source"], plan["allocation"]) == (0.0, "scorer", "density")
    # 6 protocols x 9 densities x 3 seeds, full once per seed; 5 el2n query models per seed, random+drop's recall
    # model being el2n's first.
    assert plan["counts"] == {"query": 15, "scores": 3, "recalls": 6, "final": 3 + 5 * 9 * 3, "subset": 0,
                              "evaluation": 0, "selection": 0}
    finals = [t for t in plan["tasks"] if t["kind"] == "final"]
    full = next(t for t in finals if t["protocol"] == "full")
    assert full["full_data_epochs"] == 160
    pruned = next(t for t in finals if t["protocol"] == "random" and t["density"] == 0.1)
    assert pruned["epochs"] == int(0.55 * 160 / 0.1) and pruned["full_data_epochs"] == pytest.approx(0.1 * pruned["epochs"])
    assert plan["total_full_data_epochs"] == pytest.approx(sum(t["full_data_epochs"] for t in plan["tasks"]), abs=0.1)
    assert trainings == Counter() and not out.exists() and "total_note" not in plan
    assert main([*argv, "--method", "jtt", "--protocols", "full"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["total_note"].startswith("jtt: a lower bound")  # its upsampled set is sized by its errors


def test_dataset_defaults_reach_the_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["sweep", "--dataset", "digits", "--protocols", "random+drop", "--dry-run", *GRID]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["model"], plan["recall_prior"]) == ("mlp", 1.0)  # small CPU data: Laplace-smoothed recalls
    assert main(["sweep", "--dataset", "digits", "--protocols", "random+drop", "--recall-prior", "0", "--dry-run",
                 *GRID]) == 0
    assert json.loads(capsys.readouterr().out)["recall_prior"] == 0.0
    assert main(["sweep", "--dataset", "digits", "--protocols", "forgetting+drop", "--never-learned", "first",
                 "--dry-run", *GRID]) == 0
    assert json.loads(capsys.readouterr().out)["query"]["forgetting"]["options"] == {"never_learned": "first"}
    assert main(["sweep", "--dataset", "waterbirds", "--pretrained", "none", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["model"] == "resnet50_imagenet" and plan["train"]["epochs"] == 300 and "weights" not in plan
