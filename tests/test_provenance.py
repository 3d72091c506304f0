"""provenance.json in every task directory, outside the checksums, and the report's view of it."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

import deep
from deep import provenance
from deep.check import check_store
from deep.cli import main
from deep.report import write_report
from deep.kinds import KINDS
from deep.runs import read_json, task_folders
from tests.conftest import TINY_SWEEP
from toy.commandline import package_version

FIELDS = {"package_version", "commit", "dirty", "python", "torch", "cuda", "cudnn", "device", "device_name",
          "device_count", "torch_threads", "hostname", "command", "started", "ended"}


def _tasks(root: Path) -> list[Path]:
    return [task for kind in KINDS for task in task_folders(root / kind)]


def test_every_task_of_a_sweep_records_what_made_it(tiny_store: Path) -> None:
    tasks = _tasks(tiny_store)
    assert {task.parent.name for task in tasks} >= {"query", "scores", "recalls", "final"}
    checkout = Path(deep.__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    for task in tasks:
        prov = read_json(task / provenance.FILE)
        assert set(prov) == FIELDS
        assert prov["package_version"] == package_version()
        assert prov["commit"] == (head or None)
        assert prov["device"] == "cpu" and prov["device_count"] == 1
        assert prov["started"] <= prov["ended"]
        assert provenance.FILE not in read_json(task / "checksums.json")  # metadata about how, not what


def test_a_damaged_provenance_is_no_damage_to_the_result(tiny_store: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    shutil.copytree(tiny_store, root)
    for task in _tasks(root):
        (task / provenance.FILE).write_text("{garbled")
    assert check_store(root).remaining == 0
    assert provenance.describe(provenance.of_rows(root, [{"config": read_json(t / "config.json")}
                                                          for t in _tasks(root)]))[0].startswith("code: unknown")


def test_report_prints_the_provenance_and_warns_when_one_figure_mixes_devices(
        tiny_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "runs"
    shutil.copytree(tiny_store, root)
    assert main(["report", str(root)]) == 0
    out = capsys.readouterr().out
    assert "provenance of the finished runs:" in out and "devices: cpu" in out and "hosts: " in out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_report(root, tmp_path / "same")
    assert not [w for w in caught if "different" in str(w.message)]

    first = task_folders(root / "final")[0]
    prov = read_json(first / provenance.FILE)
    (first / provenance.FILE).write_text(json.dumps({**prov, "device_name": "NVIDIA H100", "commit": "f" * 40}))
    with pytest.warns(UserWarning) as caught:
        write_report(root, tmp_path / "mixed")
    messages = [str(w.message) for w in caught]
    assert any("2 different devices" in m and "NVIDIA H100 (1 run)" in m for m in messages)
    assert any("2 different code versions" in m and "@ ffffffffff" in m for m in messages)
    assert "2 different devices" in (tmp_path / "mixed" / "summary.md").read_text()


def test_a_sweep_prints_the_provenance_under_its_summary(
        tiny_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "runs"
    shutil.copytree(tiny_store, root)
    assert main(["sweep", *TINY_SWEEP, "--out", str(root)]) == 0  # everything finished: nothing trains
    out = capsys.readouterr().out
    summary, _, rest = out.partition("provenance of the finished runs:")
    assert "el2n+drop" in summary and "hosts: " in rest
    assert next(line for line in rest.splitlines() if line.startswith("devices: cpu")).endswith("(2 runs)")


def test_mixed_names_nothing_for_runs_of_one_code_and_device() -> None:
    prov = {"package_version": "1.0", "commit": "a" * 40, "dirty": False, "device_name": "cpu (x86_64)"}
    assert provenance.mixed([prov, dict(prov)], "fig") == []
    assert provenance.mixed([prov, {**prov, "dirty": True}], "fig") == [
        "fig: its finished runs came from 2 different code versions: 1.0 @ aaaaaaaaaa (1 run), "
        "1.0 @ aaaaaaaaaa (dirty) (1 run)"]
    assert len(provenance.mixed([prov, None], "fig")) == 2  # a run without provenance is of unknown code and device
