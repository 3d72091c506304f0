"""Report: rows from a synthetic run store, the text table, figures + CSVs, summary numbers, correlations."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deep.report import format_summary, format_table, load_results, pearson, protocol_kind, write_report
from deep.runs import RunStore

SIZES = np.array([60, 50, 40, 30])
FULL_ACCURACY = np.array([0.95, 0.90, 0.75, 0.55])  # per class, before seed noise
PROTOCOLS = ("random", "el2n", "random+el2nq", "el2n+drop", "random+drop")
DENSITIES = tuple(round(0.1 * i, 1) for i in range(1, 10))
SEEDS = (0, 1, 2)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def config(protocol: str, density: float, seed: int, model: str = "mlp", **dataset: object) -> dict:
    """A final-run config exactly as in RUN_SCHEMA.md."""
    scorer = None if protocol in ("full", "random", "random+drop") else "el2n"
    return {
        "kind": "final",
        "dataset": {"name": "digits", "data": None, "imbalance": None, "split_seed": 0, **dataset},
        "model": model,
        "protocol": protocol,
        "scorer": scorer,
        "density": 1.0 if protocol == "full" else density,
        "seed": seed,
        "method": "erm",
        "quota_unit": "class",
        "train": {"epochs": 3, "lr": 0.1, "batch_size": 32},
        "query": None if scorer is None else {"scores": "abc", "recalls": None},
    }


def metrics(class_accuracy: np.ndarray, counts: np.ndarray, sizes: np.ndarray = SIZES, groups: bool = False) -> dict:
    """Metrics as in RUN_SCHEMA.md, consistent with the given class accuracies and kept counts."""
    support = np.full(class_accuracy.size, 20)
    hits = np.round(class_accuracy * support).astype(int)
    confusion = np.diag(hits) + np.roll(np.diag(support - hits), 1, axis=1)
    out = {
        "accuracy": float(class_accuracy.mean()),
        "worst_class_accuracy": float(class_accuracy.min()),
        "class_accuracy": class_accuracy.tolist(),
        "max_min_gap": float(class_accuracy.max() - class_accuracy.min()),
        "class_accuracy_std": float(class_accuracy.std()),
        "confusion": confusion.tolist(),
        "val_accuracy": float(class_accuracy.mean()),
        "num_train": int(sizes.sum()),
        "num_kept": int(counts.sum()),
        "class_sizes": sizes.tolist(),
        "class_counts": counts.tolist(),
        "class_density": (counts / sizes).tolist(),
        "recalls": None,
        "train_seconds": 0.1,
        "epochs": 3,
    }
    if groups:
        out.update(group_accuracy=[0.9, 0.5], worst_group_accuracy=0.5, weighted_group_accuracy=0.8)
    return out


def class_weights(protocol: str) -> np.ndarray:
    """How a protocol spreads its budget over classes: score-based ones favour the hard classes."""
    if protocol == "random":
        return np.ones(SIZES.size)
    return 1.0 - FULL_ACCURACY + (0.2 if protocol_kind(protocol) in ("score", "random+quota") else 0.0)


def counts_for(protocol: str, density: float) -> np.ndarray:
    """Kept counts per class: density ~ weights, capped at the class size."""
    share = class_weights(protocol) * density * SIZES.sum() / (class_weights(protocol) * SIZES).sum()
    return np.minimum(np.round(share * SIZES), SIZES).astype(int)


def fill_store(root: Path, protocols: tuple[str, ...] = PROTOCOLS, seeds: tuple[int, ...] = SEEDS,
               full: bool = True, model: str = "mlp", groups: bool = False) -> dict[tuple, dict]:
    """Write finished synthetic runs; returns their metrics by (protocol, density, seed)."""
    store = RunStore(root)
    written = {}
    for seed in seeds:
        noise = np.random.default_rng(seed)
        cells = [(p, d) for p in protocols for d in DENSITIES] + ([("full", 1.0)] if full else [])
        for protocol, density in cells:
            accuracy = np.clip(FULL_ACCURACY * (0.6 + 0.4 * density) + noise.normal(0, 0.02, SIZES.size), 0, 1)
            counts = SIZES if protocol == "full" else counts_for(protocol, density)
            m = metrics(accuracy, counts, groups=groups)
            store.finish(config(protocol, density, seed, model), m, {"kept": np.arange(int(counts.sum()))})
            written[(protocol, density, seed)] = m
    return written


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("runs")
    written = fill_store(root)
    RunStore(root).finish({"kind": "query", "seed": 0}, {"recalls": [0.5] * 4})  # not a final run: ignored
    return root, written


@pytest.fixture(scope="module")
def report(synthetic: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("report")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete store must give no notes
        paths = write_report(synthetic[0], out)
    return out, paths


def key(record: dict) -> tuple[str, float, str]:
    """A figure CSV record's (protocol, density, quantity)."""
    return record["protocol"], float(record["density"]), record["quantity"]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_load_results_one_row_per_final_run(synthetic: tuple[Path, dict]) -> None:
    root, written = synthetic
    rows = load_results(root)
    assert len(rows) == len(PROTOCOLS) * len(DENSITIES) * len(SEEDS) + len(SEEDS) == len(written)
    for key in ("dataset", "model", "protocol", "scorer", "density", "seed", "method", "quota_unit", "imbalance",
                "accuracy", "worst_class_accuracy", "class_accuracy", "class_density", "run"):
        assert all(key in row for row in rows), key
    row = next(r for r in rows if (r["protocol"], r["density"], r["seed"]) == ("el2n", 0.3, 1))
    assert row["dataset"] == "digits" and row["scorer"] == "el2n" and row["imbalance"] is None
    assert row["accuracy"] == written[("el2n", 0.3, 1)]["accuracy"]
    assert rows == load_results(root)  # deterministic
    assert rows[0]["protocol"] == "full" and rows[-1]["protocol"] == "random+drop"
    assert [r["density"] for r in rows if r["protocol"] == "random" and r["seed"] == 0] == list(DENSITIES)


