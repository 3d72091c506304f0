"""Classification bias against sparsity, as paper 000 (Data Diet) draws it, for one protocol of each experiment.

`class_bias` is its Figs. 4 and 5: per-class keep ratios against sparsity, and the std of class accuracy against
sparsity for every line. `best_worst_classes` is its Fig. 3: the class accuracy of the classes the `full` model
gets most and least right, against sparsity (sparsity 0 is the `full` model).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from deep.prune import parse_protocol
from deep.report.panels import (
    FigureInput, note_on, plot_reference, plot_series, protocol_lines, save, seed_note, series,
)
from deep.report.results import is_full, line_labels, line_key, lines, protocols, title
from deep.report.stats import CSV_FIELDS, full_class_accuracy, metric_records, write_csv

EXTREME_CLASSES = 10  # paper 000 draws the 10 best and the 10 worst classes
RANK_FIELD = "full_rank"  # best_worst_classes.csv: a class's rank by full-data accuracy, 1 = best


def bias_line(rows: Sequence[dict], requested: str | None) -> list[dict] | None:
    """The runs of the line whose classes are drawn: the requested protocol, else EL2N (paper 000), else any
    plain score protocol, else any that changes class proportions; its first variant. None if there is none."""
    available = protocols(rows)
    plain = [p for p in available if parse_protocol(p).kind == "score"]
    shaping = [p for p in available if parse_protocol(p).changes_class_proportions]
    candidates = [requested] if requested in available else (["el2n"] if "el2n" in plain else []) + plain + shaping
    if not candidates:
        return None
    return next(line_rows for line_rows in lines(rows).values() if line_rows[0]["protocol"] == candidates[0])


def class_bias(report: FigureInput, stem: Path) -> list[Path]:
    """Paper 000's Figs. 4 and 5: per-class keep ratios against sparsity, and std of class accuracy against sparsity."""
    experiment, rows, notes = report.experiment, report.rows, report.notes
    chosen = bias_line(rows, report.bias_protocol)
    if report.bias_protocol is not None and report.bias_protocol not in protocols(rows):
        notes.append(f"{title(experiment)}: bias_protocol {report.bias_protocol} not run here; the default protocol's "
                     "classes are drawn")
    records = metric_records(rows, ("class_accuracy_std",))
    full_accuracy = full_class_accuracy(rows)
    fig, (keep_ax, std_ax) = plt.subplots(1, 2, figsize=(11.5, 4.4), layout="constrained")
    if chosen is None:
        notes.append(f"{title(experiment)}: no score-based protocol, so no class keep-ratio panel")
        note_on(keep_ax, "no protocol that\nchanges class proportions")
    else:
        keep_records = metric_records(chosen, ("class_density",))
        records += keep_records
        norm = None
        if full_accuracy is not None and np.isfinite(full_accuracy).any():
            norm = Normalize(np.nanmin(full_accuracy), np.nanmax(full_accuracy))
            fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="plasma"), ax=keep_ax,
                         label="full-data class accuracy (line colour)", pad=0.02)
        for k in sorted({r["class"] for r in keep_records}):
            points = series(keep_records, "class_density", k)
            known = norm is not None and np.isfinite(full_accuracy[k])
            keep_ax.plot(1 - points.x, points.mean, linewidth=0.9, alpha=0.85,
                         color=plt.get_cmap("plasma")(norm(full_accuracy[k])) if known else "0.55")
        grid = np.linspace(0, 1, 11)
        keep_ax.plot(grid, 1 - grid, color="black", linestyle="--", linewidth=0.9, label="uniform (= density)")
        keep_ax.legend(fontsize=8, frameon=False, loc="upper right")
        label = line_labels(rows)[line_key(chosen[0])]
        keep_ax.set(title=f"class keep ratio per class: {label}", xlabel="sparsity (1 − density)",
                    ylabel="class keep ratio (class density)", xlim=(-0.02, 1), ylim=(0, 1.03))
        keep_ax.grid(alpha=0.3)
    for line in protocol_lines(rows, report.colours):
        points = series(metric_records(line.rows, ("class_accuracy_std",)), "class_accuracy_std")
        if line.reference:
            plot_reference(std_ax, points, "full (sparsity 0)")
        else:
            plot_series(std_ax, points, line.colour, line.label, x=1 - points.x, linestyle=line.style)
    std_ax.set(title="std of class accuracy", xlabel="sparsity (1 − density)", ylabel="std of class recall",
               xlim=(-0.02, 1))
    std_ax.grid(alpha=0.3)
    std_ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"{title(experiment)}: class bias against sparsity ({seed_note(rows)})", fontsize=10)
    return [save(fig, stem.with_suffix(".png")), write_csv(stem.with_suffix(".csv"), records)]


