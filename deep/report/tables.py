"""Text tables: every run (`format_table`), and the summary of mean ± std over seeds that a sweep prints
(`format_summary`) and the report writes (summary.csv, summary.md).

The summary has one row per protocol (and variant) per density that was run, densities from high to low (`full`
first) and the protocols of one density together, so that a table stays as wide for nine densities as for one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from deep.report.results import (
    EXPERIMENT_FIELDS, LINE_FIELDS, cells, check_consistent, experiments, line_labels, title, varying_variants,
)
from deep.report.stats import SEED_DDOF, cell_fields, seed_stats, write_csv

SUMMARY_METRICS = ("accuracy", "worst_class_accuracy")  # plus worst-group accuracy where runs have groups
SUMMARY_HEADERS = {"accuracy": "accuracy", "worst_class_accuracy": "worst-class", "worst_group_accuracy": "worst-group"}
SUMMARY_FIELDS = (*EXPERIMENT_FIELDS, *LINE_FIELDS, "label", "density", "n_seeds")


def _fmt(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _varies(rows: Sequence[dict], key: str) -> bool:
    return len({row.get(key) for row in rows}) > 1


def aligned(headers: Sequence[str], body: Sequence[Sequence[str]], first_numeric: int) -> list[str]:
    """The lines of a fixed-width text table: columns from `first_numeric` on are right-aligned."""
    table = [list(headers), *body]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    lines = [
        "  ".join(text.rjust(w) if i >= first_numeric else text.ljust(w)
                  for i, (text, w) in enumerate(zip(line, widths))).rstrip()
        for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def format_table(rows: Sequence[dict]) -> str:
    """A fixed-width text table of runs; method, quota unit, imbalance, variant settings and worst-group accuracy
    only where informative."""
    columns: list[tuple[str, Callable[[dict], str]]] = [
        ("dataset", lambda r: r["dataset"]),
        ("model", lambda r: r["model"]),
        *[(key, lambda r, key=key: _fmt(r[key]))
          for key in ("method", "quota_unit", "imbalance") if _varies(rows, key)],
        ("protocol", lambda r: r["protocol"]),
        *[(v.field, lambda r, key=v.field: _fmt(r[key])) for v in varying_variants(rows)],
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
    return "\n".join(aligned(headers, [[cell(row) for _, cell in columns] for row in rows], headers.index("density")))


def summary_metrics(rows: Sequence[dict]) -> tuple[str, ...]:
    """The metrics of the summary: average and worst-class accuracy, and worst-group accuracy with groups."""
    has_groups = any(row.get("worst_group_accuracy") is not None for row in rows)
    return SUMMARY_METRICS + (("worst_group_accuracy",) if has_groups else ())


def _experiment_summary(rows: Sequence[dict]) -> list[dict]:
    """One experiment's summary records: a record per line and density, densities from high to low."""
    labels, metrics = line_labels(rows), summary_metrics(rows)
    records = []
    for (line, _), cell in sorted(cells(rows).items(), key=lambda item: -item[0][1]):  # stable: line order kept
        record = {**cell_fields(cell[0]), "label": labels[line], "n_seeds": len(cell)}
        for metric in metrics:
            values = [row.get(metric) for row in cell]
            stats = seed_stats(values) if all(v is not None for v in values) else None
            record[f"{metric}_mean"] = None if stats is None else float(stats.mean)
            record[f"{metric}_std"] = None if stats is None else float(stats.std)
        records.append(record)
    return records


def summary_records(rows: Sequence[dict]) -> list[dict]:
    """Per experiment, one record per line and density: its label, n_seeds, and mean and std of each summary
    metric (None where a seed lacks it); densities from high to low, lines in report order within a density."""
    return [record for group in experiments(rows).values() for record in _experiment_summary(group)]


def _mean_std(record: dict, metric: str) -> str:
    mean = record.get(f"{metric}_mean")
    return "-" if mean is None else f"{mean:.4f} ± {record[f'{metric}_std']:.4f}"


def _summary_table(records: Sequence[dict], metrics: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of one experiment's summary."""
    headers = ["protocol", "density", "seeds", *[SUMMARY_HEADERS[m] for m in metrics]]
    body = [[r["label"], f"{r['density']:g}", str(r["n_seeds"]), *[_mean_std(r, m) for m in metrics]] for r in records]
    return headers, body


def _by_experiment(rows: Sequence[dict]) -> list[tuple[dict, list[dict], tuple[str, ...]]]:
    """(experiment, its summary records, its summary metrics) per experiment."""
    return [(dict(zip(EXPERIMENT_FIELDS, key)), _experiment_summary(group), summary_metrics(group))
            for key, group in experiments(rows).items()]


def summary_tables(rows: Sequence[dict]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per experiment: its title, and the headers and cells of its summary (a row per line and density)."""
    return [(title(experiment), *_summary_table(records, metrics)) for experiment, records, metrics in _by_experiment(rows)]


def format_summary(rows: Sequence[dict]) -> str:
    """Per experiment, a text table of mean ± std over seeds of average and worst-class accuracy (and worst-group
    accuracy with groups): a row per protocol per density run, densities apart by a blank line.

    Refuses, like `write_report`, a store with two runs in one (protocol, variant, density, seed) cell.
    """
    check_consistent(rows)
    blocks = []
    for experiment, records, metrics in _by_experiment(rows):
        headers, body = _summary_table(records, metrics)
        lines = aligned(headers, body, 1)
        # A blank line wherever the density changes: the protocols of one density read as one block.
        breaks = [i for i in range(1, len(records)) if records[i]["density"] != records[i - 1]["density"]]
        for i in reversed(breaks):
            lines.insert(2 + i, "")
        blocks.append(f"{title(experiment)} (mean ± std over seeds)\n" + "\n".join(lines))
    return "\n\n".join(blocks)


def _summary_markdown(rows: Sequence[dict], notes: Sequence[str]) -> str:
    densities = sorted({row["density"] for row in rows}, reverse=True)
    lines = [
        "# Summary: average and worst-class (and worst-group, with groups) accuracy by protocol and density",
        "",
        f"Densities run: {', '.join(f'{d:g}' for d in densities)} (d = 1 is where `full` runs sit). "
        f"Cells: mean ± std over seeds (std with ddof={SEED_DDOF}, the population std; 0 for a single seed); "
        "`-`: a seed lacks that metric.",
    ]
    for experiment, records, metrics in _by_experiment(rows):
        headers, body = _summary_table(records, metrics)
        lines += ["", f"## {title(experiment)}", "", "| " + " | ".join(headers) + " |",
                  "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
        lines += ["| " + " | ".join(line) + " |" for line in body]
    if notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def write_summaries(rows: Sequence[dict], out: Path, notes: Sequence[str]) -> list[Path]:
    """summary.csv (numbers: mean and std per metric) and summary.md (the tables and the report's notes)."""
    fields = [*SUMMARY_FIELDS, *[f"{m}_{s}" for m in summary_metrics(rows) for s in ("mean", "std")]]
    csv_path = write_csv(out / "summary.csv", summary_records(rows), fields)
    md_path = out / "summary.md"
    md_path.write_text(_summary_markdown(rows, notes))
    return [csv_path, md_path]
