"""The run store: hashing, atomic completion, claims between workers, checksums."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest

from deep.runs import CorruptRunError, RunStore, config_hash


def test_hash_ignores_key_order_and_sees_values() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash({})) == 16


def test_finish_then_load_and_list(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = {"dataset": "digits", "seed": 0}
    assert not store.is_done(cfg) and store.load(cfg) is None
    store.finish(cfg, {"accuracy": 0.9}, {"kept": np.arange(5)})
    run = store.load(cfg)
    assert store.is_done(cfg) and run is not None
    assert run.config == cfg and run.metrics == {"accuracy": 0.9}
    np.testing.assert_array_equal(run.array("kept"), np.arange(5))
    assert [r.config for r in store.runs()] == [cfg]


def test_half_written_run_is_not_counted(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = {"seed": 1}
    path = store.path(cfg)
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "metrics.json").write_text("{trunc")
    assert not store.is_done(cfg) and list(store.runs()) == []
    store.finish(cfg, {"ok": True})
    assert store.load(cfg).metrics == {"ok": True}


def test_corrupt_array_is_detected(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = {"seed": 2}
    store.finish(cfg, {}, {"scores": np.linspace(0, 1, 10)})
    file = store.path(cfg) / "scores.npy"
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(CorruptRunError):
        store.load(cfg).array("scores")


def test_claim_is_exclusive_and_released(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    cfg = {"seed": 3}
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
    cfg = {"seed": 4}
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
    cfg = {"seed": 5}
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
    procs = [ctx.Process(target=_race, args=(str(tmp_path), {"seed": 6}, 2.0, queue)) for _ in range(4)]
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
    cfg = {"seed": 7}
    path = store.path(cfg)
    path.mkdir(parents=True)
    (path / "claim").write_text(f"abc {socket.gethostname()} {int(dead.stdout)}\n")
    claim = store.claim(cfg)
    assert claim is not None
    claim.release()
    (path / "claim").write_text(f"abc {socket.gethostname()} {os.getpid()}\n")  # a live owner keeps it
    assert store.claim(cfg) is None
