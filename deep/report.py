"""Tables and figures from a run store: the robustness curves, class densities and summary tables of the papers.

Every figure is drawn once per experiment, i.e. per combination of dataset (name, data file, split seed),
model, method, quota unit and imbalance found in the store; file names get a suffix naming what differs
when there is more than one. Two figures compare experiments instead: `imbalance` (paper 003, Fig. 8) puts
the imbalance factors of one method side by side, one colour family per factor; `group_robustness` (Fig. 9)
puts every method and protocol run on data with groups side by side, one colour family per method.
Each PNG comes with a CSV of exactly the numbers it plots, in one long format: the experiment's fields,
protocol, density, quantity, class (blank for scalars), n_seeds, mean, std, min, max. Statistics are over
seeds; std uses ddof=0 (the population std: 0, not NaN, for one seed).
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display, also on clusters
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from deep.prune import PROTOCOL_KINDS, parse_protocol  # noqa: E402
from deep.runs import RunStore  # noqa: E402

EXPERIMENT_FIELDS = ("dataset", "data", "split_seed", "model", "method", "quota_unit", "imbalance")
RUN_FIELDS = (*EXPERIMENT_FIELDS, "protocol", "scorer", "density", "seed")
REQUIRED_METRICS = (
    "accuracy", "worst_class_accuracy", "class_accuracy", "max_min_gap", "class_accuracy_std",
    "class_counts", "class_density",
)
METRIC_LABELS = {
    "accuracy": "average accuracy",
    "worst_class_accuracy": "worst-class accuracy",
    "max_min_gap": "max − min class recall",
    "class_accuracy_std": "std of class recall",
    "worst_group_accuracy": "worst-group accuracy",
    "weighted_group_accuracy": "group-weighted accuracy",
}
CLASS_METRICS = ("accuracy", "worst_class_accuracy", "max_min_gap", "class_accuracy_std")
GROUP_METRICS = ("worst_group_accuracy", "weighted_group_accuracy")
SUMMARY_DENSITIES = (0.3, 0.5, 0.8, 1.0)
SUMMARY_METRICS = ("accuracy", "worst_class_accuracy")  # plus worst-group accuracy where runs have groups
SUMMARY_SHORT = {"accuracy": "acc", "worst_class_accuracy": "worst", "worst_group_accuracy": "worst-group"}
SEED_DDOF = 0
CSV_FIELDS = (*EXPERIMENT_FIELDS, "protocol", "density", "quantity", "class", "n_seeds", "mean", "std", "min", "max")
FULL_COLOUR = "black"
IMBALANCE_FAMILY = ("dataset", "data", "split_seed", "model", "method", "quota_unit")  # one figure, imbalances vary
GROUP_FAMILY = ("dataset", "data", "split_seed", "model", "imbalance")  # one figure, methods and quota units vary
# Sequential colour maps, one per family of lines (an imbalance factor, a method); shades and dashes tell members.
FAMILY_CMAPS = ("Blues", "Reds", "Greens", "Purples", "Oranges", "Greys", "YlOrBr", "BuGn")
MEMBER_STYLES = ("-", "--", ":", "-.")


def protocol_kind(protocol: str) -> str:
    """Which of PROTOCOL_KINDS a stored protocol name is (any scorer name accepted)."""
    return parse_protocol(protocol).kind


def uses_quotas(protocol: str) -> bool:
    """Whether a protocol allocates counts per unit (class or group), so that its quota unit matters."""
    return parse_protocol(protocol).uses_quotas


def changes_class_proportions(protocol: str) -> bool:
    """Whether a protocol chooses class densities itself (everything but `full` and `random`)."""
    return parse_protocol(protocol).changes_class_proportions


def _density_key(density: float) -> float:
    """Densities compared after rounding, so 0.3 from a CLI and 0.30000000000000004 from a range agree."""
    return round(float(density), 6)


def _sort_key(row: dict) -> tuple:
    imbalance = row["imbalance"]
    return (
        row["dataset"], row["data"] or "", row["split_seed"], row["model"], row["method"], row["quota_unit"],
        (imbalance is not None, imbalance or 0), PROTOCOL_KINDS.index(protocol_kind(row["protocol"])),
        row["protocol"], _density_key(row["density"]), row["seed"], row["run"],
    )


def _row(run_path: Path, config: dict, metrics: dict) -> dict:
    """One flat row: the run's identifying config fields, then all its metrics."""
    missing = [key for key in REQUIRED_METRICS if key not in metrics]
    if missing:
        raise ValueError(f"run {run_path}: metrics.json lacks {missing}; delete the folder and run it again")
    try:
        dataset = config["dataset"]
        fields = {
            "dataset": dataset["name"], "data": dataset.get("data"), "split_seed": dataset.get("split_seed"),
            "imbalance": dataset.get("imbalance"), "model": config["model"], "method": config["method"],
            "quota_unit": config["quota_unit"], "protocol": config["protocol"], "scorer": config.get("scorer"),
            "density": float(config["density"]), "seed": config["seed"],
        }
    except (KeyError, TypeError) as error:
        raise ValueError(f"run {run_path}: config.json lacks {error}; it does not follow the run schema") from error
    return {**metrics, **fields, "run": run_path.name}


