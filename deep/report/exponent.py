"""The quota exponent `--quota-exponent auto` chose (deep.selection) against density: one panel per protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deep.report.panels import FigureInput, panel_grid, save
from deep.report.results import groups, line_key, line_labels, title
from deep.report.stats import write_csv


FIELDS = ("protocol", "line", "density", "seed", "quota_exponent", "recall_prior", "val_worst_accuracy", "val_accuracy",
          "proxy")


def chosen(row: dict) -> dict | None:
    """The candidate a run's selection chose (its beta, alpha and validation accuracies), None for other runs."""
    record = row.get("exponent_selection")
    return None if not record else next(c for c in record if c["chosen"])


def chosen_exponents(report: FigureInput, stem: Path) -> list[Path]:
    """Chosen beta per seed (dots) and its mean (line) against density, one panel per protocol run with auto."""
    experiment, rows = report.experiment, report.rows
    auto = [row for row in rows if chosen(row) is not None]
    if not auto:
        return []
    records = [{"protocol": row["protocol"], "line": line_labels(rows)[line_key(row)], "density": row["density"],
                "seed": row["seed"], **{k: v for k, v in chosen(row).items() if k != "chosen"}} for row in auto]
    by_protocol = groups(records, lambda r: (r["protocol"],))
    fig, axes = panel_grid(len(by_protocol), 3, 4.6, 3.4)
    for ax, ((protocol,), members) in zip(axes, by_protocol.items(), strict=True):
        for label, line in groups(members, lambda r: (r["line"],)).items():
            densities = np.array([r["density"] for r in line])
            betas = np.array([r["quota_exponent"] for r in line])
            xs = sorted(set(densities.tolist()))
            ax.plot(xs, [betas[densities == x].mean() for x in xs], marker="o", label=f"{label[0]} (mean)")
            ax.scatter(densities, betas, s=14, alpha=0.5, color="0.3")
        ax.axhline(1.0, color="0.5", lw=1, ls=":")
        ax.set_title(f"{protocol}: β chosen on validation", fontsize=9)
        ax.set_xlabel("density")
        ax.set_ylabel("quota exponent β")
        ax.set_ylim(0.0, max(1.1, max(r["quota_exponent"] for r in members) + 0.1))
        ax.legend(fontsize=7)
    fig.suptitle(f"{title(experiment)}: --quota-exponent auto (dots: seeds; dotted: β = 1, the paper)", fontsize=9)
    return [save(fig, stem.with_suffix(".png")), write_csv(stem.with_suffix(".csv"), records, FIELDS)]
