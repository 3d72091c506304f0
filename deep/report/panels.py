"""What every figure gets and what it shares: `FigureInput` and `each_experiment` (the one signature of
deep.report.FIGURES), colours, lines, panel grids, legends, and `draw_panels`, the one function that draws metrics
against density for the robustness figure and the comparison figures alike."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize

from deep.prune import FULL, PROTOCOL_KINDS, parse_protocol
from deep.report.results import (
    EXPERIMENT_FIELDS, cells, experiments, is_full, line_labels, lines, protocols, suffixes,
)
from deep.report.stats import metric_records, write_csv

FULL_COLOUR = "black"
MEMBER_STYLES = ("-", "--", ":", "-.")  # dash patterns telling apart lines that share a colour
METRIC_LABELS = {
    "accuracy": "average accuracy",
    "worst_class_accuracy": "worst-class accuracy",
    "max_min_gap": "max − min class recall",
    "class_accuracy_std": "std of class recall",
    "worst_group_accuracy": "worst-group accuracy",
    "weighted_group_accuracy": "group-weighted accuracy",
}
LEGEND_INCH_PER_CHAR = 0.075  # width of a legend character at fontsize 9
LEGEND_HANDLE_INCH = 0.8  # width of a legend entry's line sample and padding


@dataclass(frozen=True)
class FigureInput:
    """What every figure gets: finished runs (one report row each), shared colours, and the report's notes."""

    rows: Sequence[dict]  # the whole store's runs; one experiment's under `each_experiment`
    colours: dict[str, object]  # protocol -> colour, the same in every figure
    notes: list[str]  # a figure appends what it could not draw, and why (summary.md and warnings list them)
    bias_protocol: str | None = None  # the protocol whose classes the class-bias figures draw (None: the default)
    experiment: dict = field(default_factory=dict)  # under `each_experiment`: the fields naming the experiment

    @classmethod
    def of(cls, rows: Sequence[dict], bias_protocol: str | None = None) -> FigureInput:
        """The input of every figure of a report on `rows`, with no notes yet."""
        return cls(rows, protocol_colours(protocols(rows)), [], bias_protocol)


# A figure: (input, stem) -> the files it wrote. `stem` is the output folder / the figure's registry name; a
# figure writes stem.png and stem.csv (suffixed when it draws several), or nothing (with a note) when it cannot.
Figure = Callable[[FigureInput, Path], list[Path]]


def each_experiment(draw: Figure) -> Figure:
    """The figure `draw` once per experiment in the store, its file names suffixed by what differs between them."""

    def figure(report: FigureInput, stem: Path) -> list[Path]:
        groups = experiments(report.rows)
        written = []
        for (key, rows), suffix in zip(groups.items(), suffixes(list(groups))):
            view = replace(report, rows=rows, experiment=dict(zip(EXPERIMENT_FIELDS, key)))
            written += draw(view, stem.with_name(stem.name + suffix))
        return written

    return figure


@dataclass(frozen=True)
class Series:
    """Values of one quantity along density: the mean and the min/max band over seeds."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def series(records: Sequence[dict], quantity: str, cls: int | str = "") -> Series:
    """One quantity (and class) of one line's records, by increasing density."""
    chosen = sorted((r for r in records if r["quantity"] == quantity and r["class"] == cls), key=lambda r: r["density"])
    column = lambda name: np.array([r[name] for r in chosen], dtype=float)  # noqa: E731
    return Series(column("density"), column("mean"), column("min"), column("max"))


@dataclass(frozen=True)
class Line:
    """One line of a metrics-against-density figure: the runs of one line, in one colour and dash pattern."""

    label: str
    rows: list[dict]
    colour: object
    style: str = "-"
    family: str = ""  # comparison figures: the colour family (an imbalance factor, a method)

    @property
    def reference(self) -> bool:
        """`full` runs sit at d = 1 only: drawn as a horizontal reference line."""
        return is_full(self.rows[0])


def protocol_colours(protocols: Iterable[str]) -> dict[str, object]:
    """One colour per protocol, fixed for a whole report so that a protocol looks the same in every figure."""
    ordered = sorted(set(protocols) - {FULL}, key=lambda p: (PROTOCOL_KINDS.index(parse_protocol(p).kind), p))
    palette = plt.get_cmap("tab10" if len(ordered) <= 10 else "tab20")
    return {FULL: FULL_COLOUR, **{p: palette(i % palette.N) for i, p in enumerate(ordered)}}


def protocol_lines(rows: Sequence[dict], colours: dict[str, object]) -> list[Line]:
    """A Line per protocol and variant of `rows`: the protocol's colour, and a dash pattern per variant of it."""
    labels = line_labels(rows)
    seen: dict[str, int] = {}
    drawn = []
    for key, line_rows in lines(rows).items():
        protocol = line_rows[0]["protocol"]
        rank = seen[protocol] = seen.get(protocol, -1) + 1
        drawn.append(Line(labels[key], line_rows, colours[protocol], MEMBER_STYLES[rank % len(MEMBER_STYLES)]))
    return drawn