def load_results(root: Path | str) -> list[dict]:
    """One flat row per finished final run under `root` (config fields + metrics), in a fixed order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"run folder {root} does not exist: pass the folder a sweep wrote its runs to")
    finals = (run for run in RunStore(root).runs("final") if run.config.get("kind") == "final")
    rows = [_row(run.path, run.config, run.metrics) for run in finals]
    if not rows:
        raise ValueError(
            f"no finished runs under {root}: run a sweep into it first "
            "(only run folders with a `done` marker and kind 'final' count)"
        )
    return sorted(rows, key=_sort_key)


def _fmt(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _varies(rows: Sequence[dict], key: str) -> bool:
    return len({repr(row.get(key)) for row in rows}) > 1


def format_table(rows: Sequence[dict]) -> str:
    """A fixed-width text table of runs; method, quota unit, imbalance and worst-group only where informative."""
    columns: list[tuple[str, Callable[[dict], str]]] = [
        ("dataset", lambda r: r["dataset"]),
        ("model", lambda r: r["model"]),
        *[(key, lambda r, key=key: _fmt(r[key]))
          for key in ("method", "quota_unit", "imbalance") if _varies(rows, key)],
        ("protocol", lambda r: r["protocol"]),
        ("density", lambda r: f"{r['density']:g}"),
        ("seed", lambda r: str(r["seed"])),
        ("accuracy", lambda r: _fmt(r["accuracy"])),
        ("worst-class", lambda r: _fmt(r["worst_class_accuracy"])),
        ("gap", lambda r: _fmt(r["max_min_gap"])),
        ("std", lambda r: _fmt(r["class_accuracy_std"])),
    ]
    if any(row.get("worst_group_accuracy") is not None for row in rows):
        columns.append(("worst-group", lambda r: _fmt(r.get("worst_group_accuracy"))))
    headers = [header for header, _ in columns]
    return _aligned(headers, [[cell(row) for _, cell in columns] for row in rows], headers.index("density"))


def _aligned(headers: Sequence[str], body: Sequence[Sequence[str]], first_numeric: int) -> str:
    """A fixed-width text table: columns from `first_numeric` on are right-aligned."""
    cells = [list(headers), *body]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    lines = [
        "  ".join(text.rjust(w) if i >= first_numeric else text.ljust(w) for i, (text, w) in enumerate(zip(line, widths))).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_summary(rows: Sequence[dict], densities: Sequence[float] = SUMMARY_DENSITIES) -> str:
    """Per experiment, a text table of mean ± std over seeds of average and worst-class accuracy by protocol and density."""
    blocks = []
    for key, group in _groups(rows, _experiment_key).items():
        experiment = dict(zip(EXPERIMENT_FIELDS, key))
        headers, keys = _summary_header(densities, _summary_metrics(group))
        body = [[str(line[k]) or "-" for k in keys] for line in _summary_rows(experiment, group, densities)]
        blocks.append(f"{_title(experiment)} (mean ± std over seeds)\n{_aligned(headers, body, 1)}")
    return "\n\n".join(blocks)


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson correlation over the entries finite in both vectors; NaN when either is constant there."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {x.shape} and {y.shape}")
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    # A spread at rounding level is no spread: centring it would give an arbitrary +-1.
    if x.size < 2 or any(np.ptp(v) <= 1e-12 * max(1.0, np.abs(v).max()) for v in (x, y)):
        return float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    return float(np.clip(xc @ yc / math.sqrt((xc @ xc) * (yc @ yc)), -1.0, 1.0))


@dataclass(frozen=True)
class SeedStats:
    """Statistics over seeds of a scalar or per-class quantity (std with ddof=SEED_DDOF)."""

    n: int
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray


def seed_stats(values: Sequence[float] | Sequence[Sequence[float]]) -> SeedStats:
    """Mean, std, min and max over the first axis (one entry per seed)."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError("values must hold one entry per seed, got none")
    return SeedStats(array.shape[0], array.mean(0), array.std(0, ddof=SEED_DDOF), array.min(0), array.max(0))


