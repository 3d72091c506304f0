"""Figures and the `python -m toy` command line: every figure is written with the numbers behind it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from toy.__main__ import main
from toy.figures import FIGURES, FigureSettings, make_figures

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--datasets", "3", "--points", "40", "--models", "25", "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All figures drawn once at tiny sizes through the command line."""
    out = tmp_path_factory.mktemp("figures")
    assert main(["figures", "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_writes_a_png_and_its_numbers(drawn: Path, name: str) -> None:
    assert (drawn / f"{name}.png").read_bytes()[:8] == PNG_SIGNATURE
    numbers = [path for path in (drawn / f"{name}.json", drawn / f"{name}.csv") if path.exists()]
    assert len(numbers) == 1 and numbers[0].stat().st_size > 0


def test_figure3_numbers_hold_the_closed_form_risks(drawn: Path) -> None:
    data = json.loads((drawn / "fig3_pruning_methods.json").read_text())
    model = data["model"]
    assert round(100 * model["R0_t_star"], 1) == 4.8
    assert round(100 * model["R1_t_star"], 1) == 12.1
    assert round(100 * model["R0_t_hat"], 1) == round(100 * model["R1_t_hat"], 1) == 9.1
    assert [panel["method"] for panel in data["panels"]] == ["random_optimal", "ssp", "random_ssp_ratios"]
    for panel in data["panels"]:
        assert len(panel["thresholds"]) == data["datasets"] == 3
        assert sum(panel["mean_kept_counts"]) == pytest.approx(0.5 * data["points"])


def test_figure4b_uses_drop_at_both_densities(drawn: Path) -> None:
    data = json.loads((drawn / "fig4b_drop.json").read_text())
    assert [(panel["method"], panel["density"]) for panel in data["panels"]] == [("drop", 0.75), ("drop", 0.5)]
    for panel in data["panels"]:
        assert sum(panel["mean_kept_counts"]) == pytest.approx(panel["density"] * data["points"])


def test_figure4a_uses_the_exact_density_ratio_and_shows_the_separation(drawn: Path) -> None:
    data = json.loads((drawn / "fig4a_risk_ratios.json").read_text())
    rows = data["mixtures"]
    assert len(rows) == 25
    for row in rows:
        sigma0, sigma1, phi0 = row["sigma0"], row["sigma1"], row["phi0"]
        assert 1e-2 <= sigma0 < sigma1 <= 1e2 and 0 < phi0 < 1
        # Both axes are d0/d1: the exact one carries the prior ratio, which the paper's x-axis left out.
        assert row["optimal_density_ratio"] == pytest.approx(sigma0 / sigma1 * (1 - phi0) / phi0)
        if abs(float(row["t_star"])) != float("inf") and row["R1"] > 0:
            assert row["proxy_density_ratio"] == pytest.approx(row["R0"] / row["R1"], rel=1e-9)
    curves = data["curves"]
    assert curves["separations"] == [0.5, 1.0, 2.0, 4.0] and curves["paper_sigma_ratio"] == 0.5
    assert [round(v, 2) for v in curves["proxy_at_paper_sigma_ratio"]] == [0.22, 0.31, 0.4, 0.46]


def test_exact_exponent_figure_holds_beta_star(drawn: Path) -> None:
    data = json.loads((drawn / "exact_exponent.json").read_text())
    assert data["sigma_ratios"] == [0.1, 0.25, 0.5, 1.0, 2.0, 4.0]
    assert round(data["paper"]["exact_exponent"], 3) == 0.758
    for curve in data["exact_exponent"]:
        assert len(curve) == len(data["separation"]) and all(0 < beta < 1 for beta in curve)


def test_figure3_ssp_panel_marks_both_minima_of_the_pruned_risk(drawn: Path) -> None:
    panels = {panel["method"]: panel for panel in json.loads((drawn / "fig3_pruning_methods.json").read_text())["panels"]}
    ssp = panels["ssp"]["population"]
    assert [round(t, 2) for t in ssp["minima"]] == [-1.46, -0.17, 1.46]
    assert [round(r, 3) for r in ssp["risk_at_minima"]] == [0.185, 0.169, 0.322]
    assert sum(ssp["nearest_datasets"]) == 3
    # Random pruning inside classes leaves one minimum, t* at the kept class ratio.
    assert len(panels["random_optimal"]["population"]["minima"]) == 1


def test_theory_numbers_cross_at_the_robust_ratio(drawn: Path) -> None:
    data = json.loads((drawn / "theory.json").read_text())
    ratios, thresholds = data["prior_ratio"], data["t_star"]
    assert min(ratios) == pytest.approx(1e-2) and max(ratios) == pytest.approx(1e2)
    # Non-finite thresholds are stored as the strings 'inf' / '-inf', which float() reads back.
    finite = [(r, float(t)) for r, t in zip(ratios, thresholds, strict=True) if abs(float(t)) != float("inf")]
    below = [t for r, t in finite if r < data["model"]["robust_prior_ratio"]]
    above = [t for r, t in finite if r > data["model"]["robust_prior_ratio"]]
    assert max(below) < data["model"]["t_hat"] < min(above)


def test_same_seed_same_numbers(drawn: Path, tmp_path: Path) -> None:
    assert main(["figures", "--out", str(tmp_path), "--only", "fig3_pruning_methods", *TINY]) == 0
    name = "fig3_pruning_methods.json"
    assert (tmp_path / name).read_text() == (drawn / name).read_text()


def test_only_draws_the_named_figures(tmp_path: Path) -> None:
    assert main(["figures", "--out", str(tmp_path), "--only", "theory", *TINY]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["theory.json", "theory.png"]


def test_unknown_figure_name_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown figure"):
        make_figures(tmp_path, FigureSettings(progress=False), ["fig9"])


@pytest.mark.parametrize("field", ["datasets", "points", "models"])
def test_settings_reject_sizes_too_small(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FigureSettings(**{field: 0})


def test_cli_rejects_non_positive_sizes(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["figures", "--out", str(tmp_path), "--datasets", "0"])
    assert exit_info.value.code == 2


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "figures" in capsys.readouterr().out


def test_module_entry_point_explains_every_flag() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "toy", "figures", "--help"], cwd=ROOT, capture_output=True, text=True, check=True,
        timeout=120,
    )
    for flag in ("--out", "--seed", "--datasets", "--points", "--models", "--only", "--no-progress"):
        assert flag in completed.stdout
