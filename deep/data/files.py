"""Where datasets live on disk, the checks that say what is missing, and the opt-in download."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from deep._torchvision import import_torchvision

# Every dataset that reads files defaults to DEFAULT_ROOT / <registry name>; `--data PATH` overrides it.
# A relative default resolves against the working directory at load time.
DEFAULT_ROOT: Path = Path(os.environ.get("DROP_DATA", "data"))


@dataclass(frozen=True)
class Archive:
    """A published archive that `download=True` fetches and unpacks (md5 None: no published checksum)."""

    url: str
    md5: str | None


@dataclass(frozen=True)
class Layout:
    """A dataset folder as distributed: its name, the paths inside it that must exist, where to get it."""

    name: str  # registry name; the default location is DEFAULT_ROOT / name
    folder: str  # the folder as unpacked, e.g. "cifar-10-batches-py"
    required: tuple[str, ...]  # paths relative to that folder
    source: str  # where a user gets it
    archive: Archive | tuple[Archive, ...]  # what download=True fetches: one archive, or one per file (MNIST)
    gzipped: bool = False  # each required file may instead be present as <name>.gz, as some sets are distributed

    @property
    def archives(self) -> tuple[Archive, ...]:
        """Every archive that download=True fetches."""
        return self.archive if isinstance(self.archive, tuple) else (self.archive,)

    def present(self, path: Path) -> Path | None:
        """`path` or, for a gzipped layout, path.gz, whichever exists first; None when neither does."""
        candidates = (path, path.with_name(path.name + ".gz")) if self.gzipped else (path,)
        return next((candidate for candidate in candidates if candidate.exists()), None)


def location(data: Path | str | None, name: str) -> Path:
    """The path a dataset is read from: `data` when given, else DEFAULT_ROOT / name."""
    return Path(data).expanduser() if data is not None else DEFAULT_ROOT / name


def missing_paths(folder: Path, layout: Layout) -> list[str]:
    """The required paths of `layout` that do not exist under `folder`."""
    return [path for path in layout.required if layout.present(folder / path) is None]


def find_folder(layout: Layout, data: Path | str | None, download: bool) -> Path:
    """The dataset folder: `root` itself or root/<layout.folder>, whichever is complete; downloads first if asked."""
    root = location(data, layout.name)
    candidates = [root, root / layout.folder]
    if download and all(missing_paths(folder, layout) for folder in candidates):
        for archive in layout.archives:
            fetch(archive, root)
    for folder in candidates:
        if not missing_paths(folder, layout):
            return folder
    raise FileNotFoundError(missing_message(layout, root, candidates))


def missing_message(layout: Layout, root: Path, candidates: list[Path]) -> str:
    """What is missing for `layout` under `root`, where the files go, and how to get them."""
    best, missing = min(((folder, missing_paths(folder, layout)) for folder in candidates),
                        key=lambda pair: len(pair[1]))
    if len(missing) < len(layout.required):
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        problem = f"{layout.name}: the folder {best.resolve()} is incomplete, it lacks {shown}."
    else:
        problem = f"{layout.name}: no data found at {root.resolve()}."
    gzipped = " (each may be gzipped, as <name>.gz)" if layout.gzipped else ""
    expected = (f"{(root / layout.folder).resolve()}/ (or {root.resolve()}/ itself) "
                f"holding {', '.join(layout.required)}{gzipped}")
    how = f"Get it from {layout.source}, or point --data at the folder that holds it, or pass --download to fetch it."
    return f"{problem} Expected {expected}. {how}"


def fetch(archive: Archive, root: Path) -> None:
    """Download `archive` into `root` and unpack it there (torchvision's downloader, md5-checked when known)."""
    root.mkdir(parents=True, exist_ok=True)
    utils = import_torchvision().datasets.utils
    utils.download_and_extract_archive(archive.url, str(root), md5=archive.md5)