def _groups(rows: Iterable[dict], key: Callable[[dict], tuple]) -> dict[tuple, list[dict]]:
    """Rows grouped by `key`, groups in order of first appearance (rows come sorted, so this is stable)."""
    out: dict[tuple, list[dict]] = {}
    for row in rows:
        out.setdefault(key(row), []).append(row)
    return out


def _experiment_key(row: dict) -> tuple:
    return tuple(row[field] for field in EXPERIMENT_FIELDS)


def _cells(rows: Iterable[dict]) -> dict[tuple, list[dict]]:
    """Rows grouped by (protocol, density): each group holds one row per seed."""
    return _groups(rows, lambda r: (r["protocol"], _density_key(r["density"])))


def _check_one_run_per_seed(rows: Sequence[dict]) -> None:
    """Two runs differing only in e.g. training settings would be averaged as if they were seeds."""
    runs = _groups(rows, lambda r: (r["protocol"], _density_key(r["density"]), r["seed"]))
    for (protocol, density, seed), same in runs.items():
        if len(same) > 1:
            runs = ", ".join(r["run"] for r in same)
            raise ValueError(
                f"runs {runs} share protocol {protocol}, density {density} and seed {seed} but differ in other "
                "settings (training or query config): report them from separate run folders"
            )


def _records(experiment: dict, protocol: str, density: float, quantity: str, values: list) -> list[dict]:
    """CSV records of one quantity's seed statistics: one record for a scalar, one per class for a vector."""
    stats = seed_stats(values)
    base = {**experiment, "protocol": protocol, "density": density, "quantity": quantity, "n_seeds": stats.n}
    if stats.mean.ndim == 0:
        return [{**base, "class": "", "mean": float(stats.mean), "std": float(stats.std),
                 "min": float(stats.low), "max": float(stats.high)}]
    return [
        {**base, "class": k, "mean": float(stats.mean[k]), "std": float(stats.std[k]),
         "min": float(stats.low[k]), "max": float(stats.high[k])}
        for k in range(stats.mean.size)
    ]


def _metric_records(experiment: dict, rows: Sequence[dict], quantities: Iterable[str]) -> list[dict]:
    """Seed statistics of each quantity in every (protocol, density) cell that reports it for all its seeds."""
    records = []
    for quantity in quantities:
        for (protocol, density), cell in _cells(rows).items():
            values = [row.get(quantity) for row in cell]
            if all(v is not None for v in values):
                records += _records(experiment, protocol, density, quantity, values)
    return records


def _full_class_accuracy(rows: Sequence[dict]) -> np.ndarray | None:
    """Per-class test accuracy of the `full` runs, mean over seeds (None without full runs)."""
    full = [row["class_accuracy"] for row in rows if row["protocol"] == "full"]
    return seed_stats(full).mean if full else None


def _correlation_records(experiment: dict, rows: Sequence[dict], full_accuracy: np.ndarray) -> list[dict]:
    """Per seed, Pearson r between the kept class densities and the full-data class accuracy; stats over seeds."""
    return [
        record
        for (protocol, density), cell in _cells(rows).items()
        if changes_class_proportions(protocol)
        for record in _records(
            experiment, protocol, density, "correlation",
            [pearson(row["class_density"], full_accuracy) for row in cell],
        )
    ]


def _write_csv(path: Path, records: Sequence[dict], fields: Sequence[str] = CSV_FIELDS) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows({key: "" if value is None else value for key, value in r.items()} for r in records)
    return path


