"""The run store: one directory per run config, named by its hash; resumable and safe for many workers.

Layout of a run directory `<root>/<hash>/`:
  config.json   the full config (what the hash is taken of)
  metrics.json  the results
  *.npy         arrays (kept indices, scores, ...), read back with allow_pickle=False
  checksums.json  sha256 of every array file, checked when the run is read back
  done          written last, atomically: only a directory with `done` counts as finished
  claim         present while a worker owns the run; refreshed by a heartbeat, taken over once stale

Workers coordinate only through these files: creating `claim` is atomic (O_EXCL), so two workers never run
one config; a claim whose heartbeat is older than its time-to-live belongs to a dead worker and is taken
over by renaming it away (also atomic: exactly one worker wins the rename). A claim made on this host by a
process that no longer exists is stale at once, so re-running a killed command needs no waiting.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DONE = "done"
CLAIM = "claim"
CLAIM_TTL_S = 600.0  # a claim not refreshed for this long belongs to a dead worker


def canonical_json(obj: object) -> str:
    """JSON with sorted keys and no whitespace: the text a config hash is taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def as_stored(config: dict) -> dict:
    """The config as it reads back from its JSON file (tuples become lists), for comparing with stored ones."""
    return json.loads(canonical_json(config))


def config_hash(config: dict) -> str:
    """A short, stable hash of a config dict (16 hex digits of sha256 of its canonical JSON)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to `path` so that readers see either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj: object) -> None:
    """Write `obj` as indented JSON, atomically."""
    write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n").encode())


def read_json(path: Path) -> dict:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _owner_is_dead(claim: Path) -> bool:
    """True when the claim was made on this host by a process that no longer exists."""
    try:
        _, host, pid = claim.read_text().split()
    except ValueError:
        return False  # being written right now, or not ours to judge
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class CorruptRunError(RuntimeError):
    """A finished run whose array files do not match their recorded checksums."""


@dataclass(frozen=True)
class Run:
    """A finished run read back from the store."""

    path: Path
    config: dict
    metrics: dict

    def array_names(self) -> list[str]:
        """Names of the arrays saved with the run (what `array` takes), sorted."""
        return sorted(Path(file).stem for file in read_json(self.path / "checksums.json"))

    def array(self, name: str) -> np.ndarray:
        """Load the array `name` saved with the run, after checking its checksum."""
        file = self.path / f"{name}.npy"
        expected = read_json(self.path / "checksums.json").get(file.name)
        if expected is None or _sha256(file) != expected:
            raise CorruptRunError(f"{file} does not match its recorded checksum: delete {self.path} to compute the run again")
        return np.load(file, allow_pickle=False)


class Claim:
    """Ownership of one run directory, kept alive by a heartbeat thread until released."""

    def __init__(self, path: Path, token: str, ttl: float) -> None:
        self.path, self.token, self.ttl = path, token, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                os.utime(self.path / CLAIM)
            except FileNotFoundError:
                return

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still ours."""
        self._stop.set()
        self._thread.join()
        try:
            if (self.path / CLAIM).read_text().split()[0] == self.token:
                (self.path / CLAIM).unlink()
        except (FileNotFoundError, IndexError):
            pass

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunStore:
    """A folder of runs keyed by config hash."""

    def __init__(self, root: Path | str, claim_ttl: float = CLAIM_TTL_S) -> None:
        self.root = Path(root)
        self.claim_ttl = claim_ttl

    def path(self, config: dict) -> Path:
        """The directory of the run with this config."""
        return self.root / config_hash(config)

    def is_done(self, config: dict) -> bool:
        """Whether the run with this config has finished."""
        return (self.path(config) / DONE).exists()

    def claim(self, config: dict) -> Claim | None:
        """Take ownership of an unfinished run; None when it is finished or another live worker owns it."""
        path = self.path(config)
        path.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        claim = path / CLAIM
        for _ in range(2):
            if (path / DONE).exists():
                return None
            try:
                fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if not self._take_over_stale(claim):
                    return None
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{token} {socket.gethostname()} {os.getpid()}\n")
            if (path / DONE).exists():  # finished between our check and our claim
                claim.unlink()
                return None
            return Claim(path, token, self.claim_ttl)
        return None

    def _take_over_stale(self, claim: Path) -> bool:
        """Remove a claim whose heartbeat stopped or whose process died here; True when this caller removed it."""
        try:
            if time.time() - claim.stat().st_mtime < self.claim_ttl and not _owner_is_dead(claim):
                return False
            stale = claim.with_name(f".stale-{uuid.uuid4().hex}")
            os.rename(claim, stale)
            stale.unlink()
        except FileNotFoundError:
            return False  # another worker took it over first
        return True

    def finish(self, config: dict, metrics: dict, arrays: dict[str, np.ndarray] | None = None) -> Path:
        """Write a run's config, metrics and arrays, then its `done` marker, last and atomically."""
        path = self.path(config)
        path.mkdir(parents=True, exist_ok=True)
        checksums = {}
        for name, value in (arrays or {}).items():
            file = path / f"{name}.npy"
            tmp = path / f".{name}.{uuid.uuid4().hex}.npy"
            np.save(tmp, np.asarray(value), allow_pickle=False)
            os.replace(tmp, file)
            checksums[file.name] = _sha256(file)
        write_json(path / "checksums.json", checksums)
        write_json(path / "config.json", config)
        write_json(path / "metrics.json", metrics)
        write_atomic(path / DONE, f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        return path

    def load(self, config: dict) -> Run | None:
        """The finished run with this config, or None."""
        return self._read(self.path(config))

    def invalidate(self, config: dict) -> None:
        """Mark a finished run as unfinished (e.g. a corrupt cache entry) so that it is computed again."""
        (self.path(config) / DONE).unlink(missing_ok=True)

    @staticmethod
    def _read(path: Path) -> Run | None:
        if not (path / DONE).exists():
            return None
        return Run(path, read_json(path / "config.json"), read_json(path / "metrics.json"))

    def runs(self) -> Iterator[Run]:
        """Every finished run directly under the root, in name order."""
        if not self.root.is_dir():
            return
        for path in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            run = self._read(path)
            if run is not None:
                yield run
