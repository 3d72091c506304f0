"""The run store: one directory per task, named by the hash of the task's config; resumable and safe for many workers.

A task's config holds its own settings and the names (hashes) of the tasks it consumes, so every name is known
before anything runs and the same settings always map to the same directory. Layout:

  <root>/store.json              {"format": FORMAT}: a store written by another format is refused with a message
  <root>/<kind>/<hash>/          one task (kind: a key of deep.kinds.KINDS; the store takes any identifier)
      config.json                the full config; its hash must equal the directory name
      metrics.json               the results
      history.csv                one row per training epoch (trainings only)
      *.npy, model.pt            arrays (read back with allow_pickle=False) and files, checksummed
      checksums.json             sha256 of every array and file
      done                       written last, atomically: only a directory with `done` counts as finished
      claim                      present while a worker owns the task; refreshed by a heartbeat
      checkpoint.pt              the latest training checkpoint while the task runs; deleted once it is done

Workers coordinate only through these files. A claim is created atomically with its content (a hard link of a
written file, which fails if the claim exists), so two workers never run one task; a claim whose heartbeat is
older than its time-to-live, whose process died on this host (or whose pid now runs a program that is not Python),
or that cannot be parsed belongs to nobody and is taken over by renaming it away (atomic: exactly one worker wins
the rename). A claim dated in the future was dated by a node whose clock is ahead of ours: its age is then how long
this process has seen it unchanged (monotonic clock), never a comparison of that node's clock with ours.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import BinaryIO

import numpy as np

FORMAT = 3  # 3: final configs store every setting resolved and leave out what does not apply
FORMAT_FILE = "store.json"
DONE = "done"
CLAIM = "claim"
CHECKPOINT = "checkpoint.pt"
HISTORY = "history.csv"
CLAIM_TTL_S = 600.0  # a claim not refreshed for this long belongs to a dead worker
CLAIM_SKEW_S = 5.0  # a claim dated this far past our clock was dated by another node's clock, ahead of ours


@dataclass
class EpochRecord:
    """One training epoch, as deep.train records it: a row of a task's history.csv (its numbers; the per-unit lists
    reach the store as arrays, see deep.query) and of TrainResult.history (all of it, as a dict)."""

    epoch: int  # 1-based
    train_loss: float  # mean training loss over the epoch's samples
    lr: float  # the learning rate the epoch trained at
    val_accuracy: float | None = None  # None: no validation split
    val_worst_class_accuracy: float | None = None
    val_worst_group_accuracy: float | None = None  # None also without groups
    seconds: float = 0.0  # wall time of the epoch, validation included
    val_class_recall: list[float] | None = None  # per class
    val_group_accuracy: list[float] | None = None  # per group


PER_UNIT_FIELDS = ("val_class_recall", "val_group_accuracy")  # lists: not columns of history.csv
HISTORY_FIELDS = tuple(f.name for f in fields(EpochRecord) if f.name not in PER_UNIT_FIELDS)


def canonical_json(obj: object) -> str:
    """JSON with sorted keys and no whitespace: the text a config hash is taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def as_stored(config: dict) -> dict:
    """The config as it reads back from its JSON file (tuples become lists), for comparing with stored ones."""
    return json.loads(canonical_json(config))


def config_hash(config: dict) -> str:
    """A short, stable hash of a config dict (16 hex digits of sha256 of its canonical JSON)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


class _Hashed:
    """A file object that hashes what is written through it (np.save then writes an array a block at a time)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.digest = file, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.file.write(data)


def write_atomic(path: Path, data: bytes | np.ndarray) -> str:
    """Write bytes, or an array as .npy, so that readers see either the old file or the whole new one; returns the
    sha256 of the file. An array is written a block at a time: a memory-mapped trace is never copied into memory."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            hashed = _Hashed(f)
            if isinstance(data, np.ndarray):
                np.save(hashed, data, allow_pickle=False)
            else:
                hashed.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return hashed.digest.hexdigest()


def json_bytes(obj: object) -> bytes:
    """`obj` as the indented JSON text the store writes."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n").encode()


def write_json(path: Path, obj: object) -> None:
    """Write `obj` as indented JSON, atomically."""
    write_atomic(path, json_bytes(obj))


