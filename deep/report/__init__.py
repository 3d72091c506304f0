"""Tables and figures from a run store: the robustness curves, class densities, class bias and summary tables
of the papers.

Modules: `results` (rows from the store, lines, cells, variant labels, the consistency check), `stats` (seed
statistics and the CSV records), `tables` (the run table and the summaries), `panels` (what every figure gets,
`FigureInput`, and the drawing they share), `robustness`, `classes` and `bias` (the figures), `write` (`FIGURES`, the
figure registry, and `write_report`).

Every figure is drawn once per experiment, i.e. per combination of dataset (name, data file, split seed),
model, method, quota unit and imbalance found in the store; file names get a suffix naming what differs when
there is more than one. Within an experiment each protocol is one line per set of variant settings (quota
exponent, allocation, recall source, recall prior, class floor): runs that differ there are drawn side by
side, labelled by the settings that vary. Each PNG comes with a CSV of exactly the numbers it plots.
"""

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display, also on clusters; set before any module draws

from deep.report.results import VARIANTS, final_runs, load_results  # noqa: E402
from deep.report.stats import SeedStats, pearson, seed_stats  # noqa: E402
from deep.report.tables import format_summary, format_table  # noqa: E402
from deep.report.write import FIGURES, write_report  # noqa: E402

__all__ = [
    "FIGURES", "VARIANTS", "SeedStats", "final_runs", "format_summary", "format_table", "load_results", "pearson", "seed_stats",
    "write_report",
]
