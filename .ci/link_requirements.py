"""Make the dependencies a wheel declares importable in a fresh venv by linking them from this interpreter's
environment (the CI venv): nothing is copied or downloaded again, and only the declared distributions and their own
requirements are linked, so an import the wheel does not declare fails in the smoke test as it would for a user.

Usage: python .ci/link_requirements.py WHEEL TARGET_SITE_PACKAGES (run with the CI venv's python).
"""

from __future__ import annotations

import importlib.metadata as metadata
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def _wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode()
    return [Requirement(line.split(":", 1)[1].strip()) for line in text.splitlines() if line.startswith("Requires-Dist:")]


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in extras or {""})


def closure(requirements: list[Requirement]) -> dict[str, metadata.Distribution]:
    """The installed distributions the requirements need, transitively; SystemExit naming one missing or too old."""
    found: dict[str, metadata.Distribution] = {}
    todo = [r for r in requirements if _applies(r, set())]
    while todo:
        requirement = todo.pop()
        key = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{requirement} is required but not installed in {sys.prefix}")
        if not requirement.specifier.contains(dist.version, prereleases=True):
            sys.exit(f"{requirement} is required but {dist.version} is installed in {sys.prefix}")
        extras = set(requirement.extras)
        if key in found and not extras:
            continue
        found[key] = dist
        todo += [r for r in (Requirement(text) for text in dist.requires or []) if _applies(r, extras)]
    return found


def top_level(dist: metadata.Distribution) -> set[Path]:
    """The entries of site-packages a distribution installed (its packages, modules, libraries and .dist-info)."""
    site = Path(dist.locate_file(""))
    entries = {site / Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    return {e for e in entries if e.exists() and e.suffix != ".pth" and e.name != "__pycache__"}


def main() -> None:
    wheel, target = Path(sys.argv[1]), Path(sys.argv[2])
    linked = 0
    for dist in closure(_wheel_requirements(wheel)).values():
        for entry in top_level(dist):
            link = target / entry.name
            if not link.exists():
                link.symlink_to(entry)
                linked += 1
    print(f"linked {linked} entries of the wheel's declared dependencies into {target}")


if __name__ == "__main__":
    main()
