"""The licence, the package metadata and the one version both command lines report."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

import deep.cli
import toy.__main__
import toy.commandline

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_licence_is_mit_and_named_in_the_metadata() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 the drop-pruning authors")
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


@pytest.mark.parametrize("main", [deep.cli.main, toy.__main__.main], ids=["deep", "toy"])
def test_version_flag_prints_the_pyproject_version(main, capsys, monkeypatch) -> None:
    # The test may run against an install of another checkout: the installed metadata is read, so fake it.
    monkeypatch.setattr(importlib.metadata, "version", lambda name: PYPROJECT["project"]["version"])
    try:
        status = main(["--version"])  # deep's main returns argparse's exit status
    except SystemExit as exit_:  # toy's lets argparse exit
        status = exit_.code
    assert status == 0
    assert capsys.readouterr().out.split()[-1] == PYPROJECT["project"]["version"]


def test_a_source_tree_never_installed_reads_pyproject_and_says_so(monkeypatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert toy.commandline.package_version() == PYPROJECT["project"]["version"] + "+source"
