"""Report results: rows from a fake run store, density rounding, variant lines and labels, the consistency check,
protocol kinds of stored names, Pearson correlation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.report_store import FULL_ACCURACY, PROTOCOLS, SIZES, config, counts_for, fill_store, flat_run, metrics, write_run

from deep.prune import parse_protocol
from deep.report import format_summary, load_results, pearson, write_report
from deep.report.results import cells, line_key, line_labels
from deep.runs import RunStore

DENSITIES = (0.2, 0.5)
SEEDS = (0, 1)


def test_load_results_one_row_per_final_run(tmp_path: Path) -> None:
    written = fill_store(tmp_path, seeds=SEEDS, densities=DENSITIES)
    RunStore(tmp_path).finish({"kind": "query", "seed": 0}, {"recalls": [0.5] * 4})  # not a final run: ignored
    rows = load_results(tmp_path)
    assert len(rows) == len(PROTOCOLS) * len(DENSITIES) * len(SEEDS) + len(SEEDS) == len(written)
    for field in ("dataset", "model", "protocol", "scorer", "density", "seed", "method", "quota_unit", "imbalance",
                  "quota_exponent", "recall_prior", "accuracy", "worst_class_accuracy", "class_accuracy",
                  "class_density", "run", "config"):
        assert all(field in row for row in rows), field
    row = next(r for r in rows if (r["protocol"], r["density"], r["seed"]) == ("el2n", 0.5, 1))
    assert row["dataset"] == "digits" and row["scorer"] == "el2n" and row["imbalance"] is None
    assert row["accuracy"] == written[("el2n", 0.5, 1)]["accuracy"]
    assert row["quota_exponent"] is None  # a variant setting of DRoP's quotas means nothing for el2n
    drop = next(r for r in rows if r["protocol"] == "random+drop")
    assert (drop["quota_exponent"], drop["allocation"], drop["recall_source"]) == (1.0, "density", "scorer")
    assert rows == load_results(tmp_path)  # deterministic
    assert rows[0]["protocol"] == "full" and rows[-1]["protocol"] == "random+drop"
    assert [r["density"] for r in rows if r["protocol"] == "random" and r["seed"] == 0] == list(DENSITIES)


def test_empty_or_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no finished runs under"):
        load_results(tmp_path)
    with pytest.raises(ValueError, match="no finished runs under"):
        write_report(tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_results(tmp_path / "nowhere")


def test_malformed_runs_are_named(tmp_path: Path) -> None:
    path = RunStore(tmp_path / "a").finish(config("random", 0.5, 0), {"accuracy": 0.5})
    with pytest.raises(ValueError, match=f"{path.name}.*lacks"):
        load_results(tmp_path / "a")
    unknown = {**config("el2n", 0.5, 0), "protocol": "el2n+forgetting"}
    path = write_run(tmp_path / "b", unknown, metrics(FULL_ACCURACY, SIZES))
    with pytest.raises(ValueError, match=f"{path.name}: unknown protocol 'el2n\\+forgetting'"):
        load_results(tmp_path / "b")


def test_densities_equal_to_six_decimals_are_one_density(tmp_path: Path) -> None:
    """0.3 and 0.3000000001 run under two seeds: one cell of two seeds, shown at 0.3."""
    first = flat_run(tmp_path, "random", 0.3, 0, 0.6)
    second = flat_run(tmp_path, "random", 0.3000000001, 1, 0.8)
    rows = load_results(tmp_path)
    assert [row["density"] for row in rows] == [0.3, 0.3]
    assert [len(cell) for cell in cells(rows).values()] == [2]
    (line,) = [line for line in format_summary(rows).splitlines() if line.startswith("random")]
    mean = (first["accuracy"] + second["accuracy"]) / 2
    assert line.split()[1:4] == ["0.3", "2", f"{mean:.4f}"]


@pytest.mark.parametrize("change, difference", [
    # Either run may be read first: the message names the values in folder order.
    (lambda c: c["train"].update(epochs=99), r"train\.epochs \((3 vs 99|99 vs 3)\)"),
    (lambda c: c.update(density=0.3000000001), r"density \((0\.3 vs 0\.3000000001|0\.3000000001 vs 0\.3)\)"),
])
def test_two_runs_in_one_cell_are_refused_by_report_and_summary(tmp_path: Path, change, difference: str) -> None:
    flat_run(tmp_path, "random", 0.3, 0, 0.6)
    flat_run(tmp_path, "random", 0.3, 1, 0.7)
    other = config("random", 0.3, 0)
    change(other)
    write_run(tmp_path, other, metrics(FULL_ACCURACY, counts_for("random", 0.3)))
    rows = load_results(tmp_path)
    for refuse in (lambda: format_summary(rows), lambda: write_report(tmp_path, tmp_path / "out")):
        with pytest.raises(ValueError, match=f"random at density 0.3, seed 0 .* differ in {difference}.*separate run"):
            refuse()
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_variant_settings_split_lines_and_label_what_varies(tmp_path: Path) -> None:
    flat_run(tmp_path, "random", 0.5, 0, 0.6)
    flat_run(tmp_path, "random", 0.5, 1, 0.6, variant={"quota_exponent": 0.5})  # means nothing for random: ignored
    flat_run(tmp_path, "random+drop", 0.5, 0, 0.7)
    flat_run(tmp_path, "random+drop", 0.5, 1, 0.7, variant={"quota_exponent": 1})  # the default, written out
    flat_run(tmp_path, "random+drop", 0.5, 0, 0.8, variant={"quota_exponent": 0.5})
    flat_run(tmp_path, "random+drop", 0.5, 0, 0.9, variant={"quota_exponent": 0.5, "allocation": "count"})
    rows = load_results(tmp_path)
    labels = line_labels(rows)
    assert list(labels.values()) == [  # the defaults first; every line labelled with the settings that vary
        "random", "random+drop (β=1, density allocation)", "random+drop (β=0.5, density allocation)",
        "random+drop (β=0.5, count allocation)",
    ]
    assert [len(cell) for cell in cells(rows).values()] == [2, 2, 1, 1]  # no two runs of one seed merged
    # Settings that take one value in the rows (here β = 0.5 alone) label nothing.
    only = [row for row in rows if row["quota_exponent"] == 0.5 and row["allocation"] == "density"]
    assert list(line_labels(only).values()) == ["random+drop"]
    assert line_key(only[0]) == ("random+drop", 0.5, "density", "scorer", 0.0, 0, None)


def test_protocol_kinds_of_stored_names() -> None:
    """The report parses stored names with any scorer, e.g. one a user registered in their own code."""
    names = ("full", "random", "el2n", "random+el2nq", "el2n+drop", "random+drop", "margin+drop", "random+marginq")
    assert [parse_protocol(name).kind for name in names] == [
        "full", "random", "score", "random+quota", "score+drop", "random+drop", "score+drop", "random+quota",
    ]


finite = st.floats(-100, 100, allow_nan=False).map(lambda v: round(v, 3))
vectors = st.integers(3, 12).flatmap(lambda n: st.tuples(st.lists(finite, min_size=n, max_size=n),
                                                         st.lists(finite, min_size=n, max_size=n)))


@settings(max_examples=60, deadline=None)
@given(vectors, st.floats(0.5, 10), st.floats(-5, 5))
def test_pearson_matches_numpy_and_is_affine_invariant(xy: tuple[list, list], scale: float, shift: float) -> None:
    x, y = np.array(xy[0]), np.array(xy[1])
    r = pearson(x, y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert np.isnan(r)
        return
    assert -1 <= r <= 1
    np.testing.assert_allclose(r, np.corrcoef(x, y)[0, 1], atol=1e-9)
    np.testing.assert_allclose(pearson(scale * x + shift, y), r, atol=1e-9)
    np.testing.assert_allclose(pearson(-x, y), -r, atol=1e-9)
    np.testing.assert_allclose(pearson(y, x), r, atol=1e-12)


def test_pearson_skips_nan_classes_and_checks_shapes() -> None:
    assert pearson([1, 2, np.nan, 3], [2, 4, 5, 6]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal length"):
        pearson([1, 2], [1, 2, 3])
