"""What made a task: `provenance.json` in every task directory (package version, code commit, library versions,
device, host, command line, start and end time), and the report's view of it across a store.

provenance.json is written beside a task's files before its `done` marker but is NOT in checksums.json: it says how
a result was made, not what the result is. Two runs with identical results may differ in it (another host, another
start time), and a damaged provenance.json must never make `check --fix` throw away and recompute a sound result.
The record is read for display and warnings only, never to decide what runs.
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from deep.runs import RunStore, write_json
from toy.commandline import package_version

FILE = "provenance.json"
GIT_TIMEOUT_S = 10.0


def now() -> str:
    """The current time in UTC, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                          timeout=GIT_TIMEOUT_S).stdout.strip()


@lru_cache(maxsize=1)
def code_version() -> dict:
    """The git commit of the checkout the package runs from and whether tracked files differ from it (untracked
    files, e.g. a run store inside the checkout, do not count); both None for an installed package or without git."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():  # a wheel install: site-packages is no checkout
        return {"commit": None, "dirty": None}
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def _device(device: str | None) -> dict:
    import torch

    if device is None:
        return {"device": None, "device_name": None, "device_count": None}
    kind = torch.device(device).type
    if kind == "cuda":
        name, count = torch.cuda.get_device_name(torch.device(device)), torch.cuda.device_count()
    else:
        name, count = f"{kind} ({platform.processor() or platform.machine()})", 1
    return {"device": str(device), "device_name": name, "device_count": count}


def record(started: str, device: str | None) -> dict:
    """The provenance of a task that started at `started` (see `now`) on `device` (None: no training, e.g. a
    user's file stored as a task) and ends now."""
    import torch

    return {
        "package_version": package_version(),
        **code_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        **_device(device),
        "torch_threads": torch.get_num_threads(),  # CPU results are bit-identical only at the same thread count
        "hostname": socket.gethostname(),
        "command": [sys.executable, *sys.argv],
        "started": started,
        "ended": now(),
    }


def write(task_dir: Path, started: str, device: str | None) -> None:
    """Write the task's provenance.json (atomically); call it before the task's `done` marker."""
    task_dir.mkdir(parents=True, exist_ok=True)
    write_json(task_dir / FILE, record(started, device))


def read(task_dir: Path) -> dict | None:
    """A task's provenance, or None where it has none (written before provenance existed) or it is unreadable."""
    try:
        value = json.loads((Path(task_dir) / FILE).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def code_label(prov: dict | None) -> str:
    """The code a run came from in one phrase: version, short commit and '(dirty)' where tracked files differed."""
    if prov is None:
        return "unknown (no provenance.json)"
    commit = prov.get("commit")
    where = f" @ {commit[:10]}{' (dirty)' if prov.get('dirty') else ''}" if commit else ""
    return f"{prov.get('package_version')}{where}"


def device_label(prov: dict | None) -> str:
    """The device a run trained on, by name."""
    return "unknown (no provenance.json)" if prov is None else str(prov.get("device_name"))


def _counted(labels: Iterable[str]) -> str:
    return ", ".join(f"{label} ({n} run{'s' if n > 1 else ''})" for label, n in Counter(labels).most_common())


def describe(provs: Sequence[dict | None]) -> list[str]:
    """Lines for the report: which code versions, devices, library versions and hosts made these runs."""
    if not provs:
        return []
    known = [p for p in provs if p is not None]
    libraries = (f"python {p.get('python')}, torch {p.get('torch')}, CUDA {p.get('cuda')}, cuDNN {p.get('cudnn')}"
                 for p in known)
    return [
        f"code: {_counted(code_label(p) for p in provs)}",
        f"devices: {_counted(device_label(p) for p in provs)}",
        f"libraries: {_counted(libraries) or 'unknown'}",
        f"hosts: {_counted(str(p.get('hostname')) for p in known) or 'unknown'}",
    ]


def printed(root: Path | str, rows: Iterable[dict]) -> str:
    """The block `sweep` and `report` print under their tables: what made the finished runs of these report rows."""
    return "\n".join(["", "provenance of the finished runs:", *describe(of_rows(root, rows))])


def mixed(provs: Sequence[dict | None], what: str) -> list[str]:
    """Warnings for runs drawn together (one figure) that came from different code versions or devices."""
    warnings = []
    for name, label in (("code versions", code_label), ("devices", device_label)):
        found = {label(p) for p in provs}
        if len(found) > 1:
            warnings.append(f"{what}: its finished runs came from {len(found)} different {name}: "
                            f"{_counted(label(p) for p in provs)}")
    return warnings


def of_rows(root: Path | str, rows: Iterable[dict]) -> list[dict | None]:
    """The provenance of each report row's final run (rows as deep.report.results.load_results gives them)."""
    store = RunStore(root)
    return [read(store.path(row["config"])) for row in rows]
