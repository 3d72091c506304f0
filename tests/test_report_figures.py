"""Report figures: every PNG with the CSV of its numbers, checked against values computed by hand or from the
fake store; notes for what cannot be drawn; one set per experiment; the comparison figures; variant lines."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tests.report_store import (
    DENSITIES, PNG_MAGIC, PROTOCOLS, SEEDS, SIZES, config, counts_for, fill_store, flat_run, key, metrics, read_csv,
    write_run,
)

from deep.report import FIGURES, load_results, write_report
from deep.report.bias import EXTREME_CLASSES, best_worst_classes, bias_line
from deep.report.panels import FigureInput
from deep.report.results import suffixes

COMPARISONS = ("imbalance", "group_robustness", "chosen_exponent")  # drawn only where runs are imbalanced, have groups, or chose β on validation


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("runs")
    return root, fill_store(root)


@pytest.fixture(scope="module")
def report(synthetic: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("report")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete store must give no notes
        paths = write_report(synthetic[0], out)
    return out, paths


def test_write_report_writes_every_file(report: tuple[Path, list[Path]]) -> None:
    out, paths = report
    expected = {f"{n}.{ext}" for n in FIGURES if n not in COMPARISONS for ext in ("png", "csv")}
    expected |= {"summary.csv", "summary.md", "index.html"}
    assert {p.name for p in paths} == expected and all(p.parent == out for p in paths)
    for path in paths:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_takes_the_one_signature(name: str, synthetic: tuple[Path, dict], tmp_path: Path) -> None:
    notes: list[str] = []
    report = FigureInput.of(load_results(synthetic[0]))
    paths = FIGURES[name](report, tmp_path / name)
    assert all(p.parent == tmp_path and p.name.startswith(name) and p.stat().st_size > 0 for p in paths)
    assert (paths == []) == (name in COMPARISONS) and not report.notes  # balanced, no groups: no comparison


def test_balanced_store_has_no_imbalance_or_group_figure(report: tuple[Path, list[Path]]) -> None:
    assert not any(p.name.startswith(("imbalance", "group_robustness")) for p in report[1])


def test_robustness_csv_holds_seed_statistics(report: tuple[Path, list[Path]], synthetic: tuple[Path, dict]) -> None:
    records = read_csv(report[0] / "robustness.csv")
    _, written = synthetic
    assert {r["quantity"] for r in records} == {"accuracy", "worst_class_accuracy", "max_min_gap", "class_accuracy_std"}
    assert {r["protocol"] for r in records} == {*PROTOCOLS, "full"}
    assert len(records) == 4 * (len(PROTOCOLS) * len(DENSITIES) + 1)
    for protocol, density, metric in [("random+drop", 0.2, "worst_class_accuracy"), ("full", 1.0, "max_min_gap")]:
        values = [written[(protocol, density, s)][metric] for s in SEEDS]
        (rec,) = [r for r in records if key(r) == (protocol, density, metric)]
        assert int(rec["n_seeds"]) == 3
        np.testing.assert_allclose([float(rec[k]) for k in ("mean", "std", "min", "max")],
                                   [np.mean(values), np.std(values), np.min(values), np.max(values)])


def test_correlation_matches_synthetic_class_densities(report: tuple[Path, list], synthetic: tuple[Path, dict]) -> None:
    _, written = synthetic
    records = read_csv(report[0] / "class_densities.csv")
    assert {r["protocol"] for r in records if r["quantity"] == "correlation"} == set(PROTOCOLS) - {"random"}
    full = np.mean([written[("full", 1.0, s)]["class_accuracy"] for s in SEEDS], axis=0)
    per_seed = [np.corrcoef(written[("el2n+drop", 0.4, s)]["class_density"], full)[0, 1] for s in SEEDS]
    (rec,) = [r for r in records if key(r) == ("el2n+drop", 0.4, "correlation")]
    np.testing.assert_allclose(float(rec["mean"]), np.mean(per_seed))
    assert float(rec["mean"]) < -0.9  # hard classes keep more: densities fall as full-data accuracy rises


# A constructed store of five classes of 100: full-data accuracy, and at d = 0.3 the kept counts and the class
# accuracies per seed of random+drop (density = 1 - full accuracy, so r = -1 exactly) and el2n.
FULL5 = np.array([0.9, 0.5, 0.7, 0.8, 0.6])
COUNTS5 = {"random+drop": np.array([10, 50, 30, 20, 40]), "el2n": np.array([40, 10, 20, 30, 50])}
ACCURACY5 = {
    "random+drop": (np.array([0.8, 0.6, 0.7, 0.7, 0.6]), np.array([0.8, 0.8, 0.7, 0.9, 0.6])),
    "el2n": (np.array([0.8, 0.3, 0.6, 0.7, 0.5]), np.array([0.6, 0.5, 0.6, 0.7, 0.3])),
}


@pytest.fixture(scope="module")
def constructed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("constructed")
    sizes = np.full(5, 100)
    for seed in (0, 1):
        write_run(root, config("full", 1.0, seed), metrics(FULL5, sizes, sizes))
        for protocol, counts in COUNTS5.items():
            write_run(root, config(protocol, 0.3, seed), metrics(ACCURACY5[protocol][seed], counts, sizes))
    write_report(root, root / "out")
    return root / "out"


def by_class(records: list[dict], protocol: str, quantity: str, column: str = "mean") -> list[float]:
    chosen = sorted((r for r in records if r["protocol"] == protocol and r["quantity"] == quantity),
                    key=lambda r: int(r["class"]))
    return [float(r[column]) for r in chosen]


def test_correlation_on_a_constructed_case(constructed: Path) -> None:
    records = {r["protocol"]: float(r["mean"]) for r in read_csv(constructed / "class_densities.csv")
               if r["quantity"] == "correlation"}
    assert records["random+drop"] == pytest.approx(-1.0)
    assert records["el2n"] == pytest.approx(np.corrcoef([0.4, 0.1, 0.2, 0.3, 0.5], FULL5)[0, 1])


def test_class_accuracy_vs_density_csv(constructed: Path) -> None:
    """Paper 003 Fig. 2: per class, its density and accuracy under each protocol, and the full model's accuracy."""
    records = read_csv(constructed / "class_accuracy_vs_density.csv")
    assert {(r["protocol"], r["quantity"]) for r in records} == {
        ("full", "class_accuracy"), *[(p, q) for p in COUNTS5 for q in ("class_density", "class_accuracy")]}
    assert by_class(records, "full", "class_accuracy") == pytest.approx(FULL5)
    for protocol, counts in COUNTS5.items():
        assert by_class(records, protocol, "class_density") == pytest.approx(counts / 100)
        assert by_class(records, protocol, "class_accuracy") == pytest.approx(np.mean(ACCURACY5[protocol], axis=0))
        assert by_class(records, protocol, "class_accuracy", "min") == pytest.approx(np.min(ACCURACY5[protocol], 0))
    assert {r["n_seeds"] for r in records} == {"2"} and {r["density"] for r in records} == {"0.3", "1.0"}