@dataclass(frozen=True)
class Series:
    """One plotted line: x positions with the mean and min/max band over seeds."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _series(records: Sequence[dict], protocol: str, quantity: str, cls: int | str = "") -> Series:
    """The records of one protocol, quantity and class, by increasing density."""
    chosen = sorted(
        (r for r in records if r["protocol"] == protocol and r["quantity"] == quantity and r["class"] == cls),
        key=lambda r: r["density"],
    )
    column = lambda name: np.array([r[name] for r in chosen], dtype=float)  # noqa: E731
    return Series(column("density"), column("mean"), column("min"), column("max"))


def _plot_series(ax: Axes, series: Series, colour: object, label: str, x: np.ndarray | None = None,
                 linestyle: str = "-") -> None:
    x = series.x if x is None else x
    ax.plot(x, series.mean, color=colour, marker="o", markersize=3, linewidth=1.4, linestyle=linestyle, label=label)
    ax.fill_between(x, series.low, series.high, color=colour, alpha=0.15, linewidth=0)


def _plot_reference(ax: Axes, series: Series, label: str, colour: object = FULL_COLOUR) -> None:
    """The `full` run as a horizontal line with its min/max band over seeds."""
    if series.mean.size:
        ax.axhline(series.mean[0], color=colour, linestyle="--", linewidth=1.1, label=label)
        ax.axhspan(series.low[0], series.high[0], color=colour, alpha=0.08, linewidth=0)


def _note_on(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9, color="0.35", transform=ax.transAxes)


def protocol_colours(protocols: Iterable[str]) -> dict[str, object]:
    """One colour per protocol, fixed for a whole report so that a protocol looks the same in every figure."""
    ordered = sorted(set(protocols) - {"full"}, key=lambda p: (PROTOCOL_KINDS.index(protocol_kind(p)), p))
    palette = plt.get_cmap("tab10" if len(ordered) <= 10 else "tab20")
    return {"full": FULL_COLOUR, **{p: palette(i % palette.N) for i, p in enumerate(ordered)}}


def _protocols(rows: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(row["protocol"] for row in rows))


def _title(experiment: dict) -> str:
    """What an experiment (or a family of experiments, without method or imbalance) is, in one line."""
    data = f" ({Path(experiment['data']).name})" if experiment["data"] else ""
    parts = [f"{experiment['dataset']}{data}", experiment["model"]]
    if "method" in experiment:
        parts += [experiment["method"], f"quotas per {experiment['quota_unit']}"]
    if experiment.get("imbalance") is not None:
        parts.append(f"imbalance {experiment['imbalance']}")
    return " · ".join(str(p) for p in parts)


def _seed_note(*row_groups: Sequence[dict]) -> str:
    """How many seeds the cells of the given groups of runs average over."""
    counts = sorted({len(cell) for rows in row_groups for cell in _cells(rows).values()})
    seeds = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"mean over {seeds} seed(s); bands: min/max over seeds"


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _panel_grid(count: int, max_cols: int, width: float, height: float) -> tuple[plt.Figure, list[Axes]]:
    """A figure with `count` panels in rows of at most `max_cols`, spare grid cells hidden."""
    ncols = min(count, max_cols)
    nrows = math.ceil(count / ncols)
    fig, grid = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows + 1.0), layout="constrained", squeeze=False
    )
    for ax in grid.flat[count:]:
        ax.set_visible(False)
    return fig, list(grid.flat[:count])


def _outside_legend(fig: plt.Figure, ax: Axes, ncol: int) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(handles)), frameon=False)


def _robustness(experiment: dict, rows: Sequence[dict], stem: Path, colours: dict, notes: list[str]) -> list[Path]:
    """The four-panel figure: each robustness metric against density, one line per protocol."""
    has_groups = all(row.get("worst_group_accuracy") is not None for row in rows)
    metrics = CLASS_METRICS + (GROUP_METRICS if has_groups else ())
    records = _metric_records(experiment, rows, metrics)
    protocols = _protocols(rows)
    if "full" not in protocols:
        notes.append(f"{_title(experiment)}: no `full` runs, so the robustness figure has no full-data reference line")
    fig, axes = _panel_grid(len(metrics), 4 if len(metrics) <= 4 else 3, 3.6, 3.1)
    for ax, metric in zip(axes, metrics):
        for protocol in protocols:
            series = _series(records, protocol, metric)
            if protocol == "full":
                _plot_reference(ax, series, "full (d = 1)")
            else:
                _plot_series(ax, series, colours[protocol], protocol)
        ax.set(title=METRIC_LABELS[metric], xlabel="dataset density d", xlim=(0, 1.02))
        ax.grid(alpha=0.3)
    fig.suptitle(f"{_title(experiment)}\n{_seed_note(rows)}", fontsize=10)
    _outside_legend(fig, axes[0], ncol=7)
    return [_save(fig, stem.with_suffix(".png")), _write_csv(stem.with_suffix(".csv"), records)]


@dataclass(frozen=True)
class Line:
    """One line of a comparison figure: the runs of one protocol of one experiment, in its family's colours."""

    family: str  # legend family: an imbalance factor, a method
    label: str
    protocol: str
    experiment: dict  # the experiment fields its CSV records carry
    rows: list[dict]


