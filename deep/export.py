"""Export a run store's scores, recalls and kept indices as plain files to share, and load such an export back.

An export folder holds `manifest.json` (one entry per scores task, recalls task and final run: its file, full
config and metrics) and one `.npz` per entry: `scores/<hash>.npz` with a scorer's per-sample `scores`,
`recalls/<hash>.npz` with DRoP's validation `class_recalls` (and `group_recalls`), and `kept/<hash>.npz` with a
final run's `kept` indices. Arrays are checked against the store's checksums on the way out and are read back
with allow_pickle=False, so an export is data, never code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deep.numbers import check_npz_members
from deep.outputs import check_outside_store, staged_folder
from deep.runs import Run, RunStore, read_json, write_json

MANIFEST = "manifest.json"
SECTIONS = {"scores": "scores", "recalls": "recalls", "kept": "final"}  # export subfolder -> kind of task exported


@dataclass(frozen=True)
class ExportEntry:
    """One exported run: its config, metrics and the file holding its arrays."""

    config: dict
    metrics: dict
    file: Path

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the entry, by name (headers checked against the file first: a shared export is outside data)."""
        check_npz_members(self.file)
        with np.load(self.file, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}


def _export_run(run: Run, folder: Path, section: str) -> dict:
    """Write one run's arrays to `folder/section/<hash>.npz` and return its manifest entry."""
    file = Path(section) / f"{run.path.name}.npz"
    np.savez_compressed(folder / file, **{name: run.array(name) for name in run.array_names()})
    return {"file": file.as_posix(), "config": run.config, "metrics": run.metrics}


def export_store(root: Path | str, out: Path | str) -> Path:
    """Write every finished scores, recalls and final task under `root` into the export folder `out`; returns the manifest.

    Every task is read and verified before anything is written, so that a damaged store (a CorruptRunError naming
    the task) or an empty one leaves no half-written export and no empty folders behind.
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise FileNotFoundError(f"run folder {root} does not exist: pass the folder a sweep wrote its runs to")
    check_outside_store("--out", out, root)
    store = RunStore(root)
    runs = {section: list(store.runs(kind)) for section, kind in SECTIONS.items()}
    if not any(runs.values()):
        raise ValueError(f"no finished runs under {root}: run a sweep into it first")
    manifest: dict[str, list[dict]] = {}
    with staged_folder(out) as stage:  # a failure half-way leaves no partial export
        for section, section_runs in runs.items():
            (stage / section).mkdir(parents=True, exist_ok=True)
            manifest[section] = [_export_run(run, stage, section) for run in section_runs]
        write_json(stage / MANIFEST, manifest)
    return out / MANIFEST


def load_export(folder: Path | str) -> dict[str, list[ExportEntry]]:
    """The entries of an export folder: {"scores": scores tasks, "recalls": recalls tasks, "kept": final runs}."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise FileNotFoundError(f"{folder / MANIFEST} not found: pass a folder written by `python -m deep export-scores`")
    manifest = read_json(folder / MANIFEST)
    return {
        section: [ExportEntry(e["config"], e["metrics"], folder / e["file"]) for e in manifest.get(section, [])]
        for section in SECTIONS
    }