def read_json(path: Path) -> dict:
    """Read a stored JSON object; a file that is missing, not valid JSON or not an object is a CorruptRunError naming it."""
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError as error:
        raise CorruptRunError(f"{path} is missing") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptRunError(f"{path} is not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise CorruptRunError(f"{path} holds {type(value).__name__} JSON where an object belongs")
    return value


def history_csv(history: Sequence[dict]) -> bytes:
    """The per-epoch history as CSV: the HISTORY_FIELDS that any epoch recorded, in that order; a record with a
    field EpochRecord does not define is refused (a new field goes there, never dropped silently)."""
    unknown = {key for record in history for key in record} - set(HISTORY_FIELDS) - set(PER_UNIT_FIELDS)
    if unknown:
        raise ValueError(f"history records hold {sorted(unknown)}, which deep.runs.EpochRecord does not define")
    columns = [f for f in HISTORY_FIELDS if any(record.get(f) is not None for record in history)]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({f: ("" if r.get(f) is None else r[f]) for f in columns} for r in history)
    return out.getvalue().encode()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read a block at a time (weight files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CorruptRunError(RuntimeError):
    """A stored task whose files are damaged or disagree with its directory (the message names the path)."""


class StoreFormatError(ValueError):
    """A run store written by another version of this package."""


# Claim file -> (its stat signature, our monotonic time when we first saw it so): how long WE have seen it unchanged.
_sightings: dict[str, tuple[tuple[int, int, int], float]] = {}


def claim_unchanged_s(claim: Path) -> tuple[float, float]:
    """(seconds this process has seen `claim` unchanged, by its own monotonic clock; seconds since its file time by
    our wall clock, negative when it is dated in the future). Only the first never compares two nodes' clocks."""
    stat = claim.stat()
    signature, now = (stat.st_mtime_ns, stat.st_size, stat.st_ino), time.monotonic()
    seen = _sightings.get(str(claim))
    if seen is None or seen[0] != signature:
        _sightings[str(claim)] = seen = (signature, now)
    return now - seen[1], time.time() - stat.st_mtime


def claim_verdict(claim: Path, ttl: float) -> tuple[bool, str]:
    """(whether the claim belongs to nobody, why; or, for a live claim, what looks wrong with it, else "").

    Stale: unreadable, its process died or is no worker (on this host), or not refreshed for `ttl` seconds. A claim
    dated in the future (another node's clock is ahead of ours) is judged only by how long this process has seen it
    unchanged, never by comparing that node's clock with ours; one dated in the past by the larger of its age and
    that time."""
    owner = _owner_problem(claim)
    if owner:
        return True, owner
    unchanged, age = claim_unchanged_s(claim)
    if age < -CLAIM_SKEW_S:
        if unchanged >= ttl:
            return True, f"dated {-age:.0f} s in the future (clock skew) and unchanged for {unchanged:.0f} s"
        return False, (f"dated {-age:.0f} s in the future: the clock of the node that wrote it is ahead of ours; "
                       f"judged by how long it stays unchanged (stale after {ttl:.0f} s without a heartbeat)")
    if max(age, unchanged) >= ttl:
        return True, f"no heartbeat for {max(age, unchanged):.0f} s"
    return False, ""


def claim_is_stale(claim: Path, ttl: float) -> bool:
    """Whether a claim belongs to nobody (claim_verdict)."""
    return claim_verdict(claim, ttl)[0]


def claim_wait_message(claim: Path, ttl: float) -> str:
    """What a worker waiting on `claim` says: whose it is and the longest the wait can last if its heartbeat stops."""
    try:
        unchanged, age = claim_unchanged_s(claim)
    except FileNotFoundError:
        return f"{claim} was just released"
    seen = unchanged if age < -CLAIM_SKEW_S else max(age, unchanged)
    skew = f", dated {-age:.0f} s in the future by another node's clock" if age < -CLAIM_SKEW_S else ""
    return (f"waiting for {claim.parent}, claimed by {claim_owner(claim)}{skew}: it is taken over if its heartbeat "
            f"stops, at most {max(0.0, ttl - seen):.0f} s from now (python -m deep check shows every claim)")


def claim_owner(claim: Path) -> str:
    """Who holds a claim, for messages: 'process PID on HOST', or 'nobody (unreadable)'."""
    try:
        _, host, pid = claim.read_text().split()
        return f"process {pid} on {host}"
    except (ValueError, UnicodeDecodeError, FileNotFoundError):
        return "nobody (unreadable)"


def _owner_problem(claim: Path) -> str:
    """Why the claim's owner cannot be a live worker ("" when it may be): unparsable, or made on this host by a
    process that no longer exists or that is not a Python process (its pid was reused after the worker died)."""
    try:
        token, host, pid = claim.read_text().split()
        pid_number = int(pid)
    except (ValueError, UnicodeDecodeError):
        return "unreadable"  # claims are created whole (see `claim`), so an unreadable one is garbage
    if host != socket.gethostname() or not token:
        return ""
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return f"its worker (process {pid_number}) died"
    except PermissionError:
        return ""
    try:  # Linux: a worker always runs Python; any other live program holds a reused pid
        command = Path(f"/proc/{pid_number}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
    if command and "python" not in command.lower():
        return f"held by process {pid_number} ({command[:60]}), a live process that is not a worker (its pid was reused)"
    return ""


@dataclass(frozen=True)
class Run:
    """A finished task read back from the store."""

    path: Path
    config: dict
    metrics: dict

    @property
    def key(self) -> str:
        """The task's name: the hash of its config."""
        return self.path.name

    def _checksums(self) -> dict[str, str]:
        return read_json(self.path / "checksums.json")

    def verify(self) -> None:
        """Check every checksummed file of the run; CorruptRunError naming the first one missing or damaged."""
        for name in self._checksums():
            self.file(name)

    def file_names(self) -> list[str]:
        """Names of every checksummed file of the run (arrays as `<name>.npy`, `model.pt`, ...), sorted."""
        return sorted(self._checksums())

    def array_names(self) -> list[str]:
        """Names of the arrays saved with the run (what `array` takes), sorted."""
        return sorted(Path(file).stem for file in self._checksums() if file.endswith(".npy"))

    def file(self, name: str) -> Path:
        """The path of the stored file `name` (an array's `<name>.npy`, or e.g. `model.pt`), checksum verified."""
        path = self.path / name
        expected = self._checksums().get(name)
        if expected is None or not path.is_file() or file_sha256(path) != expected:
            raise CorruptRunError(f"{path} is missing or does not match its recorded checksum")
        return path

    def array(self, name: str) -> np.ndarray:
        """Load the array `name` saved with the run, after checking its checksum."""
        path = self.file(f"{name}.npy")
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as error:
            raise CorruptRunError(f"{path} is not a readable array ({error})") from error


class Claim:
    """Ownership of one task directory, kept alive by a heartbeat thread until released."""

    live: set[Claim] = set()  # claims held by this process, released together when a SLURM job is requeued

    def __init__(self, path: Path, token: str, ttl: float) -> None:
        self.path, self.token, self.ttl = path, token, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        Claim.live.add(self)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                os.utime(self.path / CLAIM)
            except FileNotFoundError:
                return

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still ours."""
        Claim.live.discard(self)
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        try:
            if (self.path / CLAIM).read_text().split()[0] == self.token:
                (self.path / CLAIM).unlink()
        except (FileNotFoundError, IndexError):
            pass

    @classmethod
    def release_all(cls) -> None:
        """Release every claim this process holds (its tasks' checkpoints stay for whoever takes them over)."""
        for claim in list(cls.live):
            claim.release()

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunStore:
    """A folder of tasks, one directory per config hash under a folder per kind."""

    def __init__(self, root: Path | str, claim_ttl: float = CLAIM_TTL_S) -> None:
        self.root = Path(root)
        self.claim_ttl = claim_ttl
        self._check_format()

    def _check_format(self) -> None:
        """Refuse a store written by another format, with what to do about it."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreFormatError(f"run store {self.root} is a file, not a folder: pass a folder to --out")
        for entry in self.root.iterdir() if self.root.is_dir() else []:
            if is_kind_name(entry.name) and not entry.is_dir():
                raise StoreFormatError(f"{entry} is a file where the folder of the {entry.name} tasks belongs: "
                                       "move it out of the run store")
        marker = self.root / FORMAT_FILE
        if marker.is_file():
            try:
                found = read_json(marker).get("format")
                if not isinstance(found, int):  # garbled: every version writes an integer
                    raise CorruptRunError(f"{marker} holds no format number")
            except CorruptRunError as error:
                raise CorruptRunError(f"{error}: run `python -m deep check {self.root} --fix` to write it again") from error
            if found != FORMAT:
                raise StoreFormatError(
                    f"run store {self.root} has format {found}, this version reads format {FORMAT}: "
                    "use a new --out folder, or the version of this package that wrote it"
                )
        elif self.root.is_dir():
            children = [p for p in self.root.iterdir() if not p.name.startswith(".")]
            # Format 1 had a _query folder and, at the top, run folders named by 16 hex digits holding config.json.
            old_runs = [p for p in children if (p / "config.json").is_file() and len(p.name) == 16
                        and all(c in "0123456789abcdef" for c in p.name)]
            if (self.root / "_query").exists() or old_runs:
                raise StoreFormatError(
                    f"run store {self.root} was written by an older version of this package (format 1, runs named by "
                    "the query stage that served them): its runs cannot be extended; use a new --out folder"
                )
            foreign = [p for p in children if (p / "config.json").is_file()]
            if foreign:
                raise StoreFormatError(
                    f"{self.root} is not a run store (it has no {FORMAT_FILE}) but holds other data, e.g. "
                    f"{foreign[0] / 'config.json'}: pass a new or empty folder, or a run store, to --out"
                )

    def _open_for_writing(self) -> None:
        if not (self.root / FORMAT_FILE).is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            write_json(self.root / FORMAT_FILE, {"format": FORMAT})

    def path(self, config: dict) -> Path:
        """The directory of the task with this config."""
        kind = config.get("kind")
        if not (isinstance(kind, str) and is_kind_name(kind)):
            raise ValueError(f"a task config needs a kind (a key of deep.kinds.KINDS), got {kind!r}")
        return self.root / kind / config_hash(config)

    def done(self, config: dict) -> bool:
        """Whether the task with this config has finished: a lookup of its own directory."""
        return (self.path(config) / DONE).exists()

    def claim(self, config: dict) -> Claim | None:
        """Take ownership of an unfinished task; None when it is finished or another live worker owns it."""
        self._open_for_writing()
        path = self.path(config)
        path.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex
        claim = path / CLAIM
        draft = path / f".claim.{token}.tmp"
        draft.write_text(f"{token} {socket.gethostname()} {os.getpid()}\n")
        try:
            for _ in range(2):
                if (path / DONE).exists():
                    return None
                try:
                    os.link(draft, claim)  # atomic, and the claim never exists half-written
                except FileExistsError:
                    if not self._take_over_stale(claim):
                        return None
                    continue
                if (path / DONE).exists():  # finished between our check and our claim
                    claim.unlink()
                    return None
                _remove_temp_files(path, keep=draft)  # left by a dead writer: this directory is ours now
                return Claim(path, token, self.claim_ttl)
            return None
        finally:
            draft.unlink(missing_ok=True)

    def _take_over_stale(self, claim: Path) -> bool:
        """Remove a claim whose heartbeat stopped, whose process died here or that is garbage; True when removed."""
        try:
            judged = claim.read_bytes()
            if not claim_is_stale(claim, self.claim_ttl):
                return False
            stale = claim.with_name(f".stale-{uuid.uuid4().hex}.tmp")
            os.rename(claim, stale)
        except FileNotFoundError:
            return False  # another worker took it over first
        if stale.read_bytes() != judged:
            # Between our look and our rename another worker replaced the stale claim with its own fresh one: give
            # it back (a link never overwrites; if the slot is taken again, that worker's claim stands).
            try:
                os.link(stale, claim)
            except FileExistsError:
                pass
            stale.unlink()
            return False
        stale.unlink()
        return True

    def finish(
        self,
        config: dict,
        metrics: dict,
        arrays: dict[str, np.ndarray] | None = None,
        files: dict[str, bytes] | None = None,
        history: Sequence[dict] | None = None,
    ) -> Path:
        """Write a task's arrays, files, history, config and metrics, then its `done` marker, last and atomically."""
        self._open_for_writing()
        path = self.path(config)
        path.mkdir(parents=True, exist_ok=True)
        contents: dict[str, bytes | np.ndarray] = dict(files or {})
        contents.update({f"{name}.npy": np.asarray(value) for name, value in (arrays or {}).items()})
        if history is not None:
            contents[HISTORY] = history_csv(history)
        # config.json and metrics.json are checksummed too: a number edited in place is damage, never a result.
        contents.update({"config.json": json_bytes(config), "metrics.json": json_bytes(metrics)})
        write_json(path / "checksums.json", {name: write_atomic(path / name, data) for name, data in contents.items()})
        write_atomic(path / DONE, f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        (path / CHECKPOINT).unlink(missing_ok=True)
        for partial in path.glob("*.partial.npy"):  # arrays a training kept on disk (deep.query.TraceRecorder)
            partial.unlink()
        return path

    def read(self, config: dict) -> Run:
        """The finished task with this config; CorruptRunError if it is unfinished or its files disagree."""
        run = read_finished(self.path(config), verify=False)
        if run is None:
            raise CorruptRunError(f"{self.path(config)} is not finished")
        return run

    def invalidate(self, config: dict) -> None:
        """Mark a finished task as unfinished (e.g. a corrupt array) so that it is computed again."""
        (self.path(config) / DONE).unlink(missing_ok=True)

    def remove_if_empty(self, config: dict) -> None:
        """Remove a task's directory when it holds nothing (a failed run left no checkpoint), and with it a store
        that holds nothing else: a command that failed leaves no empty folders behind."""
        path = self.path(config)
        for folder in (path, path.parent):
            try:
                folder.rmdir()
            except OSError:  # not empty, or gone
                return
        if [p.name for p in self.root.iterdir()] == [FORMAT_FILE]:
            (self.root / FORMAT_FILE).unlink(missing_ok=True)
            try:
                self.root.rmdir()
            except OSError:
                pass

    def runs(self, kind: str) -> Iterator[Run]:
        """Every finished task of one kind, in name order, each verified whole: a damaged one is a CorruptRunError
        that names it and says how to recompute it, never a result used as if it were sound."""
        for path in task_folders(self.root / kind):
            try:
                run = read_finished(path)
            except CorruptRunError as error:
                raise CorruptRunError(
                    f"{error}: run `python -m deep check {self.root} --fix` to mark the damaged tasks unfinished, "
                    "then the sweep that made them again to recompute them"
                ) from error
            if run is not None:
                yield run


def is_kind_name(name: str) -> bool:
    """Whether `name` can name a kind of task, and so a folder of the store: an identifier not starting with `_`
    (names starting with `_` are the store's own, such as a SLURM log folder)."""
    return name.isidentifier() and not name.startswith("_")


def task_folders(folder: Path) -> list[Path]:
    """The task directories in one kind folder, in name order (none when the folder does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_finished(path: Path, verify: bool = True) -> Run | None:
    """The finished task in `path` (None if unfinished), with every checksummed file checked unless `verify` is
    False; CorruptRunError naming what is damaged or disagrees with the directory's name."""
    if not (path / DONE).exists():
        return None
    config = read_json(path / "config.json")
    if config_hash(config) != path.name or config.get("kind") != path.parent.name:
        raise CorruptRunError(f"{path / 'config.json'} does not belong to {path} (its hash is {config_hash(config)})")
    run = Run(path, config, read_json(path / "metrics.json"))
    if verify:
        run.verify()
    return run


def dead_temp_files(path: Path, keep: Path | None = None) -> list[Path]:
    """The temporary files in `path` of writers that died (call it where no live worker writes): everything but
    `keep` and other workers' fresh claim drafts."""
    dead = []
    for tmp in path.glob(".*.tmp"):
        try:
            if tmp != keep and not (tmp.name.startswith(".claim.") and time.time() - tmp.stat().st_mtime < 60):
                dead.append(tmp)
        except FileNotFoundError:
            pass
    return dead


def _remove_temp_files(path: Path, keep: Path) -> None:
    """Delete the temporary files of writers that died in `path`; other workers' fresh claim drafts stay."""
    for tmp in dead_temp_files(path, keep):
        tmp.unlink(missing_ok=True)