def test_empty_or_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no finished runs under"):
        load_results(tmp_path)
    with pytest.raises(ValueError, match="no finished runs under"):
        write_report(tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_results(tmp_path / "nowhere")


def test_malformed_metrics_name_the_run(tmp_path: Path) -> None:
    path = RunStore(tmp_path).finish(config("random", 0.5, 0), {"accuracy": 0.5})
    with pytest.raises(ValueError, match=f"{path.name}.*lacks"):
        load_results(tmp_path)


def test_format_table_lists_every_protocol(synthetic: tuple[Path, dict]) -> None:
    rows = load_results(synthetic[0])
    table = format_table(rows)
    lines = table.splitlines()
    assert len(lines) == len(rows) + 2
    assert len({len(line) for line in lines[:2]}) == 1  # header as wide as its rule
    for word in ("dataset", "protocol", "density", "accuracy", "worst-class", "gap", "std"):
        assert word in lines[0]
    for protocol in (*PROTOCOLS, "full"):
        assert any(line.split()[2] == protocol for line in lines[2:]), protocol
    assert "worst-group" not in lines[0] and "method" not in lines[0]


def test_format_table_shows_worst_group_and_varying_fields(tmp_path: Path) -> None:
    fill_store(tmp_path, ("random",), (0,), groups=True)
    fill_store(tmp_path, ("random",), (0,), model="cnn")
    header = format_table(load_results(tmp_path)).splitlines()[0]
    assert "worst-group" in header and "method" not in header
    assert "0.5000" in format_table(load_results(tmp_path))


def test_write_report_writes_every_file(report: tuple[Path, list[Path]]) -> None:
    out, paths = report
    names = {"robustness", "class_densities", "class_bias"}
    expected = {f"{n}.{ext}" for n in names for ext in ("png", "csv")} | {"summary.csv", "summary.md"}
    assert {p.name for p in paths} == expected and all(p.parent == out for p in paths)
    for path in paths:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC


def test_robustness_csv_holds_seed_statistics(report: tuple[Path, list[Path]], synthetic: tuple[Path, dict]) -> None:
    records = read_csv(report[0] / "robustness.csv")
    _, written = synthetic
    assert {r["quantity"] for r in records} == {"accuracy", "worst_class_accuracy", "max_min_gap", "class_accuracy_std"}
    assert {r["protocol"] for r in records} == {*PROTOCOLS, "full"}
    for protocol, density, metric in [("random+drop", 0.2, "worst_class_accuracy"), ("full", 1.0, "max_min_gap")]:
        values = [written[(protocol, density, s)][metric] for s in SEEDS]
        (rec,) = [r for r in records if key(r) == (protocol, density, metric)]
        assert int(rec["n_seeds"]) == 3
        np.testing.assert_allclose([float(rec[k]) for k in ("mean", "std", "min", "max")],
                                   [np.mean(values), np.std(values), np.min(values), np.max(values)])


def test_summary_numbers_are_mean_and_std_over_seeds(report: tuple[Path, list], synthetic: tuple[Path, dict]) -> None:
    _, written = synthetic
    rows = {r["protocol"]: r for r in read_csv(report[0] / "summary.csv")}
    assert list(rows) == ["full", *PROTOCOLS]
    for protocol in PROTOCOLS:
        for density in (0.3, 0.5, 0.8):
            for metric in ("accuracy", "worst_class_accuracy"):
                values = [written[(protocol, density, s)][metric] for s in SEEDS]
                assert rows[protocol][f"{metric}@d={density:g}"] == f"{np.mean(values):.4f} ± {np.std(values):.4f}"
        assert rows[protocol]["accuracy@d=1"] == "" and rows[protocol]["n_seeds"] == "3"
    full = [written[("full", 1.0, s)]["worst_class_accuracy"] for s in SEEDS]
    assert rows["full"]["worst_class_accuracy@d=1"] == f"{np.mean(full):.4f} ± {np.std(full):.4f}"
    assert rows["full"]["accuracy@d=0.5"] == ""
    markdown = (report[0] / "summary.md").read_text()
    assert "ddof=0" in markdown and "0.3, 0.5, 0.8, 1" in markdown
    assert rows["random+drop"]["accuracy@d=0.5"] in markdown
    # The text summary the sweep prints holds the same cells, one line per protocol.
    text = format_summary(load_results(synthetic[0])).splitlines()
    assert "mean ± std over seeds" in text[0] and len(text) == 3 + len(rows)
    for line, (protocol, row) in zip(text[3:], rows.items()):
        assert line.split()[0] == protocol and (row["worst_class_accuracy@d=0.5"] or "-") in line


def test_correlation_matches_synthetic_class_densities(report: tuple[Path, list], synthetic: tuple[Path, dict]) -> None:
    _, written = synthetic
    records = read_csv(report[0] / "class_densities.csv")
    assert {r["protocol"] for r in records if r["quantity"] == "correlation"} == set(PROTOCOLS) - {"random"}
    full = np.mean([written[("full", 1.0, s)]["class_accuracy"] for s in SEEDS], axis=0)
    per_seed = [np.corrcoef(written[("el2n+drop", 0.4, s)]["class_density"], full)[0, 1] for s in SEEDS]
    (rec,) = [r for r in records if key(r) == ("el2n+drop", 0.4, "correlation")]
    np.testing.assert_allclose(float(rec["mean"]), np.mean(per_seed))
    assert float(rec["mean"]) < -0.9  # hard classes keep more: densities fall as full-data accuracy rises


def test_correlation_on_a_constructed_case(tmp_path: Path) -> None:
    """Class densities 0.1..0.4 against full-data accuracies 0.9..0.6: exactly r = -1."""
    store = RunStore(tmp_path)
    sizes = np.full(4, 100)
    accuracy = np.array([0.9, 0.8, 0.7, 0.6])
    for seed in (0, 1):
        store.finish(config("full", 1.0, seed), metrics(accuracy, sizes, sizes))
        store.finish(config("random+drop", 0.25, seed), metrics(accuracy, np.array([10, 20, 30, 40]), sizes))
        store.finish(config("el2n", 0.25, seed), metrics(accuracy, np.array([40, 10, 20, 30]), sizes))
    write_report(tmp_path, tmp_path / "out")
    records = {r["protocol"]: float(r["mean"]) for r in read_csv(tmp_path / "out" / "class_densities.csv")
               if r["quantity"] == "correlation"}
    assert records["random+drop"] == pytest.approx(-1.0)
    assert records["el2n"] == pytest.approx(np.corrcoef([0.4, 0.1, 0.2, 0.3], accuracy)[0, 1])  # = 0.2


def test_missing_full_and_single_seed_are_skipped_with_notes(tmp_path: Path) -> None:
    fill_store(tmp_path, ("random", "el2n"), (0,), full=False)
    with pytest.warns(UserWarning, match="no `full` runs"):
        paths = write_report(tmp_path, tmp_path / "out")
    assert {p.name for p in paths} >= {"robustness.png", "class_densities.png", "class_bias.png", "summary.md"}
    assert not any(r["quantity"] == "correlation" for r in read_csv(tmp_path / "out" / "class_densities.csv"))
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "no `full` runs" in markdown and "single seed" in markdown
    summary = {r["protocol"]: r for r in read_csv(tmp_path / "out" / "summary.csv")}
    assert summary["el2n"]["accuracy@d=0.5"].endswith("± 0.0000") and summary["el2n"]["accuracy@d=1"] == ""


def test_one_set_of_figures_per_experiment(tmp_path: Path) -> None:
    """Two models: suffixed file names; the cnn runs keep class proportions and have groups."""
    fill_store(tmp_path, ("random", "random+drop"), (0, 1))
    fill_store(tmp_path, ("random",), (0, 1), model="cnn", groups=True)
    with pytest.warns(UserWarning, match="cnn .*no protocol changes class proportions"):
        names = {p.name for p in write_report(tmp_path, tmp_path / "out")}
    assert {"robustness_mlp.png", "robustness_cnn.png", "class_bias_cnn.csv", "class_densities_mlp.png"} <= names
    assert "class_densities_cnn.png" not in names and "robustness.png" not in names
    groups = {r["quantity"] for r in read_csv(tmp_path / "out" / "robustness_cnn.csv")}
    assert {"worst_group_accuracy", "weighted_group_accuracy"} <= groups
    assert "worst_group_accuracy" not in {r["quantity"] for r in read_csv(tmp_path / "out" / "robustness_mlp.csv")}
    summary = read_csv(tmp_path / "out" / "summary.csv")
    assert [(r["model"], r["protocol"]) for r in summary] == [
        ("cnn", "full"), ("cnn", "random"), ("mlp", "full"), ("mlp", "random"), ("mlp", "random+drop")
    ]


def test_runs_differing_only_in_training_settings_are_refused(tmp_path: Path) -> None:
    fill_store(tmp_path, ("random",), (0,))
    other = config("random", 0.5, 0)
    other["train"]["epochs"] = 99
    RunStore(tmp_path).finish(other, metrics(FULL_ACCURACY, counts_for("random", 0.5)))
    with pytest.raises(ValueError, match="separate run folders"):
        write_report(tmp_path, tmp_path / "out")


def test_unknown_bias_protocol_is_refused(synthetic: tuple[Path, dict], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bias_protocol"):
        write_report(synthetic[0], tmp_path, bias_protocol="grand")


def test_protocol_kinds() -> None:
    kinds = [protocol_kind(p) for p in ("full", "random", "el2n", "random+el2nq", "el2n+drop", "random+drop")]
    assert kinds == ["full", "random", "score", "random+quota", "score+drop", "random+drop"]


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


def _finish(root: Path, protocol: str, density: float, seed: int, value: float, groups: bool = False,
            method: str = "erm", quota_unit: str = "class", **dataset: object) -> None:
    """One run whose class accuracies (and group accuracies) all equal `value`."""
    run = config(protocol, density, seed, **dataset)
    run.update(method=method, quota_unit=quota_unit)
    m = metrics(np.full(SIZES.size, value), counts_for("random", density) if protocol != "full" else SIZES)
    if groups:
        m.update(group_accuracy=[value, value / 2], worst_group_accuracy=value / 2, weighted_group_accuracy=value)
    RunStore(root).finish(run, m)


def test_imbalance_figure_one_family_per_factor(tmp_path: Path) -> None:
    for imbalance in (2.0, 20.0):
        for seed in (0, 1):
            _finish(tmp_path, "full", 1.0, seed, 0.9, imbalance=imbalance)
            for protocol in ("el2n", "random+drop"):
                for density in (0.3, 0.6):
                    _finish(tmp_path, protocol, density, seed, density / imbalance + 0.01 * seed, imbalance=imbalance)
    names = {p.name for p in write_report(tmp_path, tmp_path / "out")}
    assert {"imbalance.png", "imbalance.csv"} <= names
    assert len([name for name in names if name.startswith("robustness_imbalance")]) == 4  # per factor, PNG + CSV
    records = read_csv(tmp_path / "out" / "imbalance.csv")
    assert {r["quantity"] for r in records} == {"accuracy", "worst_class_accuracy", "max_min_gap", "class_accuracy_std"}
    cell = {(r["imbalance"], r["protocol"], float(r["density"])): r for r in records if r["quantity"] == "accuracy"}
    assert float(cell[("20.0", "random+drop", 0.6)]["mean"]) == pytest.approx(0.6 / 20 + 0.005)
    assert float(cell[("2.0", "el2n", 0.3)]["max"]) == pytest.approx(0.3 / 2 + 0.01)
    assert cell[("2.0", "full", 1.0)]["n_seeds"] == "2"


def test_balanced_store_has_no_imbalance_or_group_figure(report: tuple[Path, list[Path]]) -> None:
    names = {p.name for p in report[1]}
    assert not any(name.startswith(("imbalance", "group_robustness")) for name in names)


def test_group_figure_compares_methods_and_quota_units(tmp_path: Path) -> None:
    for unit in ("class", "group"):
        for method, value in (("erm", 0.8), ("group_dro", 0.7)):
            _finish(tmp_path, "full", 1.0, 0, value, groups=True, method=method, quota_unit=unit)
            _finish(tmp_path, "random+drop", 0.5, 0, value - (0.1 if unit == "group" else 0.2), groups=True,
                    method=method, quota_unit=unit)
    with pytest.warns(UserWarning, match="single seed"):
        write_report(tmp_path, tmp_path / "out")
    records = read_csv(tmp_path / "out" / "group_robustness.csv")
    assert {r["quantity"] for r in records} == {"worst_group_accuracy", "weighted_group_accuracy"}
    worst = [(r["method"], r["protocol"], r["quota_unit"], round(float(r["mean"]), 9))
             for r in records if r["quantity"] == "worst_group_accuracy"]
    # `full` does not depend on the quota unit: one line per method; random+drop: one per method and unit.
    assert sorted(worst) == sorted([
        ("erm", "full", "class", 0.4), ("erm", "random+drop", "class", 0.3), ("erm", "random+drop", "group", 0.35),
        ("group_dro", "full", "class", 0.35), ("group_dro", "random+drop", "class", 0.25),
        ("group_dro", "random+drop", "group", 0.3),
    ])