def test_best_worst_classes_csv(constructed: Path) -> None:
    """Paper 000 Fig. 3 for el2n: five classes ranked 0, 3, 2, 4, 1 by full accuracy; the two best and two worst."""
    records = read_csv(constructed / "best_worst_classes.csv")
    assert {r["protocol"] for r in records} == {"full", "el2n"}
    ranks = {int(r["class"]): int(r["full_rank"]) for r in records}
    assert ranks == {0: 1, 3: 2, 4: 4, 1: 5}  # class 2, in the middle, is in neither panel
    el2n = {int(r["class"]): float(r["mean"]) for r in records if r["protocol"] == "el2n"}
    assert el2n == pytest.approx({k: np.mean([a[k] for a in ACCURACY5["el2n"]]) for k in ranks})
    full = {int(r["class"]): float(r["mean"]) for r in records if r["protocol"] == "full"}
    assert full == pytest.approx({k: FULL5[k] for k in ranks})


def test_best_worst_classes_takes_ten_of_many(tmp_path: Path) -> None:
    """24 classes: the 10 best and the 10 worst by full accuracy (ties to the lower class), for the chosen line."""
    classes = 24
    full = np.round(np.linspace(0.95, 0.2, classes), 4)
    full[[3, 4]] = full[3]  # a tie: class 3 ranks before class 4
    sizes = np.full(classes, 50)
    write_run(tmp_path, config("full", 1.0, 0), metrics(full, sizes, sizes))
    write_run(tmp_path, config("random+drop", 0.5, 0), metrics(full - 0.1, sizes // 2, sizes))
    rows = load_results(tmp_path)
    notes: list[str] = []
    chosen = bias_line(rows, None)
    assert chosen[0]["protocol"] == "random+drop"  # no score protocol: the first that changes class proportions
    best_worst_classes(replace(FigureInput.of(rows), notes=notes, experiment={"dataset": "digits", "data": None,
                                                                               "model": "mlp"}), tmp_path / "bw")
    records = read_csv(tmp_path / "bw.csv")
    ranks = {int(r["class"]): int(r["full_rank"]) for r in records if r["protocol"] == "random+drop"}
    assert EXTREME_CLASSES == 10 and sorted(ranks) == [*range(10), *range(14, 24)]
    assert ranks[3] == 4 and ranks[4] == 5 and ranks[23] == 24 and not notes


def test_bias_protocol_chooses_the_drawn_classes(constructed: Path, tmp_path: Path) -> None:
    write_report(constructed.parent, tmp_path, bias_protocol="random+drop")
    records = read_csv(tmp_path / "best_worst_classes.csv")
    assert {r["protocol"] for r in records} == {"full", "random+drop"}
    keep = {r["protocol"] for r in read_csv(tmp_path / "class_bias.csv") if r["quantity"] == "class_density"}
    assert keep == {"random+drop"}


def test_unknown_bias_protocol_is_refused(constructed: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bias_protocol 'grand' was not run"):
        write_report(constructed.parent, tmp_path, bias_protocol="grand")


def test_missing_full_and_single_seed_are_skipped_with_notes(tmp_path: Path) -> None:
    fill_store(tmp_path, ("random", "el2n"), (0,), full=False, densities=(0.3, 0.6))
    with pytest.warns(UserWarning) as caught:
        paths = write_report(tmp_path, tmp_path / "out")
    assert any("no `full` runs" in str(w.message) for w in caught)
    names = {p.name for p in paths}
    assert {"robustness.png", "class_densities.png", "class_accuracy_vs_density.png", "class_bias.png"} <= names
    assert "best_worst_classes.png" not in names  # no full model to rank the classes by
    assert not any(r["quantity"] == "correlation" for r in read_csv(tmp_path / "out" / "class_densities.csv"))
    assert {r["protocol"] for r in read_csv(tmp_path / "out" / "class_accuracy_vs_density.csv")} == {"el2n"}
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "no `full` runs" in markdown and "single seed" in markdown and "best/worst-class" in markdown


def test_one_set_of_figures_per_experiment(tmp_path: Path) -> None:
    """Two models: suffixed file names; the cnn runs keep class proportions and have groups."""
    fill_store(tmp_path, ("random", "random+drop"), (0, 1), densities=(0.3, 0.6))
    fill_store(tmp_path, ("random",), (0, 1), model="cnn", groups=True, densities=(0.3, 0.6))
    with pytest.warns(UserWarning) as caught:
        names = {p.name for p in write_report(tmp_path, tmp_path / "out")}
    assert any("cnn · erm · quotas per class: no protocol changes class proportions" in str(w.message) for w in caught)
    assert {"robustness_mlp.png", "robustness_cnn.png", "class_bias_cnn.csv", "class_densities_mlp.png",
            "class_accuracy_vs_density_mlp.png", "best_worst_classes_mlp.csv"} <= names
    assert not {"class_densities_cnn.png", "class_accuracy_vs_density_cnn.png", "robustness.png"} & names
    groups = {r["quantity"] for r in read_csv(tmp_path / "out" / "robustness_cnn.csv")}
    assert {"worst_group_accuracy", "weighted_group_accuracy"} <= groups
    assert "worst_group_accuracy" not in {r["quantity"] for r in read_csv(tmp_path / "out" / "robustness_mlp.csv")}
    summary = read_csv(tmp_path / "out" / "summary.csv")
    assert [(r["model"], r["protocol"], r["density"]) for r in summary] == [
        ("cnn", "full", "1.0"), ("cnn", "random", "0.6"), ("cnn", "random", "0.3"),
        ("mlp", "full", "1.0"), ("mlp", "random", "0.6"), ("mlp", "random+drop", "0.6"),
        ("mlp", "random", "0.3"), ("mlp", "random+drop", "0.3"),
    ]


def test_variants_are_separate_lines(tmp_path: Path) -> None:
    """random+drop at β = 1 (stored before the field existed) and β = 0.5: two lines in every figure's CSV."""
    for seed in (0, 1):
        flat_run(tmp_path, "full", 1.0, seed, 0.9)
        for density in (0.3, 0.6):
            flat_run(tmp_path, "random+drop", density, seed, density)
            flat_run(tmp_path, "random+drop", density, seed, density / 2 + 0.01 * seed, variant={"quota_exponent": 0.5})
    write_report(tmp_path, tmp_path / "out")
    records = read_csv(tmp_path / "out" / "robustness.csv")
    accuracy = {(r["quota_exponent"], float(r["density"])): float(r["mean"])
                for r in records if r["protocol"] == "random+drop" and r["quantity"] == "accuracy"}
    assert accuracy == pytest.approx({("1.0", 0.3): 0.3, ("1.0", 0.6): 0.6, ("0.5", 0.3): 0.155, ("0.5", 0.6): 0.305})
    assert {r["quota_exponent"] for r in records if r["protocol"] == "full"} == {""}  # not applicable to full
    densities = read_csv(tmp_path / "out" / "class_densities.csv")
    assert {r["quota_exponent"] for r in densities if r["quantity"] == "correlation"} == {"1.0", "0.5"}
    summary = read_csv(tmp_path / "out" / "summary.csv")
    assert [r["label"] for r in summary] == ["full", *["random+drop (β=1)", "random+drop (β=0.5)"] * 2]


def test_imbalance_figure_one_family_per_factor(tmp_path: Path) -> None:
    for factor in (2.0, 20.0):
        for seed in (0, 1):
            flat_run(tmp_path, "full", 1.0, seed, 0.9, imbalance=factor)
            for protocol in ("el2n", "random+drop"):
                for density in (0.3, 0.6):
                    flat_run(tmp_path, protocol, density, seed, density / factor + 0.01 * seed, imbalance=factor)
    paths = FIGURES["imbalance"](FigureInput.of(load_results(tmp_path)), tmp_path / "imbalance")
    assert [p.name for p in paths] == ["imbalance.png", "imbalance.csv"]
    records = read_csv(tmp_path / "imbalance.csv")
    assert {r["quantity"] for r in records} == {"accuracy", "worst_class_accuracy", "max_min_gap", "class_accuracy_std"}
    cell = {(r["imbalance"], r["protocol"], float(r["density"])): r for r in records if r["quantity"] == "accuracy"}
    assert float(cell[("20.0", "random+drop", 0.6)]["mean"]) == pytest.approx(0.6 / 20 + 0.005)
    assert float(cell[("2.0", "el2n", 0.3)]["max"]) == pytest.approx(0.3 / 2 + 0.01)
    assert cell[("2.0", "full", 1.0)]["n_seeds"] == "2"


def test_file_names_name_what_differs_between_experiments() -> None:
    keys = [("digits", None, 0, "mlp", "erm", "class", 2.0), ("digits", None, 0, "mlp", "erm", "class", 20.0)]
    assert suffixes(keys) == ["_imbalance2.0", "_imbalance20.0"]
    keys = [("npz", "a/x.npz", 0, "mlp", "erm", "class", None), ("npz", "b/x.npz", 1, "mlp", "erm", "class", None)]
    assert suffixes(keys) == ["_x_split0", "_x_split1"]
    same_stem = [("npz", "a/x.npz", 0, "mlp", "erm", "class", None), ("npz", "b/x.npz", 0, "mlp", "erm", "class", None)]
    assert suffixes(same_stem) == ["_x_0", "_x_1"]  # two files of one stem: numbered
    assert suffixes(keys[:1]) == [""]


def test_group_figure_compares_methods_and_quota_units(tmp_path: Path) -> None:
    for unit in ("class", "group"):
        for method, value in (("erm", 0.8), ("group_dro", 0.7)):
            flat_run(tmp_path, "full", 1.0, 0, value, groups=True, method=method, quota_unit=unit)
            flat_run(tmp_path, "random+drop", 0.5, 0, value - (0.1 if unit == "group" else 0.2), groups=True,
                     method=method, quota_unit=unit)
    paths = FIGURES["group_robustness"](FigureInput.of(load_results(tmp_path)), tmp_path / "group_robustness")
    assert [p.name for p in paths] == ["group_robustness.png", "group_robustness.csv"]
    records = read_csv(tmp_path / "group_robustness.csv")
    assert {r["quantity"] for r in records} == {"worst_group_accuracy", "weighted_group_accuracy"}
    worst = [(r["method"], r["protocol"], r["quota_unit"], round(float(r["mean"]), 9))
             for r in records if r["quantity"] == "worst_group_accuracy"]
    # `full` does not depend on the quota unit: one line per method; random+drop: one per method and unit.
    assert sorted(worst) == sorted([
        ("erm", "full", "class", 0.4), ("erm", "random+drop", "class", 0.3), ("erm", "random+drop", "group", 0.35),
        ("group_dro", "full", "class", 0.35), ("group_dro", "random+drop", "class", 0.25),
        ("group_dro", "random+drop", "group", 0.3),
    ])


def test_report_refuses_a_store_the_summary_refuses(tmp_path: Path) -> None:
    """Two runs of one cell (here: one training setting apart) stop the report before anything is drawn."""
    flat_run(tmp_path, "random", 0.5, 0, 0.5)
    other = config("random", 0.5, 0)
    other["train"]["lr"] = 0.2
    write_run(tmp_path, other, metrics(np.full(SIZES.size, 0.5), counts_for("random", 0.5)))
    with pytest.raises(ValueError, match=r"differ in train\.lr .*separate run folders"):
        write_report(tmp_path, tmp_path / "out")
