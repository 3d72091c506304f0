"""`index.html`: the report as one self-contained page to share: every figure, the summary table, the settings of
each experiment's sweep and the provenance of its runs. Relative links only, no script, no network: the folder can
be copied anywhere and opened offline."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from deep import provenance
from deep.report.results import EXPERIMENT_FIELDS, experiments, title
from deep.report.tables import summary_tables
from toy.commandline import package_version

INDEX = "index.html"
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; } th, td { border: 1px solid #ccc; padding: 2px 8px; }
th { background: #f3f3f3; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; flex: 0 1 580px; min-width: 0; }
figure img { display: block; box-sizing: border-box; width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 12px; color: #555; }
.warn { color: #8a4b00; } code { font-size: 12px; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(headers: Sequence[str], body: Sequence[Sequence[object]], css_id: str = "", numeric_from: int = 99) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    rows = "".join("<tr>" + "".join(f'<td{" class=num" if i >= numeric_from else ""}>{_e(c)}</td>'
                                    for i, c in enumerate(row)) + "</tr>\n" for row in body)
    ident = f' id="{css_id}"' if css_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table>"


def _flat(config: dict, prefix: str = "") -> dict[str, object]:
    """A nested config as dotted keys (`train.epochs`), so that settings compare and print one per line."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _settings(group: Sequence[dict]) -> str:
    """The resolved settings of one experiment's final runs: those every run shares, then those the sweep varied."""
    flats = [_flat(row["config"]) for row in group]
    keys = sorted({key for flat in flats for key in flat})
    shared, varied = [], []
    for key in keys:
        values = sorted({repr(flat.get(key)) for flat in flats})
        (shared if len(values) == 1 else varied).append((key, ", ".join(values)))
    return (f"<p>Shared by all {len(group)} finished runs:</p>" + _table(["setting", "value"], shared)
            + "<p>Varied by the sweep:</p>" + _table(["setting", "values"], varied))


def _provenance(root: Path, rows: Sequence[dict]) -> str:
    provs = provenance.of_rows(root, rows)
    summary = "".join(f"<li>{_e(line)}</li>" for line in provenance.describe(provs))
    body = [[row["run"], row["protocol"], f"{row['density']:g}", row["seed"], provenance.code_label(p),
             provenance.device_label(p), (p or {}).get("hostname", "-"), (p or {}).get("started", "-"),
             (p or {}).get("ended", "-")] for row, p in zip(rows, provs)]
    runs = _table(["run", "protocol", "density", "seed", "code", "device", "host", "started", "ended"], body)
    return f"<ul>{summary}</ul><details><summary>every final run</summary>{runs}</details>"


def _figures(out: Path, files: Sequence[Path]) -> str:
    items = []
    for png in (f for f in files if f.suffix == ".png"):
        link = Path(os.path.relpath(png, out)).as_posix()
        numbers = png.with_suffix(".csv")
        data = f' · <a href="{_e(Path(link).with_suffix(".csv").as_posix())}">numbers (CSV)</a>' if numbers in files else ""
        items.append(f'<figure><a href="{_e(link)}"><img src="{_e(link)}" alt="{_e(png.stem)}"></a>'
                     f"<figcaption>{_e(png.stem)}{data}</figcaption></figure>")
    return f'<div class="figures">{"".join(items)}</div>' if items else "<p>No figure could be drawn.</p>"


def write_index(root: Path | str, out: Path, rows: Sequence[dict], files: Sequence[Path], notes: Sequence[str]) -> Path:
    """Write `out/index.html` over the report's `files` (figures are linked relative to `out`); returns its path."""
    root, out = Path(root), Path(out)
    parts = [
        f"<h1>Data-pruning report</h1><p>Run store <code>{_e(root.resolve())}</code>: {len(rows)} finished final runs. "
        f"Written {_e(datetime.now(timezone.utc).isoformat(timespec='seconds'))} by drop-pruning "
        f"{_e(package_version())}. Tables: <a href=\"summary.md\">summary.md</a>, "
        "<a href=\"summary.csv\">summary.csv</a>.</p>",
    ]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f'<li class="warn">{_e(n)}</li>' for n in notes) + "</ul>")
    parts.append("<h2>Summary (mean ± std over seeds)</h2>")
    # One table for the store, a row per cell (experiment, protocol and variant, density), as summary.csv has.
    tables = summary_tables(rows)
    headers = ["experiment", *max((h for _, h, _ in tables), key=len)]
    body = [[name, *line, *["-"] * (len(headers) - 1 - len(line))] for name, _, lines in tables for line in lines]
    parts.append(_table(headers, body, "summary", numeric_from=2))
    parts.append("<h2>Figures</h2>" + _figures(out, files))
    parts.append("<h2>Settings of each sweep</h2>")
    for key, group in experiments(rows).items():
        parts.append(f"<h3>{_e(title(dict(zip(EXPERIMENT_FIELDS, key))))}</h3>{_settings(group)}")
    parts.append("<h2>Provenance</h2>" + _provenance(root, rows))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Data-pruning report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    path = out / INDEX
    path.write_text(page, encoding="utf-8")
    return path