def class_ranking(full_accuracy: np.ndarray) -> np.ndarray:
    """The classes that have a full-data accuracy, best first (ties: lower class first)."""
    known = np.flatnonzero(np.isfinite(full_accuracy))
    return known[np.lexsort((known, -full_accuracy[known]))]


def best_worst_classes(report: FigureInput, stem: Path) -> list[Path]:
    """Paper 000's Fig. 3: class accuracy against sparsity for the best and the worst classes of the full model.

    Up to EXTREME_CLASSES classes each, and at most half the ranked classes each, so the two sets never overlap.
    """
    experiment, rows, notes = report.experiment, report.rows, report.notes
    chosen = bias_line(rows, report.bias_protocol)
    full_accuracy = full_class_accuracy(rows)
    if chosen is None or full_accuracy is None:
        notes.append(f"{title(experiment)}: no `full` runs or no score-based protocol, so no best/worst-class figure")
        return []
    ranking = class_ranking(full_accuracy)
    n = min(EXTREME_CLASSES, ranking.size // 2)
    if n == 0:
        notes.append(f"{title(experiment)}: fewer than two classes with a full-data accuracy, so no best/worst-class "
                     "figure")
        return []
    best, worst = ranking[:n], ranking[ranking.size - n:]
    rank = {k: i + 1 for i, k in enumerate(ranking.tolist()) if i < n or i >= ranking.size - n}
    ranked = lambda records: [{**r, RANK_FIELD: rank[r["class"]]} for r in records if r["class"] in rank]  # noqa: E731
    full_records = ranked(metric_records([row for row in rows if is_full(row)], ("class_accuracy",)))
    line_records = ranked(metric_records(chosen, ("class_accuracy",)))
    label = line_labels(rows)[line_key(chosen[0])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained", sharey=True)
    palette = plt.get_cmap("tab10" if n <= 10 else "tab20")
    for ax, classes, which in zip(axes, (best, worst), ("best", "worst")):
        for i, k in enumerate(classes.tolist()):
            start, points = series(full_records, "class_accuracy", k), series(line_records, "class_accuracy", k)
            # Sparsity rises as density falls: the full model first, then the pruned runs from dense to sparse.
            ax.plot(np.concatenate([1 - start.x, 1 - points.x[::-1]]), np.concatenate([start.mean, points.mean[::-1]]),
                    color=palette(i % palette.N), marker="o", markersize=3, linewidth=1.2,
                    label=f"class {k} (full {full_accuracy[k]:.2f})")
        ax.set(title=f"the {n} {which} classes of the full model", xlabel="sparsity (1 − density)", xlim=(-0.02, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[0].set_ylabel("class test accuracy")
    fig.suptitle(f"{title(experiment)}: class accuracy against sparsity under {label} "
                 f"(sparsity 0: full; {seed_note(chosen, bands=False)})", fontsize=10)
    records = full_records + line_records
    csv_path = write_csv(stem.with_suffix(".csv"), records, (*CSV_FIELDS, RANK_FIELD))
    return [save(fig, stem.with_suffix(".png")), csv_path]