def plot_series(ax: Axes, series: Series, colour: object, label: str, x: np.ndarray | None = None,
                linestyle: str = "-") -> None:
    """A mean line with markers and its min/max band over seeds."""
    x = series.x if x is None else x
    ax.plot(x, series.mean, color=colour, marker="o", markersize=3, linewidth=1.4, linestyle=linestyle, label=label)
    ax.fill_between(x, series.low, series.high, color=colour, alpha=0.15, linewidth=0)


def plot_reference(ax: Axes, series: Series, label: str, colour: object = FULL_COLOUR) -> None:
    """The `full` run as a horizontal line with its min/max band over seeds."""
    if series.mean.size:
        ax.axhline(series.mean[0], color=colour, linestyle="--", linewidth=1.1, label=label)
        ax.axhspan(series.low[0], series.high[0], color=colour, alpha=0.08, linewidth=0)


def note_on(ax: Axes, text: str) -> None:
    """Grey text in the middle of an empty panel, saying why it is empty."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9, color="0.35", transform=ax.transAxes)


def seed_note(*row_groups: Sequence[dict], bands: bool = True) -> str:
    """How many seeds the cells of the given groups of runs average over (and what the bands are)."""
    counts = sorted({len(cell) for rows in row_groups for cell in cells(rows).values()})
    seeds = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"mean over {seeds} seed(s)" + ("; bands: min/max over seeds" if bands else "")


def save(fig: plt.Figure, path: Path) -> Path:
    """Write the figure as a PNG and free it."""
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def panel_grid(count: int, max_cols: int, width: float, height: float,
               extra_height: float = 1.0) -> tuple[plt.Figure, list[Axes]]:
    """A figure with `count` panels in as few rows of at most `max_cols` as fit, rows filled evenly."""
    nrows = math.ceil(count / max_cols)
    ncols = math.ceil(count / nrows)
    fig, grid = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows + extra_height), layout="constrained", squeeze=False
    )
    for ax in grid.flat[count:]:
        ax.set_visible(False)
    return fig, list(grid.flat[:count])


def legend_columns(labels: Sequence[str], width: float) -> int:
    """As many legend columns as the longest label lets fit across `width` inches."""
    per_entry = LEGEND_HANDLE_INCH + LEGEND_INCH_PER_CHAR * max(map(len, labels), default=1)
    return max(1, min(len(labels), int(width // per_entry)))


def legend_below(fig: plt.Figure, ax: Axes, ncol: int) -> None:
    """The legend of `ax` under the whole figure, in `ncol` columns."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False, fontsize=9)


def density_colourbar(fig: plt.Figure, axes: Sequence[Axes], label: str, cmap: str = "viridis") -> None:
    """A horizontal colour bar under `axes` for dataset density from 0 to 1."""
    mappable = plt.cm.ScalarMappable(norm=Normalize(0, 1), cmap=cmap)
    fig.colorbar(mappable, ax=list(axes), label=label, location="bottom", shrink=0.6, aspect=40)


def draw_panels(lines: Sequence[Line], metrics: Sequence[str], title: str, stem: Path) -> list[Path]:
    """Each metric against density in its own panel, one curve per line (`full` as a horizontal reference).

    Writes `stem`.png and `stem`.csv (the seed statistics of every plotted point) and returns both paths.
    """
    per_line = [metric_records(line.rows, metrics) for line in lines]
    fig, axes = panel_grid(len(metrics), 4 if len(metrics) <= 4 else 3, 3.6, 3.1)
    labels = [f"{line.label} (d = 1)" if line.reference else line.label for line in lines]
    width, height = fig.get_size_inches()
    ncol = legend_columns(labels, width)
    families = list(dict.fromkeys(line.family for line in lines))
    if 1 < len(families) <= ncol:
        ncol = len(families)  # the legend fills column by column: a column per family (when they are equal in size)
    fig.set_size_inches(width, height + 0.22 * math.ceil(len(lines) / ncol))  # room for the legend below
    for ax, metric in zip(axes, metrics):
        for line, label, records in zip(lines, labels, per_line):
            points = series(records, metric)
            if line.reference:
                plot_reference(ax, points, label, line.colour)
            else:
                plot_series(ax, points, line.colour, label, linestyle=line.style)
        ax.set(title=METRIC_LABELS[metric], xlabel="dataset density d", xlim=(0, 1.02))
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}\n{seed_note(*[line.rows for line in lines])}", fontsize=10)
    legend_below(fig, axes[0], ncol)
    records = [record for records in per_line for record in records]
    return [save(fig, stem.with_suffix(".png")), write_csv(stem.with_suffix(".csv"), records)]
