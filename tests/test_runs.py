"""The run store: hashing, atomic completion, claims between workers, checksums, self-checks, format."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import subprocess
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from deep.runs import CorruptRunError, RunStore, StoreFormatError, claim_verdict, claim_wait_message, config_hash


def test_hash_ignores_key_order_and_sees_values() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash({})) == 16


def _cfg(seed: int, kind: str = "final") -> dict:
    return {"kind": kind, "seed": seed}


def test_finish_then_read_and_list(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = {"kind": "final", "dataset": "digits", "seed": 0}
    assert not store.done(cfg)
    history = [{"epoch": 1, "train_loss": 0.5, "lr": 0.1, "val_accuracy": 0.8, "seconds": 0.1, "val_class_recall": [1]}]
    store.finish(cfg, {"accuracy": 0.9}, {"kept": np.arange(5)}, {"model.pt": b"weights"}, history)
    run = store.read(cfg)
    assert store.done(cfg) and run.path == tmp_path / "final" / config_hash(cfg)
    assert run.config == cfg and run.metrics == {"accuracy": 0.9}
    np.testing.assert_array_equal(run.array("kept"), np.arange(5))
    assert run.file("model.pt").read_bytes() == b"weights"
    assert (run.path / "history.csv").read_text() == "epoch,train_loss,lr,val_accuracy,seconds\n1,0.5,0.1,0.8,0.1\n"
    assert [r.config for r in store.runs("final")] == [cfg] and list(store.runs("query")) == []
    with pytest.raises(ValueError, match=r"\['val_loss'\], which deep.runs.EpochRecord does not define"):
        store.finish({**cfg, "seed": 1}, {}, history=[{**history[0], "val_loss": 0.3}])  # never dropped silently


def test_half_written_run_is_not_counted(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = _cfg(1)
    path = store.path(cfg)
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "metrics.json").write_text("{trunc")
    assert not store.done(cfg) and list(store.runs("final")) == []
    store.finish(cfg, {"ok": True})
    assert store.read(cfg).metrics == {"ok": True}


def test_finish_writes_a_large_array_a_block_at_a_time(tmp_path: Path) -> None:
    # A trace of ImageNet (1.28 M x 90 epochs) is memory-mapped: finishing must not build its .npy bytes in memory.
    # This 64 MiB array takes no memory itself (one value, broadcast); numpy reports its buffers to tracemalloc.
    big = np.broadcast_to(np.float32(0.25), (16 * 2**20,))
    store = RunStore(tmp_path)
    tracemalloc.start()
    try:
        store.finish(_cfg(7), {}, {"prob": big})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**25, f"finish held {peak / 2**20:.0f} MiB"
    prob = store.read(_cfg(7)).array("prob")  # checksummed on read
    assert prob.shape == big.shape and float(prob.min()) == float(prob.max()) == 0.25


def test_corrupt_array_is_detected(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = _cfg(2)
    store.finish(cfg, {}, {"scores": np.linspace(0, 1, 10)})
    file = store.path(cfg) / "scores.npy"
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(CorruptRunError, match="scores.npy"):
        store.read(cfg).array("scores")
    file.unlink()
    with pytest.raises(CorruptRunError, match="missing"):
        store.read(cfg).array("scores")


def test_config_swapped_for_another_runs_is_corrupt(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    a, b = _cfg(3), _cfg(4)
    store.finish(a, {"accuracy": 0.1})
    store.finish(b, {"accuracy": 0.2})
    (store.path(a) / "config.json").write_bytes((store.path(b) / "config.json").read_bytes())
    with pytest.raises(CorruptRunError, match="does not belong"):
        store.read(a)


def test_broken_json_is_named_by_path(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = _cfg(5)
    store.finish(cfg, {"accuracy": 0.1})
    (store.path(cfg) / "metrics.json").write_text('{"accuracy": 0.')
    with pytest.raises(CorruptRunError, match="metrics.json"):
        store.read(cfg)


def test_older_and_other_formats_are_refused_with_a_message(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "0123456789abcdef").mkdir(parents=True)
    (old / "0123456789abcdef" / "config.json").write_text("{}")
    with pytest.raises(StoreFormatError, match="older version"):
        RunStore(old)
    other = tmp_path / "other"
    other.mkdir()
    (other / "store.json").write_text('{"format": 99}')
    with pytest.raises(StoreFormatError, match="format 99"):
        RunStore(other)
    (other / "store.json").write_text('{"format": 2}')  # before final configs held every setting resolved
    with pytest.raises(StoreFormatError, match="has format 2, this version reads format 3: use a new --out"):
        RunStore(other)
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreFormatError, match="is a file"):
        RunStore(tmp_path / "file")
    new = RunStore(tmp_path / "new")
    new.finish(_cfg(0), {})
    assert RunStore(tmp_path / "new").done(_cfg(0))  # a store of this format opens again


def test_claim_is_exclusive_and_released(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = _cfg(3)
    first = store.claim(cfg)
    assert first is not None
    assert store.claim(cfg) is None
    first.release()
    second = store.claim(cfg)
    assert second is not None
    store.finish(cfg, {})
    second.release()
    assert store.claim(cfg) is None  # finished runs are never claimed again


def test_stale_claim_is_taken_over(tmp_path: Path) -> None:
    store = RunStore(tmp_path, claim_ttl=0.5)
    cfg = _cfg(4)
    path = store.path(cfg)
    path.mkdir(parents=True)
    (path / "claim").write_text("deadbeef otherhost 1\n")
    old = time.time() - 10
    os.utime(path / "claim", (old, old))
    claim = store.claim(cfg)
    assert claim is not None
    claim.release()


def test_live_claim_is_kept_alive_by_heartbeat(tmp_path: Path) -> None:
    store = RunStore(tmp_path, claim_ttl=0.4)
    cfg = _cfg(5)
    claim = store.claim(cfg)
    time.sleep(1.0)  # more than the ttl: only the heartbeat keeps it fresh
    assert store.claim(cfg) is None
    claim.release()


def _race(root: str, cfg: dict, hold: float, queue: mp.Queue) -> None:
    claim = RunStore(root).claim(cfg)
    queue.put(claim is not None)
    if claim is not None:
        time.sleep(hold)
        claim.release()


def test_one_winner_among_processes(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path), _cfg(6), 2.0, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    assert sum(results) == 1


def test_claim_of_a_dead_local_process_is_stale_at_once(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store = RunStore(tmp_path)  # default ttl: only the dead pid can make it stale
    cfg = _cfg(7)
    path = store.path(cfg)
    path.mkdir(parents=True)
    (path / "claim").write_text(f"abc {socket.gethostname()} {int(dead.stdout)}\n")
    claim = store.claim(cfg)
    assert claim is not None
    claim.release()
    (path / "claim").write_text(f"abc {socket.gethostname()} {os.getpid()}\n")  # a live owner keeps it
    assert store.claim(cfg) is None


@pytest.mark.parametrize("content", ["", "garbage", "\x00\x01"])
def test_unparsable_claim_is_stale_at_once(tmp_path: Path, content: str) -> None:
    store = RunStore(tmp_path)  # default ttl: only the garbage can make it stale
    cfg = _cfg(8)
    path = store.path(cfg)
    path.mkdir(parents=True)
    (path / "claim").write_text(content)
    claim = store.claim(cfg)
    assert claim is not None
    claim.release()


def test_temp_files_of_dead_writers_are_cleaned_on_claim(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = _cfg(9)
    path = store.path(cfg)
    path.mkdir(parents=True)
    (path / ".metrics.json.abc.tmp").write_text("half")
    (path / ".kept.npy.def.tmp").write_bytes(b"half")
    claim = store.claim(cfg)
    assert claim is not None and list(path.glob(".*.tmp")) == []
    claim.release()


def test_a_claim_dated_in_the_future_is_judged_by_how_long_we_see_it_unchanged(tmp_path: Path) -> None:
    store = RunStore(tmp_path, claim_ttl=0.5)
    cfg = _cfg(20)
    path = store.path(cfg)
    path.mkdir(parents=True)
    claim = path / "claim"
    claim.write_text("abc otherhost 1\n")
    ahead = time.time() + 3600  # the other node's clock is an hour ahead of ours
    os.utime(claim, (ahead, ahead))
    stale, why = claim_verdict(claim, 0.5)
    assert not stale and "in the future" in why  # first sight: a heartbeat an hour "ahead" is not evidence of death
    assert "dated 3600 s in the future" in claim_wait_message(claim, 0.5) and "at most" in claim_wait_message(claim, 0.5)
    time.sleep(0.3)
    os.utime(claim, (ahead + 1, ahead + 1))  # a heartbeat: the wait starts again
    time.sleep(0.3)
    assert store.claim(cfg) is None
    time.sleep(0.6)  # unchanged for more than the ttl since we last saw it change, by our own clock
    taken = store.claim(cfg)
    assert taken is not None
    taken.release()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="command lines are read from Linux's /proc")
def test_a_claim_of_a_live_process_that_is_no_worker_is_stale(tmp_path: Path) -> None:
    store = RunStore(tmp_path)  # default ttl: only the owner can make it stale
    cfg = _cfg(21)
    path = store.path(cfg)
    path.mkdir(parents=True)
    other = subprocess.Popen(["sleep", "30"])  # a pid reused by a program that is not a worker
    try:
        deadline = time.monotonic() + 5
        while not Path(f"/proc/{other.pid}/cmdline").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.02)  # until the child has exec'd
        (path / "claim").write_text(f"abc {socket.gethostname()} {other.pid}\n")
        stale, why = claim_verdict(path / "claim", store.claim_ttl)
        assert stale and f"process {other.pid} (sleep 30)" in why and "not a worker" in why
        claim = store.claim(cfg)
        assert claim is not None
        claim.release()
    finally:
        other.kill()
        other.wait()


def test_a_kind_is_any_identifier_and_a_file_in_its_place_is_refused(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.finish({"kind": "evaluate", "seed": 0}, {})  # a kind the store has never heard of: a folder of its own
    assert store.done({"kind": "evaluate", "seed": 0}) and (tmp_path / "evaluate").is_dir()
    for bad in ("_slurm", "../x", None):
        with pytest.raises(ValueError, match="needs a kind"):
            store.path({"kind": bad})
    (tmp_path / "notes.txt").write_text("mine")  # not a kind's name: left alone
    (tmp_path / "_slurm").write_text("")
    RunStore(tmp_path)
    (tmp_path / "selection").write_text("")
    with pytest.raises(StoreFormatError, match="selection is a file where the folder of the selection tasks belongs"):
        RunStore(tmp_path)
