"""What every command that writes files obeys: its output is never one of its inputs, and a failed command leaves
no partial output (files are written under a temporary name and moved into place only once all are written)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path



def _same(a: Path, b: Path) -> bool:
    """Whether two paths name one file (a link or another spelling included)."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_not_an_input(flag: str, out: str | Path, inputs: Mapping[str, str | Path | None]) -> None:
    """ValueError naming both flags when the output path `out` is (or is a link to) one of the input files."""
    out = Path(out)
    for name, given in inputs.items():
        if given is not None and (_same(out, Path(given)) or out.absolute().resolve() == Path(given).absolute().resolve()):
            raise ValueError(f"{flag} {out} is the input {name} {given}: writing it would destroy the input; "
                             f"choose another {flag}")


def check_outside_store(flag: str, out: str | Path, root: str | Path) -> None:
    """ValueError when the output folder `out` is the run store `root` or lies inside it (where any folder named
    like an identifier is a kind's folder)."""
    out, root = Path(out).resolve(), Path(root).resolve()
    if out.is_relative_to(root):
        raise ValueError(f"{flag} {out} would write into the run store {root}, one of this command's inputs: "
                         "choose a folder outside it")


@contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """A temporary folder beside `out` to write into; on success its entries are moved into `out` (created if
    needed, same-named entries replaced), on failure it is deleted and `out` is left as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.{uuid.uuid4().hex}.tmp"
    stage.mkdir()
    try:
        yield stage
        _move_into(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _move_into(source: Path, target: Path) -> None:
    """Move the entries of folder `source` into folder `target`, merging sub-folders, replacing same-named files."""
    target.mkdir(exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.is_dir() and (target / entry.name).is_dir():
            _move_into(entry, target / entry.name)
        else:
            os.replace(entry, target / entry.name)
