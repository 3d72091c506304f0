"""Robustness metrics against density: one figure per experiment, and the figures comparing experiments.

`imbalance` (paper 003, Fig. 8) puts the imbalance factors of one method side by side, one colour family per
factor; `group_robustness` (Fig. 9) puts every method and protocol run on data with groups side by side, one
colour family per method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from deep.prune import parse_protocol
from deep.report.panels import MEMBER_STYLES, FigureInput, Line, draw_panels, protocol_lines
from deep.report.results import experiments, groups, is_full, line_key, line_labels, lines, suffixes, title

CLASS_METRICS = ("accuracy", "worst_class_accuracy", "max_min_gap", "class_accuracy_std")
GROUP_METRICS = ("worst_group_accuracy", "weighted_group_accuracy")
IMBALANCE_FAMILY = ("dataset", "data", "split_seed", "model", "method", "quota_unit")  # one figure, imbalances vary
GROUP_FAMILY = ("dataset", "data", "split_seed", "model", "imbalance")  # one figure, methods and quota units vary
# Sequential colour maps, one per family of lines (an imbalance factor, a method); shades and dashes tell members.
FAMILY_CMAPS = ("Blues", "Reds", "Greens", "Purples", "Oranges", "Greys", "YlOrBr", "BuGn")


def robustness(report: FigureInput, stem: Path) -> list[Path]:
    """Each robustness metric against density, one line per protocol and variant (variants of one protocol dashed)."""
    experiment, rows = report.experiment, report.rows
    has_groups = all(row.get("worst_group_accuracy") is not None for row in rows)
    metrics = CLASS_METRICS + (GROUP_METRICS if has_groups else ())
    if not any(is_full(row) for row in rows):
        report.notes.append(f"{title(experiment)}: no `full` runs, so the robustness figure has no full-data reference "
                            "line")
    return draw_panels(protocol_lines(rows, report.colours), metrics, title(experiment), stem)


def _family_styles(families: Sequence[str], members: Sequence[tuple[str, bool]]) -> list[tuple[object, str]]:
    """(colour, dash) per (family, is reference) member: a colour map per family, darkest first, a dash per member.

    A family's `full` reference takes its darkest shade; its curves are ranked among themselves.
    """
    curves = {family: sum(1 for f, reference in members if f == family and not reference) for family in families}
    seen = dict.fromkeys(families, 0)
    styles = []
    for family, reference in members:
        cmap = plt.get_cmap(FAMILY_CMAPS[families.index(family) % len(FAMILY_CMAPS)])
        rank = 0 if reference else seen[family]
        seen[family] += not reference
        styles.append((cmap(0.9 - 0.45 * rank / max(1, curves[family] - 1)), MEMBER_STYLES[rank % len(MEMBER_STYLES)]))
    return styles


def _family_lines(members: Sequence[tuple[str, str, list[dict]]]) -> list[Line]:
    """Lines from (family, label, rows) members, styled by family."""
    families = list(dict.fromkeys(family for family, _, _ in members))
    references = [(family, is_full(rows[0])) for family, _, rows in members]
    return [Line(label, rows, colour, style, family)
            for (family, label, rows), (colour, style) in zip(members, _family_styles(families, references))]


def imbalance_lines(rows: Sequence[dict]) -> list[Line]:
    """Paper 003 Fig. 8: every line at every imbalance factor of one method (none unless one is imbalanced)."""
    if all(row["imbalance"] is None for row in rows):
        return []
    labels = line_labels(rows)
    members = []
    for group in experiments(rows).values():
        imbalance = group[0]["imbalance"]
        family = "balanced" if imbalance is None else f"I = {imbalance:g}"
        members += [(family, f"{family} · {labels[key]}", line_rows) for key, line_rows in lines(group).items()]
    return _family_lines(members)


def group_lines(rows: Sequence[dict]) -> list[Line]:
    """Paper 003 Fig. 9: every method and line run on data with groups.

    A protocol without quotas prunes the same whatever the quota unit, so its runs under both units are one
    line (per density and seed the first run found is drawn, `class` before `group`).
    """
    grouped = [row for row in rows if row.get("worst_group_accuracy") is not None]
    labels = line_labels(grouped)
    members: dict[tuple, tuple[str, str, list[dict]]] = {}
    for row in grouped:
        unit = row["quota_unit"] if parse_protocol(row["protocol"]).uses_quotas else None
        key = (row["method"], line_key(row), unit)
        if key not in members:
            label = f"{row['method']} · {labels[line_key(row)]}" + (f" · {unit} quotas" if unit else "")
            members[key] = (row["method"], label, [])
        taken = members[key][2]
        if all((r["density"], r["seed"]) != (row["density"], row["seed"]) for r in taken):
            taken.append(row)
    return _family_lines(list(members.values()))


def comparisons(rows: Sequence[dict], fields: Sequence[str], make_lines: Callable[[Sequence[dict]], list[Line]],
                metrics: Sequence[str], what: str, stem: Path) -> list[Path]:
    """One comparison figure per family of experiments (runs equal in `fields`) that gives any lines."""
    families = {key: drawn for key, group in groups(rows, lambda r: tuple(r[f] for f in fields)).items()
                if (drawn := make_lines(group))}
    written = []
    for (key, drawn), suffix in zip(families.items(), suffixes(list(families), fields)):
        written += draw_panels(drawn, metrics, f"{title(dict(zip(fields, key)))}: {what}",
                               stem.with_name(stem.name + suffix))
    return written


def imbalance(report: FigureInput, stem: Path) -> list[Path]:
    """The imbalance comparison figures (where some run is imbalanced)."""
    return comparisons(report.rows, IMBALANCE_FAMILY, imbalance_lines, CLASS_METRICS,
                       "robustness across imbalance factors", stem)


def group_robustness(report: FigureInput, stem: Path) -> list[Path]:
    """The group comparison figures (where runs have group metrics)."""
    return comparisons(report.rows, GROUP_FAMILY, group_lines, GROUP_METRICS,
                       "group robustness of every method and protocol", stem)