def _family_styles(lines: Sequence[Line]) -> list[tuple[object, str]]:
    """(colour, line style) per line: a colour map per family, darkest first, and a dash pattern per member.

    The `full` reference of a family takes its darkest shade; the curves are ranked among themselves.
    """
    families = list(dict.fromkeys(line.family for line in lines))
    curves = {family: [line for line in lines if line.family == family and line.protocol != "full"]
              for family in families}
    styles = []
    for line in lines:
        cmap = plt.get_cmap(FAMILY_CMAPS[families.index(line.family) % len(FAMILY_CMAPS)])
        members = curves[line.family]
        rank = members.index(line) if line in members else 0
        styles.append((cmap(0.9 - 0.45 * rank / max(1, len(members) - 1)), MEMBER_STYLES[rank % len(MEMBER_STYLES)]))
    return styles


def _comparison(lines: Sequence[Line], metrics: Sequence[str], title: str, stem: Path) -> list[Path]:
    """Metrics against density, one line per Line (`full` as a horizontal reference in its family's colour)."""
    per_line = [_metric_records(line.experiment, line.rows, metrics) for line in lines]
    fig, axes = _panel_grid(len(metrics), 4, 3.6, 3.1)
    ncol = min(len(metrics), 4)  # one legend column per panel column
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + 0.2 * math.ceil(len(lines) / ncol))  # room for the legend below
    for ax, metric in zip(axes, metrics):
        for line, records, (colour, style) in zip(lines, per_line, _family_styles(lines)):
            series = _series(records, line.protocol, metric)
            if line.protocol == "full":
                _plot_reference(ax, series, f"{line.label} (d = 1)", colour)
            else:
                _plot_series(ax, series, colour, line.label, linestyle=style)
        ax.set(title=METRIC_LABELS[metric], xlabel="dataset density d", xlim=(0, 1.02))
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}\n{_seed_note(*[line.rows for line in lines])}", fontsize=10)
    _outside_legend(fig, axes[0], ncol=ncol)
    records = [record for records in per_line for record in records]
    return [_save(fig, stem.with_suffix(".png")), _write_csv(stem.with_suffix(".csv"), records)]


def _imbalance_lines(rows: Sequence[dict]) -> list[Line]:
    """Paper 003 Fig. 8: every protocol at every imbalance factor of one method (none unless one is imbalanced)."""
    if all(row["imbalance"] is None for row in rows):
        return []
    lines = []
    for key, group in _groups(rows, _experiment_key).items():
        experiment = dict(zip(EXPERIMENT_FIELDS, key))
        family = "balanced" if experiment["imbalance"] is None else f"I = {experiment['imbalance']:g}"
        lines += [Line(family, f"{family} · {protocol}", protocol, experiment,
                       [row for row in group if row["protocol"] == protocol]) for protocol in _protocols(group)]
    return lines


def _group_lines(rows: Sequence[dict]) -> list[Line]:
    """Paper 003 Fig. 9: every method and protocol run on data with groups.

    A protocol without quotas prunes the same whatever the quota unit, so its runs under both units are one
    line (per density and seed the first run found is drawn, `class` before `group`).
    """
    grouped = [row for row in rows if row.get("worst_group_accuracy") is not None]
    lines: dict[tuple, Line] = {}
    for row in grouped:
        unit = row["quota_unit"] if uses_quotas(row["protocol"]) else None
        key = (row["method"], row["protocol"], unit)
        if key not in lines:
            label = f"{row['method']} · {row['protocol']}" + (f" · {unit} quotas" if unit else "")
            experiment = {field: row[field] for field in EXPERIMENT_FIELDS}
            lines[key] = Line(row["method"], label, row["protocol"], experiment, [])
        seen = {(_density_key(r["density"]), r["seed"]) for r in lines[key].rows}
        if (_density_key(row["density"]), row["seed"]) not in seen:
            lines[key].rows.append(row)
    return list(lines.values())


def _comparisons(rows: Sequence[dict], fields: Sequence[str], make_lines: Callable[[Sequence[dict]], list[Line]],
                 metrics: Sequence[str], name: str, what: str, out: Path) -> list[Path]:
    """One comparison figure per family of experiments (runs equal in `fields`) that gives any lines."""
    families = {key: lines for key, group in _groups(rows, lambda r: tuple(r[f] for f in fields)).items()
                if (lines := make_lines(group))}
    written = []
    for (key, lines), suffix in zip(families.items(), _suffixes(list(families), fields)):
        title = f"{_title(dict(zip(fields, key)))}: {what}"
        written += _comparison(lines, metrics, title, out / f"{name}{suffix}")
    return written


def _density_colourbar(fig: plt.Figure, axes: Sequence[Axes], label: str, cmap: str = "viridis") -> None:
    mappable = plt.cm.ScalarMappable(norm=Normalize(0, 1), cmap=cmap)
    fig.colorbar(mappable, ax=list(axes), label=label, location="bottom", shrink=0.6, aspect=40)


