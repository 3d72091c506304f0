"""`write_report`: every figure of `FIGURES` (PNG + CSV) and the summary tables of a run store, into one folder."""

from __future__ import annotations

import warnings
from pathlib import Path

from deep import provenance
from deep.plugins import add_plugins
from deep.report.bias import best_worst_classes, class_bias
from deep.report.classes import class_accuracy_vs_density, class_densities
from deep.report.exponent import chosen_exponents
from deep.report.html import write_index
from deep.report.panels import Figure, FigureInput, each_experiment
from deep.report.results import EXPERIMENT_FIELDS, cells, check_consistent, experiments, load_results, protocols, title
from deep.report.robustness import group_robustness, imbalance, robustness
from deep.report.tables import write_summaries

# Figure registry: name (the stem of its files) -> figure, one signature (deep.report.panels.Figure). Adding a
# figure = one module with its function (wrapped in `each_experiment` to draw it once per experiment) and one line
# below, or, from another package, one entry point in the group `drop_pruning.figures` (deep.plugins).
FIGURES: dict[str, Figure] = {
    "robustness": each_experiment(robustness),  # paper 003, Fig. 1
    "class_densities": each_experiment(class_densities),  # paper 003, Fig. 6
    "class_accuracy_vs_density": each_experiment(class_accuracy_vs_density),  # paper 003, Fig. 2
    "class_bias": each_experiment(class_bias),  # paper 000, Figs. 4-5
    "best_worst_classes": each_experiment(best_worst_classes),  # paper 000, Fig. 3
    "chosen_exponent": each_experiment(chosen_exponents),  # where runs chose beta on validation (--quota-exponent auto)
    "imbalance": imbalance,  # paper 003, Fig. 8: where some run is imbalanced
    "group_robustness": group_robustness,  # paper 003, Fig. 9: where runs have group metrics
}
add_plugins("figures", FIGURES)


def write_report(root: Path | str, out: Path | str, *, bias_protocol: str | None = None) -> list[Path]:
    """Write every figure of FIGURES (PNG + CSV) and summary.csv / summary.md and index.html (all of it on one
    page); return the paths written.

    `bias_protocol`: the protocol whose classes the paper-000 figures draw (default: el2n, else the first plain
    score protocol). What cannot be drawn (no `full` run, no protocol that changes class proportions) is skipped
    with a warning and a note in summary.md. A store with two runs in one (protocol, variant, density, seed) cell
    is refused.
    """
    rows = load_results(root)
    check_consistent(rows)
    if bias_protocol is not None and bias_protocol not in protocols(rows):
        raise ValueError(f"bias_protocol {bias_protocol!r} was not run under {root}: pass one of {protocols(rows)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = FigureInput.of(rows, bias_protocol)
    written = [path for name, figure in FIGURES.items() for path in figure(report, out / name)]
    for key, group in experiments(rows).items():
        name = title(dict(zip(EXPERIMENT_FIELDS, key)))
        if max(len(cell) for cell in cells(group).values()) == 1:
            report.notes.append(f"{name}: a single seed per run, so bands are empty and std is 0")
        report.notes.extend(provenance.mixed(provenance.of_rows(root, group), name))
    written += write_summaries(rows, out, report.notes)
    written.append(write_index(root, out, rows, written, report.notes))
    for note in report.notes:
        warnings.warn(note, stacklevel=2)
    return written
