"""`python -m deep check` and the store's read side: every problem found and named, the safe repairs made, and no
corruption of a finished store that changes a reported number without an error."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.check import check_store
from deep.cli import main
from deep.export import export_store
from deep.report import load_results
from deep.runs import FORMAT, CorruptRunError, RunStore, StoreFormatError, config_hash, read_json

QUERY = {"kind": "query", "seed": 0}
SCORES = {"kind": "scores", "queries": [config_hash(QUERY)]}
FINAL = {"kind": "final", "scores": config_hash(SCORES), "recalls": None, "seed": 0}


def _store(root: Path) -> RunStore:
    """A finished query -> scores -> final chain, written the way tasks write it."""
    store = RunStore(root)
    store.finish(QUERY, {"epochs": 1}, {"trace": np.arange(4.0)}, {"model.pt": b"weights"})
    store.finish(SCORES, {"inits": 1}, {"scores": np.linspace(0, 1, 5)})
    store.finish(FINAL, {"accuracy": 0.5}, {"kept": np.array([0, 3])})
    return store


def _check(root: Path, *flags: str, capsys: pytest.CaptureFixture) -> tuple[int, list[str]]:
    status = main(["check", str(root), "--no-progress", *flags])
    return status, capsys.readouterr().out.splitlines()


def test_a_sound_store_is_clean(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _store(tmp_path)
    assert _check(tmp_path, capsys=capsys) == (0, [f"{tmp_path}: 3 tasks (3 finished): no problems"])


def test_damaged_tasks_are_named_and_fixed_by_marking_them_unfinished(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    (store.path(FINAL) / "kept.npy").unlink()
    (store.path(SCORES) / "metrics.json").write_text('{"inits": ')
    status, lines = _check(tmp_path, capsys=capsys)
    assert status == 3 and len(lines) == 3
    assert lines[0].startswith(f"{store.path(SCORES) / 'metrics.json'} is not valid JSON")
    assert lines[1].startswith(f"{store.path(FINAL) / 'kept.npy'} is missing")
    assert all(line.endswith("--fix will mark the task unfinished, so that the next sweep recomputes it") for line in lines[:2])
    assert lines[2] == f"{tmp_path}: 3 tasks (1 finished, 2 damaged): 2 problems"
    assert store.done(FINAL) and store.done(SCORES)  # without --fix nothing changes

    status, lines = _check(tmp_path, "--fix", capsys=capsys)
    assert status == 0 and lines[-1] == f"{tmp_path}: 3 tasks (1 finished, 2 unfinished): 2 problems, 2 fixed"
    assert all(line.endswith("fixed, marked unfinished: the next sweep recomputes it") for line in lines[:2])
    assert not store.done(FINAL) and not store.done(SCORES) and store.done(QUERY)
    assert _check(tmp_path, capsys=capsys)[0] == 0


def test_a_consumer_of_an_input_just_marked_unfinished_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    (store.path(SCORES) / "scores.npy").write_bytes(b"garbage")
    status, lines = _check(tmp_path, "--fix", capsys=capsys)
    assert status == 3  # the final run's input is gone until the sweep recomputes it
    assert lines[1] == (f"{store.path(FINAL)} consumed {store.path(SCORES)}, which is not finished: run the command "
                        "that made it again: it recomputes missing inputs (and stores --kept and --scores files again)")


def test_missing_inputs_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    shutil.rmtree(store.path(QUERY))
    status, lines = _check(tmp_path, "--fix", capsys=capsys)
    assert status == 3 and lines[0].startswith(f"{store.path(SCORES)} consumed {store.path(QUERY)}, which is not finished")


def test_configs_swapped_between_tasks_are_both_damaged(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    a, b = store.path(QUERY) / "config.json", store.path(FINAL) / "config.json"
    a_text, b_text = a.read_text(), b.read_text()
    a.write_text(b_text)
    b.write_text(a_text)
    status, lines = _check(tmp_path, capsys=capsys)
    assert status == 3 and [line.split(" does not belong")[0] for line in lines[:2]] == [str(a), str(b)]


def test_stale_claims_and_temp_files_of_dead_writers_are_deleted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    unfinished = store.path({"kind": "final", "seed": 1})
    unfinished.mkdir()
    (unfinished / "claim").write_text("")  # a kill -9 between creating and writing a claim
    (unfinished / ".metrics.json.0a1b.tmp").write_text("{")  # a kill -9 mid-write
    (tmp_path / ".store.json.0a1b.tmp").write_text("{")
    status, lines = _check(tmp_path, capsys=capsys)
    assert status == 3 and lines[:-1] == [
        f"{tmp_path / '.store.json.0a1b.tmp'}: temporary file of a writer that died: --fix will delete it",
        f"{unfinished / 'claim'}: stale claim (unreadable): --fix will delete it",
        f"{unfinished / '.metrics.json.0a1b.tmp'}: temporary file of a writer that died: --fix will delete it",
    ]
    assert _check(tmp_path, "--fix", capsys=capsys)[0] == 0
    assert os.listdir(unfinished) == [] and not (tmp_path / ".store.json.0a1b.tmp").exists()


def test_tasks_owned_by_live_workers_are_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    mine = store.path({"kind": "final", "seed": 1})
    mine.mkdir()
    (mine / "claim").write_text(f"abc {socket.gethostname()} {os.getpid()}\n")  # this live process
    (mine / ".checkpoint.pt.0a1b.tmp").write_text("half")  # being written
    elsewhere = store.path({"kind": "final", "seed": 2})
    elsewhere.mkdir()
    (elsewhere / "claim").write_text("abc otherhost 1\n")  # fresh heartbeat from another node
    (elsewhere / ".claim.def.tmp").write_text("a draft")  # a worker about to claim
    assert _check(tmp_path, "--fix", capsys=capsys) == (0, [f"{tmp_path}: 5 tasks (3 finished, 2 in progress): no problems"])
    assert (mine / ".checkpoint.pt.0a1b.tmp").exists() and (elsewhere / ".claim.def.tmp").exists()
    old = time.time() - 3600
    os.utime(elsewhere / "claim", (old, old))  # its heartbeat stopped an hour ago
    status, lines = _check(tmp_path, capsys=capsys)
    assert status == 3 and lines[0].startswith(f"{elsewhere / 'claim'}: stale claim")


def test_the_format_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _store(tmp_path)
    (tmp_path / "store.json").unlink()
    assert _check(tmp_path, capsys=capsys)[1][0] == f"{tmp_path / 'store.json'} is missing: --fix will write {{\"format\": {FORMAT}}} into it"
    assert _check(tmp_path, "--fix", capsys=capsys)[0] == 0 and read_json(tmp_path / "store.json") == {"format": FORMAT}
    (tmp_path / "store.json").write_text('{"form')
    status, lines = _check(tmp_path, "--fix", capsys=capsys)
    assert status == 0 and lines[0].startswith(f"{tmp_path / 'store.json'} is not valid JSON")
    assert RunStore(tmp_path).done(FINAL)


def test_a_store_of_another_format_is_reported_and_not_scanned(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    (store.path(FINAL) / "kept.npy").unlink()  # not reported: hashes of another format mean nothing here
    (tmp_path / "store.json").write_text('{"format": 99}')
    status, lines = _check(tmp_path, "--fix", capsys=capsys)
    assert status == 3 and len(lines) == 2 and f"has format 99, this version reads format {FORMAT}" in lines[0]
    assert store.path(FINAL).joinpath("done").exists()


def test_files_where_folders_belong(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _store(tmp_path)
    (tmp_path / "final" / "notes.txt").write_text("mine")
    status, lines = _check(tmp_path, "--fix", capsys=capsys)
    assert status == 3 and lines[0] == f"{tmp_path / 'final' / 'notes.txt'} is a file where a task folder belongs: move it out of the run store"
    assert (tmp_path / "final" / "notes.txt").exists()  # never deleted: it may be the user's
    shutil.rmtree(tmp_path / "recalls", ignore_errors=True)
    (tmp_path / "recalls").write_text("")
    status, lines = _check(tmp_path, capsys=capsys)
    assert status == 3 and lines[0] == f"{tmp_path / 'recalls'} is a file where the folder of the recalls tasks belongs: move it out of the run store"
    with pytest.raises(StoreFormatError, match="recalls tasks"):
        RunStore(tmp_path)


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "does not exist"),
    (lambda root: root.write_text(""), "is a file, not a run folder"),
    (lambda root: root.mkdir(), "holds no run store"),
])
def test_what_is_not_a_store_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture, make, message: str) -> None:
    make(tmp_path / "runs")
    assert main(["check", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err


def test_runs_verify_every_file_and_say_what_to_do(tmp_path: Path) -> None:
    store = _store(tmp_path)
    (store.path(FINAL) / "kept.npy").unlink()
    with pytest.raises(CorruptRunError, match=rf"kept.npy is missing.*python -m deep check {tmp_path} --fix"):
        list(store.runs("final"))
    assert store.read(FINAL).metrics == {"accuracy": 0.5}  # a single read still trusts what it does not load


@pytest.mark.parametrize("content, message", [(None, "is missing"), ("[1]", "list JSON where an object belongs"),
                                               ("{", "not valid JSON")])
def test_stored_json_must_be_an_object(tmp_path: Path, content: str | None, message: str) -> None:
    store = _store(tmp_path)
    metrics = store.path(FINAL) / "metrics.json"
    metrics.unlink() if content is None else metrics.write_text(content)
    with pytest.raises(CorruptRunError, match=message):
        list(store.runs("final"))


# Property tests on a real finished store: a corruption either leaves every reported number as it was, or makes the
# report and the export refuse with an error naming the store; `check` flags exactly the corruptions that change
# anything; and `check --fix` leaves a store the commands read again.

def _observe(root: Path) -> str | Exception:
    """Everything the report and the export say about the store (as text), or the error they raise."""
    try:
        rows = load_results(root)
        with tempfile.TemporaryDirectory() as out:
            export_store(root, out)
            exported = {str(f.relative_to(out)): {k: v.tolist() for k, v in np.load(f).items()}
                        for f in sorted(Path(out).rglob("*.npz"))}
            manifest = read_json(Path(out) / "manifest.json")
    except (CorruptRunError, ValueError) as error:
        return error
    return json.dumps([rows, manifest, exported], sort_keys=True, default=str)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _corrupt(data: st.DataObject, root: Path) -> Path:
    """Apply one random corruption to the store at `root`; returns the file it damaged."""
    files = _files(root)
    action = data.draw(st.sampled_from(["flip", "truncate", "delete", "swap"]), label="action")
    if action == "swap":
        a, b = data.draw(st.lists(st.sampled_from([f for f in files if f.name == "config.json"]), min_size=2,
                                  max_size=2, unique=True), label="configs")
        a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
        a.write_bytes(b_bytes)
        b.write_bytes(a_bytes)
        return a
    # Deleting `done` is how the store itself marks a task unfinished (see check --fix): not a corruption.
    candidates = [f for f in files if f.name != "done"] if action == "delete" else files
    file = data.draw(st.sampled_from(candidates), label="file")
    content = bytearray(file.read_bytes())
    if action == "delete":
        file.unlink()
    elif action == "flip":
        at = data.draw(st.integers(0, len(content) - 1), label="at")
        content[at] ^= data.draw(st.integers(1, 255), label="mask")
        file.write_bytes(bytes(content))
    else:
        file.write_bytes(bytes(content[: data.draw(st.integers(0, len(content) - 1), label="length")]))
    return file


CHECKSUMMED_JSON = ("config.json", "metrics.json")


def _means_the_same(file: Path, before: bytes) -> bool:
    """Whether a changed file still says what it said: `done`'s content is never read, provenance.json is how a result
    was made, never a result (deep/provenance.py); JSON is read as its value."""
    if file.name in ("done", "provenance.json"):
        return True
    if file.suffix != ".json" or file.name in CHECKSUMMED_JSON or not file.exists():
        return False  # config.json and metrics.json are checksummed: any change to their bytes is damage
    try:
        return json.loads(file.read_bytes()) == json.loads(before)
    except (ValueError, UnicodeDecodeError):
        return False


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_corruption_changes_a_reported_number_silently(tiny_store: Path, data: st.DataObject) -> None:
    baseline = _observe(tiny_store)
    assert isinstance(baseline, str)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "runs"
        shutil.copytree(tiny_store, root)
        originals = {f: f.read_bytes() for f in _files(root)}
        file = _corrupt(data, root)
        seen = _observe(root)
        if isinstance(seen, Exception):
            assert str(root) in str(seen)  # names the damaged path
        else:
            assert seen == baseline
        check = check_store(root)
        assert bool(check.remaining) != _means_the_same(file, originals[file]), check.lines()
        if isinstance(seen, Exception):
            assert check.remaining
        if isinstance(seen, StoreFormatError):  # e.g. a digit of store.json flipped: another version's store, as far
            return  # as anyone can tell, and that is never rewritten
        check_store(root, fix=True)
        assert all("which is not finished" in problem.what for problem, _ in check_store(root).problems)
        assert not isinstance(_observe(root), CorruptRunError)


def test_a_metric_changed_in_place_is_detected(tiny_store: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(tiny_store, root)
    metrics = next((root / "final").iterdir()) / "metrics.json"
    value = read_json(metrics)
    metrics.write_text(json.dumps({**value, "accuracy": value["accuracy"] / 2}))
    with pytest.raises(CorruptRunError):
        load_results(root)


def test_a_claim_dated_in_the_future_is_reported_not_called_in_progress(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    store = _store(tmp_path)
    skewed = store.path({"kind": "final", "seed": 1})
    skewed.mkdir()
    (skewed / "claim").write_text("abc otherhost 7\n")
    ahead = time.time() + 7200
    os.utime(skewed / "claim", (ahead, ahead))
    status, lines = _check(tmp_path, "--fix", capsys=capsys)
    assert status == 3 and lines[0].startswith(f"{skewed / 'claim'}: claim of process 7 on otherhost dated 7200 s in "
                                               "the future") and "NTP" in lines[0], lines
    assert (skewed / "claim").exists()  # left to the sweeps: its owner may be alive
