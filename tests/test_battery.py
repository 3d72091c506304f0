"""The hostile-input and fault battery of issue 10 for the command lines, the run store, the report and the export
(the dataset loaders' findings are tested with the loaders).

A bad value gets exit status 2 and one line that names the flag or file, no traceback, and nothing written. A damaged
store is reported (by path, with `python -m deep check RUNS --fix` as the way out) or recomputed, never looped on,
waited on or used as if it were sound. Any other error is one line and exit status 1, `--debug` shows the traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import deep
import deep.cli
import toy.__main__
from deep.cli import main
from deep.report import load_results
from deep.runs import CLAIM, DONE, read_json
from tests.conftest import TINY_SWEEP

SWEEP = ["sweep", *TINY_SWEEP, "--out", "runs"]
TRAIN = ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--no-progress", "--out", "runs"]
FIGURES = ["figures", "--no-progress", "--only", "theory"]


def _run(argv: list[str], capsys: pytest.CaptureFixture, entry=main) -> tuple[int, str]:
    """Exit status and stderr of one command run in this process (argparse's refusals included)."""
    try:
        status = entry(argv)
    except SystemExit as exit:
        status = exit.code
    return status, capsys.readouterr().err


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _cli(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """`python -m deep ARGS` in a process of its own, this checkout first on its path; fails the test on a hang."""
    paths = [str(Path(deep.__file__).parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])]
    # The same torch thread count as this process: reductions summed in another order train other weights, and the
    # tests compare a run recomputed there with one made here.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run([sys.executable, "-m", "deep", *args], capture_output=True, text=True, timeout=timeout, env=env)


def _reported(root: Path | str) -> list[dict]:
    """Every number the report shows (wall-clock time aside, which a recomputation may change)."""
    return [{k: v for k, v in row.items() if k != "train_seconds"} for row in load_results(root)]


def _no_cuda(param: list[str], named: str, id: str) -> object:
    return pytest.param(param, named, id=id, marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here"))


# (command line, what the one-line message must name). Run in an empty folder holding only the file `a_file`.
BAD_VALUES = [
    *[pytest.param([*SWEEP, flag, value], flag, id=f"{flag} {value}") for flag, value in [
        ("--lr", "inf"), ("--lr", "nan"), ("--lr", "0"), ("--lr", "-1"), ("--epochs", "0"), ("--epochs", "-1"),
        ("--epochs", "2.5"), ("--batch-size", "0"), ("--momentum", "-0.1"), ("--momentum", "nan"), ("--momentum", "1"),
        ("--weight-decay", "-1"), ("--weight-decay", "inf"), ("--gamma", "0"), ("--gamma", "nan"),
        ("--label-smoothing", "1"), ("--label-smoothing", "-0.1"), ("--min-count", "-5"), ("--imbalance", "0.5"),
        ("--imbalance", "nan"), ("--split-seed", "-1"), ("--densities", "nan"), ("--densities", "0"),
        ("--densities", "1.5"), ("--query-inits", "0"), ("--query-inits", "-1"), ("--recall-epochs", "0"),
        ("--recall-epochs", "-1"), ("--seeds", "0"), ("--recall-prior", "nan"), ("--recall-prior", "-1"),
        ("--quota-exponent", "0"), ("--milestones", "0"), ("--checkpoint-every", "0"), ("--workers", "0"),
        ("--time", "0"), ("--mem", "nan"), ("--gpus-per-task", "-1"), ("--device", "foo"), ("--device", "cuda:99"),
        ("--out", "a_file"), ("--query-epochs", "el2n=0"),
    ]],
    _no_cuda([*SWEEP, "--device", "cuda"], "--device", id="--device cuda (CPU-only torch)"),
    pytest.param([*SWEEP, "--method", "group_dro", "--dro-step", "0"], "--dro-step", id="--dro-step 0"),
    pytest.param([*SWEEP, "--method", "jtt", "--jtt-upweight", "0.5"], "--jtt-upweight", id="--jtt-upweight 0.5"),
    pytest.param([*SWEEP, "--method", "jtt", "--jtt-epochs", "0"], "--jtt-epochs", id="--jtt-epochs 0"),
    pytest.param([*SWEEP, "--protocols", "nonsense"], "nonsense", id="--protocols nonsense"),
    pytest.param([*TRAIN, "--seed", "-1"], "--seed", id="train --seed -1"),
    pytest.param([*TRAIN, "--protocol", "random", "--density", "0"], "--density", id="train --density 0"),
    pytest.param([*TRAIN, "--protocol", "random", "--density", "nan"], "--density", id="train --density nan"),
    pytest.param([*TRAIN, "--density", "0.3"], "--density", id="train --protocol full --density 0.3"),
    pytest.param([*TRAIN, "--out", "a_file"], "--out", id="train --out a_file"),
    pytest.param(["report", "runs", "--out", "a_file"], "--out", id="report --out a_file"),
    pytest.param(["report", "missing"], "missing", id="report missing"),
    pytest.param(["export-scores", "runs", "--out", "a_file"], "--out", id="export-scores --out a_file"),
    pytest.param(["export-scores", "missing", "--out", "export"], "missing", id="export-scores missing"),
    pytest.param(["check", "missing"], "missing", id="check missing"),
    pytest.param(["check", "a_file"], "a_file", id="check a_file"),
]


@pytest.mark.parametrize("argv, named", BAD_VALUES)
def test_a_bad_value_is_refused_at_the_door(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture, argv: list[str], named: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    status, err = _run(argv, capsys)
    assert status == 2 and named in err and "Traceback" not in err, err
    assert _tree(tmp_path) == ["a_file"]


def test_device_names_are_checked_against_the_gpus_torch_sees(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    parse = deep.cli.build_parser().parse_args
    assert [parse([*SWEEP, "--device", d]).device for d in ("cpu", "cuda", "cuda:1")] == ["cpu", "cuda", "cuda:1"]
    status, err = _run([*SWEEP, "--device", "cuda:2"], capsys)
    assert status == 2 and "argument --device: cuda:2: torch sees 2 GPU(s) here, cuda:0 .. cuda:1" in err


@pytest.mark.parametrize("argv, named", [
    pytest.param(["--seed", "-1"], "--seed", id="--seed -1"),
    pytest.param(["--out", "a_file"], "--out", id="--out a_file"),
    pytest.param(["--datasets", "0"], "--datasets", id="--datasets 0"),
    pytest.param(["--points", "1"], "--points", id="--points 1"),
])
def test_toy_figures_refuse_a_bad_value_at_the_door(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture, argv: list[str], named: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    status, err = _run([*FIGURES, *argv], capsys, toy.__main__.main)
    assert status == 2 and named in err and "Traceback" not in err, err
    assert _tree(tmp_path) == ["a_file"]


@pytest.fixture
def read_only(tmp_path: Path) -> Path:
    """A folder no one can write into, root included (made immutable where chmod does not stop root)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    if os.geteuid() == 0 and not immutable:
        pytest.skip("root writes into any folder and chattr is not available here")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


@pytest.mark.parametrize("argv, entry", [
    pytest.param([*SWEEP[:-1], "read_only/runs"], main, id="sweep"),
    pytest.param([*TRAIN[:-1], "read_only/runs"], main, id="train"),
    pytest.param(["report", "runs", "--out", "read_only/report"], main, id="report"),
    pytest.param(["export-scores", "runs", "--out", "read_only/export"], main, id="export-scores"),
    pytest.param([*FIGURES, "--out", "read_only/figures"], toy.__main__.main, id="toy figures"),
])
def test_a_read_only_out_is_refused_at_the_door(read_only: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture, argv: list[str], entry) -> None:
    monkeypatch.chdir(read_only.parent)
    before = _tree(read_only.parent)
    status, err = _run(argv, capsys, entry)
    assert status == 2 and "--out" in err and "cannot write in" in err and "Traceback" not in err, err
    assert _tree(read_only.parent) == before


@pytest.mark.parametrize("make, named", [
    pytest.param(lambda runs: (runs / "_query").write_text(""), "older version", id="_query is a file"),
    pytest.param(lambda runs: (runs / "query").write_text(""), "runs/query is a file", id="query is a file"),
    pytest.param(lambda runs: (runs / "store.json").write_text('{"format": 99}'), "format 99", id="store.json format 99"),
])
def test_a_store_of_another_layout_is_refused_before_anything_loads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, make, named: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    make(tmp_path / "runs")
    before = _tree(tmp_path)
    for argv in (SWEEP, TRAIN):
        status, err = _run(argv, capsys)
        assert status == 2 and named in err and "Traceback" not in err, err
    assert _tree(tmp_path) == before


# Faults of a finished store: each test works on a copy of the session's tiny store in a fresh folder.

@pytest.fixture
def runs(tiny_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the finished tiny store, as `runs` in the current folder."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_store, tmp_path / "runs")
    return Path("runs")


def _task(runs: Path, kind: str, **config: object) -> Path:
    """The folder of the one task of `kind` whose config has these values."""
    (path,) = [p for p in (runs / kind).iterdir() if all(read_json(p / "config.json").get(k) == v for k, v in config.items())]
    return path


def _refused_everywhere(named: Path, capsys: pytest.CaptureFixture) -> None:
    """report, export-scores and sweep refuse the damaged store naming the file and the way out, writing nothing."""
    for argv in (["report", "runs", "--out", "report"], ["export-scores", "runs", "--out", "export"], SWEEP):
        status, err = _run(argv, capsys)
        assert status == 2 and str(named) in err and "python -m deep check runs --fix" in err, err
        assert "Traceback" not in err and not Path("report").exists() and not Path("export").exists()


def _repaired_by_check_and_sweep(tiny_store: Path, capsys: pytest.CaptureFixture) -> None:
    """check reports (exit 3), check --fix repairs (exit 0), the sweep recomputes: the same numbers as before."""
    assert _run(["check", "runs"], capsys)[0] == 3
    assert _run(["check", "runs", "--fix"], capsys)[0] == 0
    assert _run(SWEEP, capsys)[0] == 0
    assert _run(["check", "runs"], capsys)[0] == 0
    assert _reported("runs") == _reported(tiny_store)


def test_configs_swapped_between_final_runs(runs: Path, tiny_store: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = _task(runs, "final", protocol="random"), _task(runs, "final", protocol="el2n+drop")
    a_text, b_text = (a / "config.json").read_text(), (b / "config.json").read_text()
    (a / "config.json").write_text(b_text)
    (b / "config.json").write_text(a_text)
    _refused_everywhere(runs / "final", capsys)
    _repaired_by_check_and_sweep(tiny_store, capsys)


def test_kept_indices_deleted_behind_done(runs: Path, tiny_store: Path, capsys: pytest.CaptureFixture) -> None:
    kept = _task(runs, "final", protocol="el2n+drop") / "kept.npy"
    kept.unlink()
    _refused_everywhere(kept, capsys)
    _repaired_by_check_and_sweep(tiny_store, capsys)


def test_truncated_metrics_of_a_final_run(runs: Path, tiny_store: Path, capsys: pytest.CaptureFixture) -> None:
    metrics = _task(runs, "final", protocol="random") / "metrics.json"
    metrics.write_text(metrics.read_text()[:40])
    _refused_everywhere(metrics, capsys)
    _repaired_by_check_and_sweep(tiny_store, capsys)


def test_a_garbled_store_json(runs: Path, tiny_store: Path, capsys: pytest.CaptureFixture) -> None:
    (runs / "store.json").write_text("{gar")
    _refused_everywhere(runs / "store.json", capsys)
    _repaired_by_check_and_sweep(tiny_store, capsys)


def test_a_damaged_query_training_is_recomputed_by_the_sweep_that_needs_it(
        runs: Path, tiny_store: Path, capsys: pytest.CaptureFixture) -> None:
    scores = _task(runs, "scores")
    query = runs / "query" / read_json(scores / "config.json")["queries"][0]
    (query / "metrics.json").write_text('{"epo')
    assert _run(SWEEP, capsys)[0] == 0  # finished runs do not read it: nothing to recompute yet
    assert _run(["check", "runs"], capsys)[0] == 3
    (scores / DONE).unlink()  # now the sweep must read the query training again
    status, err = _run(SWEEP, capsys)
    assert status == 0 and f"warning: {query / 'metrics.json'} is not valid JSON" in err and "Traceback" not in err
    assert _run(["check", "runs"], capsys)[0] == 0 and _reported("runs") == _reported(tiny_store)


def test_a_query_config_swapped_for_another_tasks_is_recomputed_not_looped_on(runs: Path, tiny_store: Path) -> None:
    scores = _task(runs, "scores")
    query = runs / "query" / read_json(scores / "config.json")["queries"][0]
    shutil.copy(scores / "config.json", query / "config.json")
    (scores / DONE).unlink()
    done = _cli(SWEEP, timeout=180)  # it used to loop forever at 0/N
    assert done.returncode == 0 and "does not belong" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert _cli(["check", "runs"], timeout=60).returncode == 0 and _reported("runs") == _reported(tiny_store)


@pytest.mark.parametrize("claim", ["", "garbage", "\x00\x01"])
def test_an_unreadable_claim_does_not_make_the_sweep_wait(runs: Path, tiny_store: Path, claim: str) -> None:
    final = _task(runs, "final", protocol="random")
    (final / DONE).unlink()
    (final / CLAIM).write_text(claim)  # a kill -9 between creating a claim and writing it
    done = _cli(SWEEP, timeout=120)  # not the 600 s a claim's heartbeat is given
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert _reported("runs") == _reported(tiny_store)


def test_temp_files_of_a_writer_killed_mid_write_are_cleaned(hooks: Path, tmp_path: Path, tiny_store: Path,
                                                             monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KILL_AT", "write:1")  # SIGKILL half-way through writing the first checkpoint
    killed = _cli([*SWEEP, "--checkpoint-every", "1"], timeout=180)
    assert killed.returncode == -9
    (temp,) = Path("runs").rglob(".*.tmp")
    assert main(["check", "runs", "--no-progress"]) == 3
    assert f"{temp}: temporary file of a writer that died" in capsys.readouterr().out
    monkeypatch.delenv("KILL_AT")
    assert _run(["check", "runs", "--fix", "--no-progress"], capsys)[0] == 0
    assert not temp.exists() and not (temp.parent / CLAIM).exists()
    assert _run(SWEEP, capsys)[0] == 0 and _reported("runs") == _reported(tiny_store)


def test_a_deleted_input_is_reported_and_recomputed(runs: Path, tiny_store: Path, capsys: pytest.CaptureFixture) -> None:
    scores = _task(runs, "scores")
    shutil.rmtree(scores)
    status, _ = _run(["check", "runs", "--no-progress"], capsys)
    assert status == 3
    assert _run(SWEEP, capsys)[0] == 0 and _run(["check", "runs"], capsys)[0] == 0
    assert _reported("runs") == _reported(tiny_store)


def test_export_into_the_store_itself_is_refused(runs: Path, capsys: pytest.CaptureFixture) -> None:
    before = _tree(runs)
    for out in ("runs", "runs/scores"):
        status, err = _run(["export-scores", "runs", "--out", out], capsys)
        assert status == 2 and "--out" in err and "Traceback" not in err
    assert _tree(runs) == before


def test_a_diverged_training_is_an_error_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    status, err = _run([*SWEEP, "--lr", "1e6"], capsys)
    assert status == 2 and "diverged" in err and "--lr" in err and "Traceback" not in err
    assert not list(tmp_path.rglob(DONE))


# The top-level handler.

def _broken(*args: object) -> int:
    raise RuntimeError("the disk is on fire\nTraceback (most recent call last):\n  ...\nOSError: no space left")


def test_an_unexpected_error_is_one_line_naming_the_command(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(deep.cli, "cmd_report", _broken)
    status, err = _run(["report", "runs"], capsys)
    assert status == 1 and err == ("error: python -m deep report failed: RuntimeError: the disk is on fire ... "
                                   "OSError: no space left (run again with --debug for the traceback)\n")
    for argv in (["--debug", "report", "runs"], ["report", "runs", "--debug"]):
        status, err = _run(argv, capsys)
        assert status == 1 and err.startswith("Traceback") and "in _broken" in err
        assert err.splitlines()[-1].startswith("error: python -m deep report failed")


def test_a_user_error_shows_its_traceback_only_with_debug(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(["report", str(tmp_path / "missing")], capsys) == (
        2, f"error: run folder {tmp_path / 'missing'} does not exist: pass the folder a sweep wrote its runs to\n")
    status, err = _run(["--debug", "report", str(tmp_path / "missing")], capsys)
    assert status == 2 and err.startswith("Traceback") and "FileNotFoundError" in err


def test_toy_has_the_same_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(toy.__main__, "make_figures", _broken)
    status, err = _run([*FIGURES, "--out", str(tmp_path)], capsys, toy.__main__.main)
    assert status == 1 and err.startswith("error: python -m toy figures failed: RuntimeError: the disk is on fire")
    assert len(err.splitlines()) == 1


# Issue 19, the second battery: values that are not what they seem, outputs over inputs, clocks, messages.

def _prune_files(folder: Path) -> None:
    """labels.npy (3 classes of 20), scores.npy, recalls.npy: the good inputs a case then spoils one of."""
    import numpy as np

    np.save(folder / "labels.npy", np.repeat(np.arange(3), 20))
    np.save(folder / "scores.npy", np.linspace(0.0, 1.0, 60))
    np.save(folder / "recalls.npy", np.array([0.5, 0.8, 0.9]))


def _spoil(name: str, make) -> object:
    import numpy as np

    return lambda folder: np.save(folder / name, make(np), allow_pickle=False)


PRUNE = ["prune", "--labels", "labels.npy", "--density", "0.5", "--out", "kept.npy"]
PRUNE_SCORES = [*PRUNE, "--protocol", "s", "--scores", "scores.npy"]
PRUNE_DROP = [*PRUNE, "--protocol", "random+drop", "--recalls", "recalls.npy"]


@pytest.mark.parametrize("spoil, argv, named", [
    pytest.param(_spoil("labels.npy", lambda np: np.arange(60) % 3 == 0), [*PRUNE, "--protocol", "random"],
                 ["--labels", "labels.npy", "bool"], id="bool labels"),
    pytest.param(_spoil("labels.npy", lambda np: np.array([0, 1, 2**63 + 5] * 20, dtype=np.uint64)),
                 [*PRUNE, "--protocol", "random"], ["--labels", "9223372036854775813"], id="uint64 label past int64"),
    pytest.param(_spoil("labels.npy", lambda np: np.array([0, 1, 2**40] * 20)), [*PRUNE, "--protocol", "random"],
                 ["--labels", "labels.npy", "1099511627776"], id="label 2**40, before any bincount"),
    pytest.param(_spoil("scores.npy", lambda np: np.linspace(0, 1, 60).astype(np.complex64)), PRUNE_SCORES,
                 ["--scores", "scores.npy", "complex"], id="complex64 scores"),
    pytest.param(_spoil("scores.npy", lambda np: np.array([b"1"] * 60)), PRUNE_SCORES,
                 ["--scores", "scores.npy", "bytes"], id="bytes scores"),
    pytest.param(_spoil("recalls.npy", lambda np: np.array([0.5, -0.25, 0.9])), PRUNE_DROP,
                 ["--recalls", "recalls.npy", "-0.25"], id="negative recall"),
    pytest.param(lambda folder: (folder / "recalls.csv").write_text("recall\n0.5\n-1e999\n0.9\n"),
                 [*PRUNE, "--protocol", "random+drop", "--recalls", "recalls.csv"],
                 ["--recalls", "recalls.csv", "line 3", "overflows float64"], id="csv recall -1e999"),
    pytest.param(_spoil("scores.npy", lambda np: np.full(60, np.finfo(np.float32).max, dtype=np.float32)),
                 PRUNE_SCORES, [], id="float32 max scores are accepted (no overflow into float64)"),
    pytest.param(lambda folder: _lying_npy(folder / "scores.npy"), PRUNE_SCORES,
                 ["--scores", "scores.npy", "header promises"], id="npy header promising 8 TB"),
    pytest.param(lambda folder: None, [*PRUNE_DROP, "--quota-exponent", "16.5"], ["--quota-exponent", "(0, 16]"],
                 id="--quota-exponent 16.5"),
    pytest.param(lambda folder: None, [*PRUNE_DROP, "--quota-exponent", "16"], [], id="--quota-exponent 16 accepted"),
    pytest.param(lambda folder: None, [*PRUNE_DROP, "--seed", "1", "--seed", "2"], ["--seed", "twice"],
                 id="prune --seed 1 --seed 2"),
    pytest.param(lambda folder: (folder / "recalls.csv").write_text("recall\n0.5\n0.8\n0.9\n"),
                 [*PRUNE, "--protocol", "random+drop", "--recalls", "recalls.csv"], [], id="csv recalls accepted"),
])
def test_numbers_from_files_are_what_they_seem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture, spoil, argv: list[str],
                                               named: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _prune_files(tmp_path)
    spoil(tmp_path)
    status, err = _run(argv, capsys)
    if not named:
        assert status == 0 and Path("kept.npy").is_file(), err
        return
    assert status == 2 and all(n in err for n in named) and "Traceback" not in err, err
    assert not Path("kept.npy").exists()


def _lying_npy(path: Path) -> None:
    import numpy as np

    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
        f.write(b"\0" * 64)


@pytest.mark.parametrize("out", ["labels.npy", "./scores.npy", "alias.npy"])
def test_prune_never_writes_over_its_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture, out: str) -> None:
    monkeypatch.chdir(tmp_path)
    _prune_files(tmp_path)
    (tmp_path / "alias.npy").symlink_to(tmp_path / "recalls.npy")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.npy")}
    argv = ["prune", "--labels", "labels.npy", "--density", "0.5", "--protocol", "s", "--scores", "scores.npy",
            "--recalls", "recalls.npy", "--out", out]
    status, err = _run(argv, capsys)
    assert status == 2 and f"--out {Path(out)}" in err and "destroy the input" in err, err
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.npy")} == before


@pytest.mark.parametrize("argv, named", [
    pytest.param([*SWEEP, "--dry-run", "--query-epochs", "el2n=1", "--query-epochs", "el2n=3"],
                 ["--query-epochs", "el2n", "twice"], id="--query-epochs repeated as two flags"),
    pytest.param([*SWEEP, "--dry-run", "--scorer-option", "dynamic_uncertainty.window=3",
                  "dynamic_uncertainty.window=4"], ["--scorer-option", "dynamic_uncertainty.window", "twice"],
                 id="--scorer-option key twice"),
    pytest.param([*SWEEP, "--dry-run", "--scores", "subset=a_file"], ["--scores", "subset"], id="score named subset"),
    pytest.param([*SWEEP, "--dry-run", "--scores", "el2n=a_file"], ["--scores", "el2n"], id="score named el2n"),
    pytest.param(["sweep", "--dataset", "digits", "--dry-run", "--seeds", "400000"], ["--seeds", "--dry-run", "100,000"],
                 id="400000 seeds"),
    pytest.param([*SWEEP, "--epochs", "2", "--epochs", "3"], ["--epochs", "twice"], id="--epochs 2 --epochs 3"),
    pytest.param([*SWEEP[:-1], ""], ["--out", "empty"], id="sweep --out ''"),
    pytest.param(["export-scores", "runs", "--out", " "], ["--out", "empty"], id="export-scores --out ' '"),
    pytest.param([*SWEEP, "--quota-exponent", "1e9"], ["--quota-exponent", "(0, 16]"], id="--quota-exponent 1e9"),
])
def test_messages_name_the_flag_and_never_drop_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture, argv: list[str],
                                                       named: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")
    status, err = _run(argv, capsys)
    assert status == 2 and all(n in err for n in named) and "Traceback" not in err, err
    assert _tree(tmp_path) == ["a_file"]


def test_repeated_list_flags_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parse = deep.cli.build_parser().parse_args
    args = parse(["sweep", "--densities", "0.3", "--protocols", "random", "--protocols", "el2n", "--densities", "0.7"])
    assert args.protocols == ["random", "el2n"] and args.densities == [0.3, 0.7]
    assert parse([*SWEEP, "--lr", "0.1", "--lr", "0.1"]).lr == 0.1  # the same value twice is one value


def test_a_folder_of_other_data_is_not_called_an_older_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "bert").mkdir(parents=True)
    (tmp_path / "runs" / "bert" / "config.json").write_text("{}")  # e.g. a model folder
    status, err = _run(SWEEP, capsys)
    assert status == 2 and "not a run store" in err and "older version" not in err and "runs/bert" in err, err


def test_a_report_that_fails_half_way_leaves_no_partial_output(runs: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    import deep.report

    def half(root, out, **kwargs):
        (Path(out) / "robustness.png").write_bytes(b"half a figure")
        raise OSError("no space left on device")

    monkeypatch.setattr(deep.report, "write_report", half)
    (Path("report")).mkdir()
    (Path("report") / "mine.txt").write_text("kept")
    status, err = _run(["report", "runs", "--out", "report"], capsys)
    assert status == 1 and "no space left" in err
    assert _tree(Path("report")) == ["mine.txt"] and not list(Path(".").glob(".report.*"))
    for out in ("runs", "runs/scores"):
        status, err = _run(["report", "runs", "--out", out], capsys)
        assert status == 2 and "--out" in err and "run store" in err, err


def test_a_claim_dated_ahead_is_reported_by_check_and_announced_by_the_waiting_sweep(
        runs: Path, capsys: pytest.CaptureFixture) -> None:
    final = _task(runs, "final", protocol="random")
    (final / DONE).unlink()
    (final / CLAIM).write_text("token node7 4242\n")
    ahead = __import__("time").time() + 900  # node7's clock is 15 minutes ahead of ours
    os.utime(final / CLAIM, (ahead, ahead))
    status, out = main(["check", "runs", "--no-progress"]), capsys.readouterr().out
    assert status == 3 and f"{final / CLAIM}: claim of process 4242 on node7 dated 900 s in the future" in out
    from deep.runs import claim_wait_message

    said = claim_wait_message(final / CLAIM, 600.0)
    assert said.startswith(f"waiting for {final}, claimed by process 4242 on node7") and "at most 600 s" in said


def test_a_folder_dataset_reads_16_bit_images_by_value_and_refuses_a_cycle_in_a_test_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np
    from PIL import Image

    from deep.data.imagefolder import load_imagefolder

    monkeypatch.setenv("DROP_CACHE", str(tmp_path / "cache"))
    for split in ("train", "test"):
        for label, value in (("dark", 4000), ("bright", 60000)):  # PIL's own convert makes both 255
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((2, 2), value, dtype=np.uint16)).save(tmp_path / split / label / f"{i}.png")
    raw = load_imagefolder(tmp_path)
    assert raw.classes == ["bright", "dark"]
    assert {int(x.max()) for x, y in zip(raw.train.x, raw.train.y) if y == 1} == {16}  # 4000 * 255 / 65535 = 15.6
    assert {int(x.max()) for x, y in zip(raw.train.x, raw.train.y) if y == 0} == {233}
    (tmp_path / "test" / "dark" / "back").symlink_to(tmp_path / "test", target_is_directory=True)
    with pytest.raises(ValueError, match="test/dark/back is a link to the folder .* a cycle"):
        load_imagefolder(tmp_path)
