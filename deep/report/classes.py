"""Who keeps what: the class densities a protocol chooses, and how class accuracy goes with them (paper 003).

`class_densities` is Fig. 6: each line's sorted class densities per dataset density, and the correlation of class
density with full-data class accuracy. `class_accuracy_vs_density` is Fig. 2 (right): every class a point at
(class density, class accuracy), coloured by dataset density; the top row takes the accuracy of the `full` model
(the paper's view: does pruning keep more of the classes the full model finds hard?), the bottom row the
accuracy of the pruned model itself (do the classes given more data do better?).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from deep.prune import parse_protocol
from deep.report.panels import (
    FigureInput, density_colourbar, note_on, panel_grid, plot_series, protocol_lines, save, seed_note, series,
)
from deep.report.results import is_full, line_labels, lines, title
from deep.report.stats import correlation_records, full_class_accuracy, metric_records, write_csv


def _shaping(rows: Sequence[dict]) -> list[dict]:
    """The runs of protocols that choose class densities themselves (everything but `full` and `random`)."""
    return [row for row in rows if parse_protocol(row["protocol"]).changes_class_proportions]


def _full_records(rows: Sequence[dict]) -> list[dict]:
    """Seed statistics of the `full` runs' class accuracy."""
    return metric_records([row for row in rows if is_full(row)], ("class_accuracy",))


def _cell_means(records: Sequence[dict], quantity: str) -> dict[float, np.ndarray]:
    """Per density, the per-class means of a quantity in one line's records (classes in order)."""
    out: dict[float, list[tuple[int, float]]] = {}
    for r in records:
        if r["quantity"] == quantity:
            out.setdefault(r["density"], []).append((r["class"], r["mean"]))
    return {density: np.array([mean for _, mean in sorted(pairs)]) for density, pairs in sorted(out.items())}


def class_densities(report: FigureInput, stem: Path) -> list[Path]:
    """Figure 6 of paper 003: sorted class densities per density, and their correlation with full-data accuracy."""
    experiment, rows, notes = report.experiment, report.rows, report.notes
    shaping = _shaping(rows)
    if not shaping:
        notes.append(f"{title(experiment)}: no protocol changes class proportions, so no class-density figure")
        return []
    labels = line_labels(shaping)
    per_line = {key: metric_records(line_rows, ("class_density", "class_counts"))
                for key, line_rows in lines(shaping).items()}
    records = [record for line_records in per_line.values() for record in line_records]
    full_accuracy = full_class_accuracy(rows)
    if full_accuracy is None:
        notes.append(f"{title(experiment)}: no `full` runs, so no correlation with full-data class accuracy")
    else:
        records += _full_records(rows)
    fig, axes = panel_grid(len(per_line) + 1, 5, 3.4, 3.3)
    cmap = plt.get_cmap("viridis")
    for ax, (key, line_records) in zip(axes, per_line.items()):
        profiles = _cell_means(line_records, "class_density")
        for density, profile in profiles.items():
            profile = np.sort(profile)
            ax.plot(np.arange(1, profile.size + 1), profile, color=cmap(density), linewidth=1.2,
                    marker="o" if profile.size <= 20 else None, markersize=2.5)
        lowest = min(profiles)
        min_count = _cell_means(line_records, "class_counts")[lowest].min()
        ax.set(title=f"{labels[key]}\nmin kept per class at d = {lowest:g}: {min_count:.0f}", ylim=(0, 1.03),
               xlabel="class rank (sorted by class density)", ylabel="class density")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    corr_ax = axes[-1]
    if full_accuracy is None:
        note_on(corr_ax, "no `full` runs:\nno full-data class accuracy\nto correlate with")
    else:
        for line in protocol_lines(shaping, report.colours):
            line_records = correlation_records(line.rows, full_accuracy)
            records += line_records
            points = series(line_records, "correlation")
            mean_r = np.nanmean(points.mean) if np.isfinite(points.mean).any() else float("nan")
            plot_series(corr_ax, points, line.colour, f"{line.label} (mean r = {mean_r:.2f})", linestyle=line.style)
        corr_ax.axhline(0, color="0.5", linewidth=0.8, linestyle=":")
        corr_ax.legend(fontsize=7, frameon=False, loc="best")
    corr_ax.set(title="Pearson r: class density vs\nfull-data class accuracy", xlabel="dataset density d",
                ylabel="correlation across classes", xlim=(0, 1.02), ylim=(-1.05, 1.05))
    corr_ax.title.set_fontsize(9)
    corr_ax.grid(alpha=0.3)
    density_colourbar(fig, axes[:-1], "dataset density d (curve colour)")
    fig.suptitle(f"{title(experiment)}: class densities (means over seeds)", fontsize=10)
    return [save(fig, stem.with_suffix(".png")), write_csv(stem.with_suffix(".csv"), records)]


def class_accuracy_vs_density(report: FigureInput, stem: Path) -> list[Path]:
    """Figure 2 (right) of paper 003: each class's accuracy against its class density, per dataset density."""
    experiment, rows, notes = report.experiment, report.rows, report.notes
    shaping = _shaping(rows)
    if not shaping:
        return []  # class_densities notes it
    labels = line_labels(shaping)
    per_line = {key: metric_records(line_rows, ("class_density", "class_accuracy"))
                for key, line_rows in lines(shaping).items()}
    records = [record for line_records in per_line.values() for record in line_records]
    full_accuracy = full_class_accuracy(rows)
    views = [("accuracy after pruning", None)]
    if full_accuracy is None:
        notes.append(f"{title(experiment)}: no `full` runs, so class densities are drawn against the pruned "
                     "models' class accuracy only")
    else:
        records += _full_records(rows)
        views.insert(0, ("full-data class accuracy", full_accuracy))
    fig, grid = plt.subplots(len(views), len(per_line), figsize=(3.2 * len(per_line), 3.0 * len(views) + 1.0),
                             layout="constrained", squeeze=False, sharex=True, sharey=True)
    cmap = plt.get_cmap("viridis")
    for column, (key, line_records) in enumerate(per_line.items()):
        densities = _cell_means(line_records, "class_density")
        accuracies = _cell_means(line_records, "class_accuracy")
        for row_axes, (_, fixed) in zip(grid, views):
            ax = row_axes[column]
            for density, class_density in densities.items():
                ax.scatter(class_density, accuracies[density] if fixed is None else fixed, s=12, alpha=0.75,
                           color=cmap(density), edgecolors="none")
            ax.set(title=labels[key], xlim=(-0.02, 1.03), ylim=(-0.02, 1.03))
            ax.title.set_fontsize(9)
            ax.grid(alpha=0.3)
        grid[-1][column].set_xlabel("class density (kept share of the class)")
    for row_axes, (ylabel, _) in zip(grid, views):
        row_axes[0].set_ylabel(ylabel)
    density_colourbar(fig, list(grid.flat), "dataset density d (point colour)")
    fig.suptitle(f"{title(experiment)}: class accuracy against class density, one point per class "
                 f"({seed_note(shaping, bands=False)})", fontsize=10)
    return [save(fig, stem.with_suffix(".png")), write_csv(stem.with_suffix(".csv"), records)]
