"""Report tables: the run table, and the summary (text, summary.csv, summary.md) at the densities that were run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.report_store import PROTOCOLS, fill_store, flat_run, read_csv

from deep.report import format_summary, format_table, load_results
from deep.report.tables import write_summaries

SEEDS = (0, 1, 2)
SWEEP = (0.2, 0.4, 0.6)  # densities off the paper's 0.3 / 0.5 / 0.8


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("runs")
    return root, fill_store(root, seeds=SEEDS, densities=SWEEP)


def cells_of(line: str) -> list[str]:
    """The cells of one text-table line (cells are separated by two or more spaces)."""
    return [cell.strip() for cell in line.split("  ") if cell.strip()]


def mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def test_format_table_lists_every_protocol(sweep: tuple[Path, dict]) -> None:
    rows = load_results(sweep[0])
    lines = format_table(rows).splitlines()
    assert len(lines) == len(rows) + 2
    assert len({len(line) for line in lines[:2]}) == 1  # header as wide as its rule
    for word in ("dataset", "protocol", "density", "accuracy", "worst-class", "gap", "std"):
        assert word in lines[0]
    for protocol in (*PROTOCOLS, "full"):
        assert any(line.split()[2] == protocol for line in lines[2:]), protocol
    assert "worst-group" not in lines[0] and "method" not in lines[0] and "quota_exponent" not in lines[0]


def test_format_table_shows_worst_group_and_varying_fields(tmp_path: Path) -> None:
    fill_store(tmp_path, ("random",), (0,), groups=True, densities=(0.5,))
    fill_store(tmp_path, ("random",), (0,), model="cnn", densities=(0.5,))
    flat_run(tmp_path, "random+drop", 0.5, 0, 0.7)
    flat_run(tmp_path, "random+drop", 0.5, 0, 0.7, variant={"quota_exponent": 0.5})
    lines = format_table(load_results(tmp_path)).splitlines()
    header = cells_of(lines[0])
    assert "worst-group" in header and "model" in header and "method" not in header and "allocation" not in header
    column = {(cells_of(line)[header.index("protocol")], cells_of(line)[header.index("quota_exponent")])
              for line in lines[2:]}
    assert column == {("full", "-"), ("random", "-"), ("random+drop", "1.0000"), ("random+drop", "0.5000")}
    assert {cells_of(line)[-1] for line in lines[2:]} == {"0.5000", "-"}  # worst-group where runs have groups


def test_summary_shows_the_densities_that_were_run(sweep: tuple[Path, dict]) -> None:
    """A sweep at 0.2 / 0.4 / 0.6: a row per protocol per density, densities high to low, full first."""
    root, written = sweep
    text = format_summary(load_results(root))
    lines = text.splitlines()
    assert "mean ± std over seeds" in lines[0]
    assert cells_of(lines[1]) == ["protocol", "density", "seeds", "accuracy", "worst-class"]
    rows = [cells_of(line) for line in lines[3:] if line]
    assert [(r[0], r[1]) for r in rows] == [("full", "1")] + [(p, f"{d:g}") for d in SWEEP[::-1] for p in PROTOCOLS]
    # The protocols of one density form a block: a blank line before each density.
    assert [i for i, line in enumerate(lines) if not line] == [3 + 1 + k * (len(PROTOCOLS) + 1) for k in range(3)]
    for protocol, density, seeds, accuracy, worst in rows:
        d = float(density) if protocol != "full" else 1.0
        assert seeds == "3"
        assert accuracy == mean_std([written[(protocol, d, s)]["accuracy"] for s in SEEDS])
        assert worst == mean_std([written[(protocol, d, s)]["worst_class_accuracy"] for s in SEEDS])


def test_summary_files_hold_the_same_numbers(sweep: tuple[Path, dict], tmp_path: Path) -> None:
    root, written = sweep
    rows = load_results(root)
    paths = write_summaries(rows, tmp_path, ["a note"])
    assert [p.name for p in paths] == ["summary.csv", "summary.md"]
    records = read_csv(tmp_path / "summary.csv")
    assert [(r["protocol"], float(r["density"])) for r in records] == \
        [("full", 1.0)] + [(p, d) for d in SWEEP[::-1] for p in PROTOCOLS]
    for record in records:
        values = [written[(record["protocol"], float(record["density"]), s)]["worst_class_accuracy"] for s in SEEDS]
        assert float(record["worst_class_accuracy_mean"]) == pytest.approx(np.mean(values))
        assert float(record["worst_class_accuracy_std"]) == pytest.approx(np.std(values))
        assert record["n_seeds"] == "3" and record["label"] == record["protocol"]
    markdown = (tmp_path / "summary.md").read_text()
    assert "Densities run: 1, 0.6, 0.4, 0.2" in markdown and "ddof=0" in markdown and "- a note" in markdown
    for line in format_summary(rows).splitlines()[3:]:
        if line:
            assert "| " + " | ".join(cells_of(line)) + " |" in markdown


def test_summary_with_nine_densities_stays_narrow(tmp_path: Path) -> None:
    densities = tuple(round(0.1 * i, 1) for i in range(1, 10))
    fill_store(tmp_path, ("random", "random+drop"), (0,), densities=densities)
    flat_run(tmp_path, "random+drop", 0.5, 0, 0.7, variant={"quota_exponent": 0.5, "allocation": "count"})
    lines = format_summary(load_results(tmp_path)).splitlines()
    assert max(map(len, lines)) <= 100  # as wide as for one density
    assert len([line for line in lines[3:] if line]) == 1 + 2 * 9 + 1


def test_summary_shows_variants_side_by_side(tmp_path: Path) -> None:
    """random+drop at β = 1 and β = 0.5: two rows per density, labelled by what varies."""
    expected = {}
    for density in (0.3, 0.6):
        for seed in (0, 1):
            expected[("random+drop (β=1)", density)] = flat_run(tmp_path, "random+drop", density, seed, density)
            expected[("random+drop (β=0.5)", density)] = flat_run(
                tmp_path, "random+drop", density, seed, density + 0.1, variant={"quota_exponent": 0.5})
    rows = [cells_of(line) for line in format_summary(load_results(tmp_path)).splitlines()[3:] if line]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("random+drop (β=1)", "0.6", "2"), ("random+drop (β=0.5)", "0.6", "2"),
        ("random+drop (β=1)", "0.3", "2"), ("random+drop (β=0.5)", "0.3", "2"),
    ]
    for label, density, _, accuracy, _ in rows:
        assert accuracy == f"{expected[(label, float(density))]['accuracy']:.4f} ± 0.0000"


def test_summary_shows_worst_group_where_runs_have_groups(tmp_path: Path) -> None:
    flat_run(tmp_path, "random", 0.5, 0, 0.8, groups=True)
    flat_run(tmp_path, "random", 0.5, 0, 0.6, model="cnn")
    blocks = format_summary(load_results(tmp_path)).split("\n\n")
    assert [cells_of(block.splitlines()[1])[-1] for block in blocks] == ["worst-class", "worst-group"]  # cnn, mlp
    assert cells_of(blocks[1].splitlines()[3])[-1] == "0.4000 ± 0.0000"