def _class_densities(experiment: dict, rows: Sequence[dict], stem: Path, colours: dict, notes: list[str]) -> list[Path]:
    """Figure 6 of paper 003: sorted class densities per density, and their correlation with full-data accuracy."""
    protocols = [p for p in _protocols(rows) if changes_class_proportions(p)]
    if not protocols:
        notes.append(f"{_title(experiment)}: no protocol changes class proportions, so no class-density figure")
        return []
    shaping = [row for row in rows if row["protocol"] in protocols]
    records = _metric_records(experiment, shaping, ("class_density", "class_counts"))
    full_accuracy = _full_class_accuracy(rows)
    if full_accuracy is None:
        notes.append(f"{_title(experiment)}: no `full` runs, so no correlation with full-data class accuracy")
    else:
        records += _metric_records(experiment, [r for r in rows if r["protocol"] == "full"], ("class_accuracy",))
        records += _correlation_records(experiment, shaping, full_accuracy)
    fig, axes = _panel_grid(len(protocols) + 1, 5, 3.4, 3.3)
    cmap = plt.get_cmap("viridis")
    for ax, protocol in zip(axes, protocols):
        densities = sorted({r["density"] for r in records if r["protocol"] == protocol})
        for density in densities:
            cell = [r for r in records if r["protocol"] == protocol and r["density"] == density]
            profile = np.sort([r["mean"] for r in cell if r["quantity"] == "class_density"])
            ax.plot(np.arange(1, profile.size + 1), profile, color=cmap(density), linewidth=1.2,
                    marker="o" if profile.size <= 20 else None, markersize=2.5)
        lowest = min(densities)
        min_count = min(r["mean"] for r in records
                        if r["protocol"] == protocol and r["density"] == lowest and r["quantity"] == "class_counts")
        ax.set(title=f"{protocol}\nmin kept per class at d = {lowest:g}: {min_count:.0f}", ylim=(0, 1.03),
               xlabel="class rank (sorted by class density)", ylabel="class density")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    corr_ax = axes[-1]
    if full_accuracy is None:
        _note_on(corr_ax, "no `full` runs:\nno full-data class accuracy\nto correlate with")
    else:
        for protocol in protocols:
            series = _series(records, protocol, "correlation")
            mean_r = np.nanmean(series.mean) if np.isfinite(series.mean).any() else float("nan")
            _plot_series(corr_ax, series, colours[protocol], f"{protocol} (mean r = {mean_r:.2f})")
        corr_ax.axhline(0, color="0.5", linewidth=0.8, linestyle=":")
        corr_ax.legend(fontsize=7, frameon=False, loc="best")
    corr_ax.set(title="Pearson r: class density vs\nfull-data class accuracy", xlabel="dataset density d",
                ylabel="correlation across classes", xlim=(0, 1.02), ylim=(-1.05, 1.05))
    corr_ax.title.set_fontsize(9)
    corr_ax.grid(alpha=0.3)
    _density_colourbar(fig, axes[:-1], "dataset density d (curve colour)")
    fig.suptitle(f"{_title(experiment)}: class densities (means over seeds)", fontsize=10)
    return [_save(fig, stem.with_suffix(".png")), _write_csv(stem.with_suffix(".csv"), records)]


def _bias_protocol(protocols: Sequence[str], requested: str | None) -> str | None:
    """The protocol whose class keep ratios are drawn: as asked, else EL2N (paper 000), else any plain score."""
    if requested is not None:
        return requested
    plain = [p for p in protocols if protocol_kind(p) == "score"]
    candidates = (["el2n"] if "el2n" in plain else []) + plain + [p for p in protocols if changes_class_proportions(p)]
    return candidates[0] if candidates else None


