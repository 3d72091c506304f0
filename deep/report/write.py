"""`write_report`: every figure (PNG + CSV) and the summary tables of a run store, into one folder."""

from __future__ import annotations

import warnings
from pathlib import Path

from deep import provenance
from deep.report.bias import best_worst_classes, bias_line, class_bias
from deep.report.classes import class_accuracy_vs_density, class_densities
from deep.report.html import write_index
from deep.report.panels import protocol_colours
from deep.report.results import (
    EXPERIMENT_FIELDS, cells, check_consistent, experiments, load_results, protocols, suffixes, title,
)
from deep.report.robustness import group_robustness, imbalance, robustness
from deep.report.tables import write_summaries


def write_report(root: Path | str, out: Path | str, *, bias_protocol: str | None = None) -> list[Path]:
    """Write the robustness, class-density, class-accuracy, class-bias, best/worst-class, imbalance and group
    figures (PNG + CSV), summary.csv / summary.md and index.html (all of it on one page); return the paths written.

    Per experiment: robustness, class_densities and class_accuracy_vs_density (paper 003, Figs. 1, 6, 2),
    class_bias and best_worst_classes (paper 000, Figs. 4-5 and 3); the imbalance figure where some run is
    imbalanced, the group figure where runs have group metrics. `bias_protocol`: the protocol whose classes
    the paper-000 figures draw (default: el2n, else the first plain score protocol). What cannot be drawn (no
    `full` run, no protocol that changes class proportions) is skipped with a warning and a note in summary.md.
    A store with two runs in one (protocol, variant, density, seed) cell is refused.
    """
    rows = load_results(root)
    check_consistent(rows)
    if bias_protocol is not None and bias_protocol not in protocols(rows):
        raise ValueError(f"bias_protocol {bias_protocol!r} was not run under {root}: pass one of {protocols(rows)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colours = protocol_colours(protocols(rows))
    notes: list[str] = []
    written: list[Path] = []
    groups = experiments(rows)
    for (key, group), suffix in zip(groups.items(), suffixes(list(groups))):
        experiment = dict(zip(EXPERIMENT_FIELDS, key))
        if bias_protocol is not None and bias_protocol not in protocols(group):
            notes.append(f"{title(experiment)}: bias_protocol {bias_protocol} not run here; "
                         "the default protocol's classes are drawn")
        chosen = bias_line(group, bias_protocol)
        notes += provenance.mixed(provenance.of_rows(root, group), title(experiment))
        written += robustness(experiment, group, out / f"robustness{suffix}", colours, notes)
        written += class_densities(experiment, group, out / f"class_densities{suffix}", colours, notes)
        written += class_accuracy_vs_density(experiment, group, out / f"class_accuracy_vs_density{suffix}", notes)
        written += class_bias(experiment, group, chosen, out / f"class_bias{suffix}", colours, notes)
        written += best_worst_classes(experiment, group, chosen, out / f"best_worst_classes{suffix}", notes)
        if max(len(cell) for cell in cells(group).values()) == 1:
            notes.append(f"{title(experiment)}: a single seed per run, so bands are empty and std is 0")
    written += imbalance(rows, out)
    written += group_robustness(rows, out)
    written += write_summaries(rows, out, notes)
    written.append(write_index(root, out, rows, written, notes))
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return written