def _class_bias(
    experiment: dict, rows: Sequence[dict], stem: Path, colours: dict, notes: list[str], requested: str | None
) -> list[Path]:
    """Paper 000's view: per-class keep ratios against sparsity, and std of class accuracy against sparsity."""
    protocols = _protocols(rows)
    chosen = _bias_protocol(protocols, requested)
    records = _metric_records(experiment, rows, ("class_accuracy_std",))
    full_accuracy = _full_class_accuracy(rows)
    fig, (keep_ax, std_ax) = plt.subplots(1, 2, figsize=(10.5, 4.2), layout="constrained")
    if chosen is None:
        notes.append(f"{_title(experiment)}: no score-based protocol, so no class keep-ratio panel")
        _note_on(keep_ax, "no protocol that\nchanges class proportions")
    else:
        records += _metric_records(experiment, [r for r in rows if r["protocol"] == chosen], ("class_density",))
        classes = sorted({r["class"] for r in records if r["quantity"] == "class_density"})
        norm = None
        if full_accuracy is not None and np.isfinite(full_accuracy).any():
            norm = Normalize(np.nanmin(full_accuracy), np.nanmax(full_accuracy))
            fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="plasma"), ax=keep_ax,
                         label="full-data class accuracy (line colour)", pad=0.02)
        for k in classes:
            series = _series(records, chosen, "class_density", k)
            known = norm is not None and np.isfinite(full_accuracy[k])
            keep_ax.plot(1 - series.x, series.mean, linewidth=0.9, alpha=0.85,
                         color=plt.get_cmap("plasma")(norm(full_accuracy[k])) if known else "0.55")
        grid = np.linspace(0, 1, 11)
        keep_ax.plot(grid, 1 - grid, color="black", linestyle="--", linewidth=0.9, label="uniform (= density)")
        keep_ax.legend(fontsize=8, frameon=False, loc="upper right")
        keep_ax.set(title=f"class keep ratio per class: {chosen}", xlabel="sparsity (1 − density)",
                    ylabel="class keep ratio (class density)", xlim=(-0.02, 1), ylim=(0, 1.03))
        keep_ax.grid(alpha=0.3)
    for protocol in protocols:
        series = _series(records, protocol, "class_accuracy_std")
        if protocol == "full":
            _plot_reference(std_ax, series, "full (sparsity 0)")
        else:
            _plot_series(std_ax, series, colours[protocol], protocol, x=1 - series.x)
    std_ax.set(title="std of class accuracy", xlabel="sparsity (1 − density)", ylabel="std of class recall",
               xlim=(-0.02, 1))
    std_ax.grid(alpha=0.3)
    std_ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"{_title(experiment)}: class bias against sparsity ({_seed_note(rows)})", fontsize=10)
    return [_save(fig, stem.with_suffix(".png")), _write_csv(stem.with_suffix(".csv"), records)]


def _mean_std(values: Sequence[float]) -> str:
    stats = seed_stats(values)
    return f"{float(stats.mean):.4f} ± {float(stats.std):.4f}"


def _summary_metrics(rows: Sequence[dict]) -> tuple[str, ...]:
    """The metrics of the summary tables: average and worst-class accuracy, and worst-group accuracy with groups."""
    has_groups = any(row.get("worst_group_accuracy") is not None for row in rows)
    return SUMMARY_METRICS + (("worst_group_accuracy",) if has_groups else ())


def _summary_rows(experiment: dict, rows: Sequence[dict], densities: Sequence[float]) -> list[dict]:
    """One row per protocol: 'mean ± std' over seeds of each summary metric at each density, blank if not run."""
    cells, metrics = _cells(rows), _summary_metrics(rows)
    out = []
    for protocol in _protocols(rows):
        line = {**experiment, "protocol": protocol}
        seeds = set()
        for density in densities:
            cell = cells.get((protocol, _density_key(density)), [])
            seeds |= {len(cell)} - {0}
            for metric in metrics:
                line[_summary_column(metric, density)] = _mean_std([r[metric] for r in cell]) if cell else ""
        line["n_seeds"] = "/".join(str(n) for n in sorted(seeds))
        out.append(line)
    return out


def _summary_column(metric: str, density: float) -> str:
    return f"{metric}@d={density:g}"


def _summary_header(densities: Sequence[float], metrics: Sequence[str]) -> tuple[list[str], list[str]]:
    """Column titles and row keys of the summary tables."""
    headers = ["protocol", *[f"{SUMMARY_SHORT[m]} d={d:g}" for d in densities for m in metrics], "seeds"]
    return headers, ["protocol", *[_summary_column(m, d) for d in densities for m in metrics], "n_seeds"]


def _summary_markdown(tables: Sequence[tuple[dict, list[dict], tuple[str, ...]]], densities: Sequence[float],
                      present: Sequence[float], notes: Sequence[str]) -> str:
    missing = [d for d in densities if _density_key(d) not in {_density_key(p) for p in present}]
    lines = [
        "# Summary: average and worst-class (and worst-group, with groups) accuracy by protocol and density",
        "",
        f"Densities reported: {', '.join(f'{d:g}' for d in densities)} (d = 1 is where `full` runs sit). "
        f"Densities present in the runs: {', '.join(f'{d:g}' for d in present)}."
        + (f" Not run (blank cells): {', '.join(f'{d:g}' for d in missing)}." if missing else ""),
        "",
        f"Cells: mean ± std over seeds (std with ddof={SEED_DDOF}, the population std; 0 for a single seed). "
        "A blank cell: that protocol was not run at that density.",
    ]
    for experiment, summary, metrics in tables:
        headers, keys = _summary_header(densities, metrics)
        lines += ["", f"## {_title(experiment)}", "", "| " + " | ".join(headers) + " |",
                  "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
        lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in summary]
    if notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def _suffixes(experiments: Sequence[tuple], fields: Sequence[str] = EXPERIMENT_FIELDS) -> list[str]:
    """File-name suffixes naming the fields that differ between experiments ('' for a single one)."""
    if len(experiments) == 1:
        return [""]
    varying = [i for i in range(len(fields)) if len({repr(e[i]) for e in experiments}) > 1]

    def part(field: str, value: object) -> str:
        if field == "data" and value:
            value = Path(str(value)).stem
        label = {"imbalance": "imbalance", "split_seed": "split"}.get(field, "")
        return re.sub(r"[^A-Za-z0-9.+-]+", "-", f"{label}{value}")

    names = ["_" + "_".join(part(fields[i], e[i]) for i in varying) for e in experiments]
    if len(set(names)) < len(names):  # e.g. two data files with one stem
        names = [f"{name}_{i}" for i, name in enumerate(names)]
    return names


def write_report(
    root: Path | str,
    out: Path | str,
    *,
    summary_densities: Sequence[float] = SUMMARY_DENSITIES,
    bias_protocol: str | None = None,
) -> list[Path]:
    """Write the robustness, class-density, class-bias, imbalance and group figures (PNG + CSV) and summaries.

    The imbalance figure is drawn where some run is imbalanced, the group figure where runs have group
    metrics; summary.csv and summary.md hold the summary tables.

    `summary_densities`: the densities (columns) of the summary tables. `bias_protocol`: the protocol whose
    per-class keep ratios the class-bias figure draws (default: el2n, else the first plain score protocol).
    What cannot be drawn (no `full` run, no protocol that changes class proportions) is skipped with a
    warning and a note in summary.md. Returns the paths written.
    """
    rows = load_results(root)
    if bias_protocol is not None and bias_protocol not in {row["protocol"] for row in rows}:
        raise ValueError(f"bias_protocol {bias_protocol!r} was not run under {root}: pass one of {_protocols(rows)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    experiments = _groups(rows, _experiment_key)
    colours = protocol_colours(row["protocol"] for row in rows)
    notes: list[str] = []
    written: list[Path] = []
    tables: list[tuple[dict, list[dict], tuple[str, ...]]] = []
    for (key, group), suffix in zip(experiments.items(), _suffixes(list(experiments))):
        _check_one_run_per_seed(group)
        experiment = dict(zip(EXPERIMENT_FIELDS, key))
        if bias_protocol is not None and bias_protocol not in _protocols(group):
            notes.append(f"{_title(experiment)}: bias_protocol {bias_protocol} not run here; "
                         "the default protocol's keep ratios are drawn")
        written += _robustness(experiment, group, out / f"robustness{suffix}", colours, notes)
        written += _class_densities(experiment, group, out / f"class_densities{suffix}", colours, notes)
        written += _class_bias(experiment, group, out / f"class_bias{suffix}", colours, notes,
                               bias_protocol if bias_protocol in _protocols(group) else None)
        tables.append((experiment, _summary_rows(experiment, group, summary_densities), _summary_metrics(group)))
        if max(len(cell) for cell in _cells(group).values()) == 1:
            notes.append(f"{_title(experiment)}: a single seed per run, so bands are empty and std is 0")
    written += _comparisons(rows, IMBALANCE_FAMILY, _imbalance_lines, CLASS_METRICS, "imbalance",
                            "robustness across imbalance factors", out)
    written += _comparisons(rows, GROUP_FAMILY, _group_lines, GROUP_METRICS, "group_robustness",
                            "group robustness of every method and protocol", out)
    fields = [*EXPERIMENT_FIELDS, "protocol", "n_seeds",
              *[_summary_column(m, d) for d in summary_densities for m in _summary_metrics(rows)]]
    written.append(_write_csv(out / "summary.csv", [row for _, table, _ in tables for row in table], fields))
    present = sorted({_density_key(row["density"]) for row in rows})
    (out / "summary.md").write_text(_summary_markdown(tables, summary_densities, present, notes))
    written.append(out / "summary.md")
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return written
