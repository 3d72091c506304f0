"""The paper's two-Gaussian figures (paper 003, Figures 3 and 4) and beta*, each saved as a PNG plus the numbers behind it."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from tqdm import tqdm

from toy.gaussians import TwoGaussians, exact_exponent
from toy.montecarlo import MonteCarloResult, evaluate, prune
from toy.pruning import ssp_population_margin, ssp_population_minima, ssp_population_risk
from toy.selection import simulate_selection

# Object-oriented matplotlib only (Figure, not pyplot): no backend or global state is touched, savefig renders with Agg.

PAPER_MODEL = TwoGaussians(mu0=-1.0, mu1=1.0, sigma0=0.5, sigma1=1.0, phi0=0.5)
"""The mixture of paper 003, Figure 3: mu = (-1, 1), sigma = (0.5, 1), phi0 = phi1."""

CLASS_COLORS = ("tab:blue", "tab:orange")
T_STAR_COLOR = "tab:green"
T_HAT_COLOR = "tab:red"
PRIOR_RATIOS = np.logspace(-2.0, 2.0, 801)
SIGMA_RANGE = (1e-2, 1e2)
RISK_RATIO_MAX = 1e2
RATIO_AXIS = (1e-4, 1e2)
SEPARATIONS = (0.5, 1.0, 2.0, 4.0)
"""mu1 - mu0 (with sigma1 = 1) of the curves that show the proxy's dependence on the separation."""
EXPONENT_SIGMA_RATIOS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
MINIMUM_COLOR = "tab:purple"


@dataclass(frozen=True)
class FigureSettings:
    """Seed and Monte Carlo sizes the figures are computed from."""

    seed: int = 0
    datasets: int = 10
    points: int = 400
    models: int = 2000
    progress: bool = True

    def __post_init__(self) -> None:
        """Reject sizes no figure can be drawn from."""
        for name, minimum in (("datasets", 1), ("points", 2), ("models", 1)):
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} must be at least {minimum}, got {getattr(self, name)!r}")


def _jsonable(value: Any) -> Any:
    """Plain JSON types; non-finite floats become the strings 'inf', '-inf', 'nan' (float() reads them back)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else str(float(value))
    return value


def _save(fig: Figure, out: Path, name: str, data: dict[str, Any]) -> list[Path]:
    """Write `name`.png and `name`.json (the numbers the figure was drawn from) into `out`."""
    png, numbers = out / f"{name}.png", out / f"{name}.json"
    fig.savefig(png, dpi=150)
    numbers.write_text(json.dumps(_jsonable(data), indent=1) + "\n")
    return [png, numbers]


def model_summary(model: TwoGaussians) -> dict[str, float]:
    """Parameters and closed-form reference values of a mixture: t*, t_hat and the class risks at both."""
    t_star, t_hat = float(model.t_star()), float(model.t_hat())
    r0_star, r1_star = model.class_risks(t_star)
    r0_hat, r1_hat = model.class_risks(t_hat)
    return {
        "mu0": model.mu0, "mu1": model.mu1, "sigma0": model.sigma0, "sigma1": model.sigma1, "phi0": model.phi0,
        "t_star": t_star, "t_hat": t_hat, "robust_prior_ratio": float(model.robust_prior_ratio()),
        "R0_t_star": float(r0_star), "R1_t_star": float(r1_star), "R0_t_hat": float(r0_hat), "R1_t_hat": float(r1_hat),
    }


def _percent(value: float) -> str:
    """A risk as a percentage with one decimal."""
    return f"{100.0 * value:.1f}%"


def _infinite_spans(x: np.ndarray, infinite: np.ndarray) -> list[tuple[float, float]]:
    """Contiguous x ranges where `infinite` holds (for shading where t* is ±inf)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], infinite.astype(int), [0]])))
    return [(float(x[start]), float(x[stop - 1])) for start, stop in zip(edges[::2], edges[1::2], strict=True)]


def theory_data(model: TwoGaussians) -> dict[str, Any]:
    """t*(phi0/phi1) and the class, average (own priors) and worst risks there, over a log grid of prior ratios."""
    thresholds = np.asarray(model.t_star(PRIOR_RATIOS), dtype=float)
    r0, r1 = model.class_risks(thresholds)
    return {
        "model": model_summary(model),
        "prior_ratio": PRIOR_RATIOS, "t_star": thresholds, "R0": r0, "R1": r1,
        "R_average": model.average_risk(thresholds), "R_worst": model.worst_class_risk(thresholds),
    }


def plot_theory(data: dict[str, Any]) -> Figure:
    """Left: t*(phi0/phi1) against the prior ratio with t_hat; right: class, average and worst risks at t*."""
    ref = data["model"]
    ratio = np.asarray(data["prior_ratio"])
    thresholds = np.asarray(data["t_star"])
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        for start, stop in _infinite_spans(ratio, ~np.isfinite(thresholds)):
            ax.axvspan(start, stop, color="0.9", zorder=0)
        ax.axvline(ref["robust_prior_ratio"], color=T_HAT_COLOR, ls=":", lw=1.2)
        ax.set_xscale("log")
        ax.set_xlabel(r"training prior ratio $\phi_0/\phi_1$")
        ax.grid(alpha=0.3, which="both", lw=0.5)
    left.plot(ratio, thresholds, color=T_STAR_COLOR, lw=2, label=r"$t^*(\phi_0/\phi_1)$ (average-risk optimum)")
    left.axhline(ref["t_hat"], color=T_HAT_COLOR, ls="--", lw=1.2, label=rf"$\hat t$ = {ref['t_hat']:.3f} (worst-class optimum)")
    left.plot([ref["robust_prior_ratio"]], [ref["t_hat"]], "o", color=T_HAT_COLOR,
              label=rf"$\sigma_0/\sigma_1$ = {ref['robust_prior_ratio']:.2g}: $t^* = \hat t$")
    left.set_ylabel("threshold $t$")
    left.set_title("Average-optimal threshold against the prior ratio")
    right.plot(ratio, data["R0"], color=CLASS_COLORS[0], lw=2, label=r"$R_0(t^*)$")
    right.plot(ratio, data["R1"], color=CLASS_COLORS[1], lw=2, label=r"$R_1(t^*)$")
    right.plot(ratio, data["R_average"], color="black", lw=1.5, label=rf"$R(t^*)$, test priors $\phi_0$ = {ref['phi0']:g}")
    right.plot(ratio, data["R_worst"], color="0.45", lw=1, ls="--", label=r"$\max(R_0, R_1)$ at $t^*$")
    right.axhline(ref["R0_t_hat"], color=T_HAT_COLOR, ls="--", lw=1.2,
                  label=rf"$R_0(\hat t) = R_1(\hat t)$ = {_percent(ref['R0_t_hat'])}")
    right.set_ylim(0.0, 0.5)
    right.set_ylabel("risk at $t^*$")
    right.set_title(r"Class risks at $t^*$ (dotted: $\sigma_0/\sigma_1$; grey: $t^* = \pm\infty$)")
    left.legend(loc="upper left", fontsize=8)
    right.legend(loc="upper right", fontsize=8)
    fig.suptitle(
        rf"Two Gaussians: $\mu$ = ({ref['mu0']:g}, {ref['mu1']:g}), $\sigma$ = ({ref['sigma0']:g}, {ref['sigma1']:g})"
    )
    return fig


def theory_figure(out: Path, settings: FigureSettings) -> list[Path]:
    """Closed-form theory for the paper's mixture: t*, t_hat and the class risks against the prior ratio."""
    data = theory_data(PAPER_MODEL)
    return _save(plot_theory(data), out, "theory", data)


def histogram_edges(model: TwoGaussians, bins: int = 48) -> np.ndarray:
    """Shared bin edges covering four standard deviations around both class means."""
    low = min(model.mu0 - 4.0 * model.sigma0, model.mu1 - 4.0 * model.sigma1)
    high = max(model.mu0 + 4.0 * model.sigma0, model.mu1 + 4.0 * model.sigma1)
    return np.linspace(low, high, bins + 1)


def pruning_panel_data(
    model: TwoGaussians, x: np.ndarray, y: np.ndarray, keep: np.ndarray, result: MonteCarloResult, edges: np.ndarray
) -> dict[str, Any]:
    """Numbers behind one pruning panel: histograms per dataset (full and kept), mean ERM and class risks."""
    batch = x.shape[0]
    r0, r1 = model.class_risks(result.mean_threshold)
    sizes = np.stack([(y == 0).sum(axis=-1), (y == 1).sum(axis=-1)], axis=-1).mean(axis=0)
    return {
        "thresholds": result.thresholds,
        "mean_threshold": result.mean_threshold,
        "stderr_threshold": result.stderr_threshold,
        "risks_at_mean_threshold": [float(r0), float(r1)],
        "mean_risks": result.mean_risks,
        "stderr_risks": result.stderr_risks,
        "mean_class_sizes": sizes,
        "mean_kept_counts": result.mean_kept_counts,
        "histogram_edges": edges,
        "full_counts_per_dataset": [np.histogram(x[y == k], edges)[0] / batch for k in (0, 1)],
        "kept_counts_per_dataset": [np.histogram(x[(y == k) & keep], edges)[0] / batch for k in (0, 1)],
    }


def draw_pruning_panel(ax: Axes, panel: dict[str, Any], reference: dict[str, float], title: str) -> None:
    """Kept-point histograms per class over the full data, with the fitted thresholds, their mean, t* and t_hat."""
    edges = np.asarray(panel["histogram_edges"])
    for k in (0, 1):
        ax.stairs(panel["full_counts_per_dataset"][k], edges, color=CLASS_COLORS[k], lw=0.8, ls=":",
                  label=f"class {k}, full data")
        ax.stairs(panel["kept_counts_per_dataset"][k], edges, color=CLASS_COLORS[k], fill=True, alpha=0.5,
                  label=f"class {k}, kept")
    # x in data units, y in axes units: the per-dataset thresholds sit as a rug just above the x axis.
    ax.plot(panel["thresholds"], np.full(len(panel["thresholds"]), 0.025), "|", color="black", ms=12, mew=1.2,
            transform=ax.get_xaxis_transform(), label="ERM threshold of each dataset")
    ax.axvline(panel["mean_threshold"], color="black", lw=2, label=r"mean ERM threshold $\bar T$")
    ax.axvline(reference["t_star"], color=T_STAR_COLOR, ls="--", lw=1.3, label=r"$t^*(1)$ (average-optimal)")
    ax.axvline(reference["t_hat"], color=T_HAT_COLOR, ls=":", lw=1.5, label=r"$\hat t$ (worst-class optimal)")
    (kept0, kept1), (size0, size1) = panel["mean_kept_counts"], panel["mean_class_sizes"]
    r0, r1 = panel["risks_at_mean_threshold"]
    (m0, m1), (se0, se1) = panel["mean_risks"], panel["stderr_risks"]
    ax.text(0.02, 0.97,
            f"kept: class 0 {kept0 / size0:.0%}, class 1 {kept1 / size1:.0%} ({kept0:.0f} + {kept1:.0f} points)\n"
            rf"$\bar T$ = {panel['mean_threshold']:.3f}: $R_0(\bar T)$ = {_percent(r0)}, $R_1(\bar T)$ = {_percent(r1)}" "\n"
            f"per-dataset risks: {_percent(m0)} ± {_percent(se0)}, {_percent(m1)} ± {_percent(se1)}",
            transform=ax.transAxes, va="top", fontsize=8.5, bbox={"facecolor": "white", "alpha": 0.9, "lw": 0.5})
    ax.set_ylim(0.0, ax.get_ylim()[1] * 1.3)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("$x$")
    ax.set_ylabel("points per dataset per bin")


def population_panel_data(
    model: TwoGaussians, method: str, density: float, kept_counts: Sequence[float], edges: np.ndarray
) -> dict[str, Any]:
    """Risk of each threshold on the population a method leaves, and its local minima (where ERM can settle).

    SSP leaves holes of half-width M around the class means; random pruning inside classes leaves the mixture at
    the kept class proportions (here the mean kept counts), whose only local minimum is t* of that ratio.
    """
    t = np.linspace(edges[0], edges[-1], 1201)
    if method == "ssp":
        margin = ssp_population_margin(model, density)
        risk, minima = ssp_population_risk(model, density, t), ssp_population_minima(model, density)
        pruned = f"SSP's holes |x − μ_y| ≤ M = {margin:.3f}"
    else:
        ratio = float(kept_counts[0] / kept_counts[1])
        risk, minima = model.average_risk(t, ratio), np.atleast_1d(model.t_star(ratio))
        minima = minima[np.isfinite(minima)]
        pruned = rf"mixture at the kept ratio $\phi_0/\phi_1$ = {ratio:.3f}"
    at_minima = ssp_population_risk(model, density, minima) if method == "ssp" else model.average_risk(minima, ratio)
    return {"t": t, "risk": risk, "minima": minima, "risk_at_minima": at_minima, "pruned_population": pruned}


def nearest_minimum_counts(thresholds: np.ndarray, minima: np.ndarray) -> np.ndarray:
    """How many fitted thresholds lie nearer to each local minimum than to any other."""
    if not len(minima):
        return np.zeros(0, dtype=np.int64)
    nearest = np.abs(np.asarray(thresholds)[:, None] - np.asarray(minima)[None]).argmin(axis=1)
    return np.bincount(nearest, minlength=len(minima))


def draw_population_panel(ax: Axes, panel: dict[str, Any], reference: dict[str, float]) -> None:
    """The pruned population's risk against the threshold, its local minima, and the fitted ERM thresholds."""
    population = panel["population"]
    ax.plot(population["t"], population["risk"], color="black", lw=1.6, label="risk on the pruned population")
    ax.plot(population["minima"], population["risk_at_minima"], "o", color=MINIMUM_COLOR, ms=7,
            label="its local minima (t, risk, ERM fits nearest)")
    for t, risk, count in zip(population["minima"], population["risk_at_minima"], population["nearest_datasets"],
                              strict=True):
        ax.annotate(f"{t:+.2f}\n{_percent(risk)}\n{count}/{len(panel['thresholds'])} fits", (t, risk),
                    xytext=(0, -7), textcoords="offset points", ha="center", va="top", fontsize=7.5,
                    color=MINIMUM_COLOR, bbox={"facecolor": "white", "alpha": 0.85, "lw": 0, "pad": 1})
    ax.plot(panel["thresholds"], np.full(len(panel["thresholds"]), 0.04), "|", color="black", ms=12, mew=1.2,
            transform=ax.get_xaxis_transform())
    ax.axvline(panel["mean_threshold"], color="black", lw=2)
    ax.axvline(reference["t_star"], color=T_STAR_COLOR, ls="--", lw=1.3)
    ax.axvline(reference["t_hat"], color=T_HAT_COLOR, ls=":", lw=1.5)
    lowest = float(np.min(population["risk_at_minima"]))
    # Zoom on the minima: the risk climbs to 1 far out, which would flatten everything that matters.
    ax.set_ylim(max(0.0, lowest - 0.14), lowest + 0.3)
    ax.set_title(population["pruned_population"], fontsize=9)
    ax.set_xlabel("threshold $t$")
    ax.set_ylabel("population risk after pruning")
    ax.grid(alpha=0.3, lw=0.5)


def pruning_panels_figure(
    out: Path, settings: FigureSettings, name: str, panels: Sequence[tuple[str, float, str]], title: str
) -> list[Path]:
    """One column per (method, density, label): datasets pruned, ERM fitted (top); the pruned population's risk (bottom)."""
    rng = np.random.default_rng(settings.seed)
    model = PAPER_MODEL
    x, y = model.sample(settings.points, rng, batch=settings.datasets)
    edges = histogram_edges(model)
    reference = model_summary(model)
    data: dict[str, Any] = {"model": reference, "datasets": settings.datasets, "points": settings.points,
                            "seed": settings.seed, "panels": []}
    fig = Figure(figsize=(5.4 * len(panels), 8.4), layout="constrained")
    axes = fig.subplots(2, len(panels), sharex="col", height_ratios=(3.0, 1.7), squeeze=False)
    for (top, bottom), (method, density, label) in zip(axes.T, panels, strict=True):
        keep = prune(model, method, density, x, y, rng)
        panel = pruning_panel_data(model, x, y, keep, evaluate(model, x, y, keep), edges)
        population = population_panel_data(model, method, density, panel["mean_kept_counts"], edges)
        population["nearest_datasets"] = nearest_minimum_counts(panel["thresholds"], population["minima"])
        panel["population"] = population
        data["panels"].append({"method": method, "density": density, "label": label, **panel})
        draw_pruning_panel(top, panel, reference, f"{label}, d = {density:.0%}")
        draw_population_panel(bottom, panel, reference)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    extra_handles, extra_labels = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles + extra_handles, labels + extra_labels, loc="outside lower center", ncols=5, fontsize=8.5)
    fig.suptitle(
        f"{title} ({settings.datasets} datasets × {settings.points} points)\nclosed form: "
        rf"$R_0(t^*)$ = {_percent(reference['R0_t_star'])}, $R_1(t^*)$ = {_percent(reference['R1_t_star'])}, "
        rf"$R_0(\hat t) = R_1(\hat t)$ = {_percent(reference['R0_t_hat'])}" "\n"
        "bottom: the risk that ERM on the pruned data estimates, its local minima, and how many fits lie nearest each"
    )
    return _save(fig, out, name, data)


def pruning_methods_figure(out: Path, settings: FigureSettings) -> list[Path]:
    """Paper 003 Figure 3: random pruning with the optimal densities, SSP, and random pruning with SSP's ratios."""
    panels = [
        ("random_optimal", 0.5, r"Random, optimal densities ($d_0N_0/d_1N_1 = \sigma_0/\sigma_1$)"),
        ("ssp", 0.5, "SSP (supervised)"),
        ("random_ssp_ratios", 0.5, "Random with SSP's class ratios"),
    ]
    return pruning_panels_figure(out, settings, "fig3_pruning_methods", panels, "Figure 3: pruning and ERM")


def drop_figure(out: Path, settings: FigureSettings) -> list[Path]:
    """Paper 003 Figure 4(b): random pruning with DRoP quotas at d = 75% and 50%."""
    panels = [("drop", 0.75, "Random + DRoP"), ("drop", 0.5, "Random + DRoP")]
    return pruning_panels_figure(out, settings, "fig4b_drop", panels, "Figure 4(b): random pruning with DRoP")


def risk_ratio_rows(settings: FigureSettings) -> list[dict[str, float]]:
    """Random mixtures (sigma0 < sigma1 log-uniform, phi0 ~ U(0, 1), mu = (-1, 1)) with DRoP's exact and proxy ratios."""
    rng = np.random.default_rng(settings.seed)
    low, high = np.log10(SIGMA_RANGE)
    sigmas = np.sort(10.0 ** rng.uniform(low, high, size=(settings.models, 2)), axis=1)
    # Open interval: phi0 must lie strictly inside (0, 1).
    phis = rng.uniform(np.nextafter(0.0, 1.0), 1.0, size=settings.models)
    rows = []
    for (sigma0, sigma1), phi0 in tqdm(zip(sigmas, phis, strict=True), total=settings.models, desc="Figure 4(a) models",
                                       disable=not settings.progress, leave=False):
        model = TwoGaussians(mu0=PAPER_MODEL.mu0, mu1=PAPER_MODEL.mu1, sigma0=sigma0, sigma1=sigma1, phi0=phi0)
        threshold = float(model.t_star())
        r0, r1 = model.class_risks(threshold)
        rows.append({"sigma0": float(sigma0), "sigma1": float(sigma1), "phi0": float(phi0),
                     "separation": (model.mu1 - model.mu0) / float(sigma1), "t_star": threshold, "R0": float(r0),
                     "R1": float(r1), "optimal_density_ratio": model.optimal_density_ratio(),
                     "proxy_density_ratio": model.proxy_density_ratio()})
    return rows


def separation_curves() -> dict[str, Any]:
    """Equal priors, sigma1 = 1: the proxy ratio R0/R1 at t*(1) against sigma0/sigma1, one curve per mu1 - mu0."""
    ratios = np.logspace(-2.0, 0.0, 121)
    proxy = [[TwoGaussians(0.0, gap, float(r), 1.0).proxy_density_ratio() for r in ratios] for gap in SEPARATIONS]
    at_paper = [TwoGaussians(0.0, gap, PAPER_MODEL.sigma0, PAPER_MODEL.sigma1).proxy_density_ratio()
                for gap in SEPARATIONS]
    return {"separations": SEPARATIONS, "sigma_ratio": ratios, "proxy_density_ratio": proxy,
            "paper_sigma_ratio": PAPER_MODEL.sigma0 / PAPER_MODEL.sigma1, "proxy_at_paper_sigma_ratio": at_paper}


def risk_ratio_data(settings: FigureSettings) -> dict[str, Any]:
    """Numbers behind Figure 4(a): the random mixtures and the equal-prior curves per separation."""
    return {"mixtures": risk_ratio_rows(settings), "curves": separation_curves()}


def plot_risk_ratios(data: dict[str, Any]) -> Figure:
    """Left: proxy against exact density ratio over random mixtures, coloured by separation; right: equal-prior curves."""
    rows = data["mixtures"]
    optimal = np.array([row["optimal_density_ratio"] for row in rows])
    proxy = np.array([row["proxy_density_ratio"] for row in rows])
    separation = np.array([row["separation"] for row in rows])
    constant = ~np.isfinite([row["t_star"] for row in rows])
    low, high = RATIO_AXIS
    # Nearly separable mixtures give astronomically small ratios; the axes keep to the informative range.
    shown = ~constant & (proxy >= low) & (proxy <= high) & (optimal >= low) & (optimal <= high)
    fig = Figure(figsize=(13.5, 5.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    points = left.scatter(optimal[shown], proxy[shown], c=np.log10(separation[shown]), cmap="viridis", s=9,
                          alpha=0.8, edgecolors="none")
    fig.colorbar(points, ax=left, label=r"$\log_{10}$ separation $(\mu_1-\mu_0)/\sigma_1$")
    left.plot([low, high], [low, high], color="black", lw=1, ls="--", label="proxy = exact")
    left.set_xlim(low, high)
    left.set_ylim(low, high)
    left.set_xlabel(r"exact density ratio $d_0/d_1 = (\sigma_0/\sigma_1)(\phi_1/\phi_0)$")
    left.set_ylabel(r"proxy density ratio $d_0/d_1 = R_0/R_1$ at $t^*(\phi_0/\phi_1)$")
    left.set_title(
        f"{len(rows)} random mixtures, " r"$\mu$ = (−1, 1), "
        r"$\sigma_0<\sigma_1$ log-uniform in [$10^{-2}$, $10^2$], $\phi_0\sim U(0,1)$" "\n"
        f"not shown: {int(constant.sum())} with $t^*=\\pm\\infty$ (a constant rule is optimal), "
        f"{int((~constant & ~shown).sum())} outside the axes", fontsize=8.5)
    curves = data["curves"]
    for gap, values, color in zip(curves["separations"], curves["proxy_density_ratio"],
                                  ("tab:blue", "tab:orange", "tab:green", "tab:purple"), strict=True):
        right.plot(curves["sigma_ratio"], values, color=color, lw=1.8, label=rf"$\mu_1-\mu_0$ = {gap:g}")
    right.plot([1e-2, 1.0], [1e-2, 1.0], color="black", lw=1, ls="--", label=r"exact: $\sigma_0/\sigma_1$")
    paper = curves["paper_sigma_ratio"]
    right.plot([paper] * len(curves["separations"]), curves["proxy_at_paper_sigma_ratio"], "o", color="black", ms=4)
    right.annotate(
        rf"at $\sigma_0/\sigma_1$ = {paper:g}:" "\nproxy " + ", ".join(f"{v:.2f}" for v in curves["proxy_at_paper_sigma_ratio"])
        + "\n" + r"for $\mu_1-\mu_0$ = " + ", ".join(f"{g:g}" for g in curves["separations"]) + f"\n(exact {paper:g})",
        (paper, curves["proxy_at_paper_sigma_ratio"][0]), xytext=(-165, -75), textcoords="offset points", fontsize=8.5,
        arrowprops={"arrowstyle": "->", "lw": 0.8}, bbox={"facecolor": "white", "alpha": 0.9, "lw": 0.5})
    right.set_xlim(1e-2, 1.0)
    right.set_ylim(2e-3, 1.0)
    right.set_xlabel(r"exact density ratio $\sigma_0/\sigma_1$ (equal priors, $\sigma_1$ = 1)")
    right.set_ylabel(r"proxy density ratio $R_0/R_1$ at $t^*(1)$")
    right.set_title("The proxy depends on the separation (paper 003's caption says it does not)", fontsize=9)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both", lw=0.5)
        ax.legend(loc="upper left", fontsize=8.5)
    with np.errstate(divide="ignore"):
        further = np.abs(np.log(proxy[~constant])) >= np.abs(np.log(optimal[~constant]))
    fig.suptitle("Figure 4(a): DRoP's proxy class-density ratio against the exact one; the proxy lies further from 1 "
                 f"(over-corrects) on {int(further.sum())} of the {int((~constant).sum())} mixtures with finite $t^*$")
    return fig


def risk_ratio_figure(out: Path, settings: FigureSettings) -> list[Path]:
    """Paper 003 Figure 4(a), fixed: proxy R0/R1 at t* against the exact density ratio, and its separation dependence."""
    data = risk_ratio_data(settings)
    return _save(plot_risk_ratios(data), out, "fig4a_risk_ratios", data)


def exact_exponent_data() -> dict[str, Any]:
    """beta* against mu1 - mu0 (sigma1 = 1, equal priors) for several sigma0/sigma1, with the paper's setting."""
    separations = np.linspace(0.05, 6.0, 120)
    exponents = [[exact_exponent(float(gap), ratio) for gap in separations] for ratio in EXPONENT_SIGMA_RATIOS]
    paper_gap = (PAPER_MODEL.mu1 - PAPER_MODEL.mu0) / PAPER_MODEL.sigma1
    paper_ratio = PAPER_MODEL.sigma0 / PAPER_MODEL.sigma1
    return {"separation": separations, "sigma_ratios": EXPONENT_SIGMA_RATIOS, "exact_exponent": exponents,
            "paper": {"separation": paper_gap, "sigma_ratio": paper_ratio,
                      "exact_exponent": exact_exponent(paper_gap, paper_ratio)}}


def plot_exact_exponent(data: dict[str, Any]) -> Figure:
    """beta* curves against the separation, one per sigma0/sigma1, with beta = 1 (Algorithm 1) for reference."""
    fig = Figure(figsize=(7.6, 5.4), layout="constrained")
    ax = fig.subplots()
    colors = colormaps["plasma"](np.linspace(0.0, 0.85, len(data["sigma_ratios"])))
    for ratio, values, color in zip(data["sigma_ratios"], data["exact_exponent"], colors, strict=True):
        label = rf"$\sigma_0/\sigma_1$ = {ratio:g}" + (" (limit)" if ratio == 1.0 else "")
        ax.plot(data["separation"], values, color=color, lw=2.2 if ratio == 1.0 else 1.6,
                ls="--" if ratio == 1.0 else "-", label=label)
    paper = data["paper"]
    ax.plot([paper["separation"]], [paper["exact_exponent"]], "o", color="black",
            label=rf"paper 003's mixture: $\beta^*$ = {paper['exact_exponent']:.3f}")
    ax.axhline(1.0, color="0.4", lw=1, ls=":", label=r"$\beta$ = 1: Algorithm 1 (error-proportional quotas)")
    ax.set_xlim(0.0, float(np.max(data["separation"])))
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel(r"class separation $\mu_1-\mu_0$ (in units of $\sigma_1$)")
    ax.set_ylabel(r"$\beta^*$: quotas $\propto$ error$^{\beta^*}$ give exactly $d_0/d_1 = \sigma_0/\sigma_1$")
    ax.set_title(r"The quota exponent that makes DRoP's proxy exact (equal priors): $\beta^*$ = "
                 r"$\log(\sigma_0/\sigma_1)\,/\,\log(R_0/R_1)$ at $t^*(1)$", fontsize=9.5)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(loc="lower right", fontsize=8.5)
    return fig


def exact_exponent_figure(out: Path, settings: FigureSettings) -> list[Path]:
    """beta* against the class separation for several sigma0/sigma1 (closed form; settings unused)."""
    data = exact_exponent_data()
    return _save(plot_exact_exponent(data), out, "exact_exponent", data)


SELECTION_BETAS = tuple(np.round(np.arange(0.1, 1.51, 0.1), 2))
SELECTION_DENSITY = 0.5  # below (1 + s0/s1) / 2, so the exact quotas never fill a class
SELECTION_MIXTURES = 30


def selected_exponent_data(settings: FigureSettings) -> dict[str, Any]:
    """The validation rule on Monte Carlo datasets of random equal-prior mixtures: chosen beta against beta*."""
    rng = np.random.default_rng(settings.seed)
    count = min(settings.models, SELECTION_MIXTURES)
    separations = rng.uniform(0.75, 3.0, count)
    ratios = 10.0 ** rng.uniform(np.log10(0.25), np.log10(0.75), count)
    # Sizes scale with the settings: 20,000 points x 50 datasets at the defaults, where the rule's finite-sample
    # bias (it chooses below beta* on small datasets) has mostly gone.
    points, datasets = 50 * settings.points, 5 * settings.datasets
    rows = []
    for gap, ratio in tqdm(zip(separations, ratios, strict=True), total=count, desc="selected beta",
                           disable=not settings.progress, leave=False):
        model = TwoGaussians(mu0=0.0, mu1=float(gap), sigma0=float(ratio), sigma1=1.0)
        check = simulate_selection(model, SELECTION_DENSITY, SELECTION_BETAS, points, datasets, rng,
                                   exact_exponent(float(gap), float(ratio)))
        rows.append({"separation": float(gap), "sigma_ratio": float(ratio), "exact_exponent": check.exact,
                     "chosen_exponent": check.chosen, "worst_accuracy": check.worst_accuracy})
    return {"betas": SELECTION_BETAS, "density": SELECTION_DENSITY, "points": points, "datasets": datasets,
            "mixtures": rows}


def plot_selected_exponent(data: dict[str, Any]) -> Figure:
    """Chosen beta against beta* over random mixtures, coloured by separation, with the identity and the grid step."""
    rows = data["mixtures"]
    exact = np.array([row["exact_exponent"] for row in rows])
    chosen = np.array([row["chosen_exponent"] for row in rows])
    fig = Figure(figsize=(7.0, 5.8), layout="constrained")
    ax = fig.subplots()
    points = ax.scatter(exact, chosen, c=[row["separation"] for row in rows], cmap="viridis", s=28)
    fig.colorbar(points, ax=ax, label=r"separation $(\mu_1-\mu_0)/\sigma_1$")
    step = float(np.diff(data["betas"]).min())
    ax.plot([0, 1.5], [0, 1.5], color="black", lw=1, ls="--", label=r"chosen = $\beta^*$")
    ax.fill_between([0, 1.5], [-step, 1.5 - step], [step, 1.5 + step], color="0.5", alpha=0.15,
                    label=f"± one grid step ({step:g})")
    ax.axhline(1.0, color="0.4", lw=1, ls=":", label=r"$\beta$ = 1 (Algorithm 1)")
    ax.set_xlim(0.0, 1.2)
    ax.set_ylim(0.0, 1.55)
    ax.set_xlabel(r"$\beta^*$ (closed form, `exact_exponent`)")
    ax.set_ylabel(r"$\beta$ chosen by validation worst-class accuracy")
    ax.set_title(f"Quota exponent chosen on validation, {len(rows)} random mixtures (d = {data['density']:g}, "
                 f"{data['points']} points x {data['datasets']} datasets);\nmean |chosen - $\\beta^*$| = "
                 f"{np.mean(np.abs(chosen - exact)):.3f}", fontsize=9)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(loc="upper left", fontsize=8.5)
    return fig


def selected_exponent_figure(out: Path, settings: FigureSettings) -> list[Path]:
    """The validation rule of `--quota-exponent auto` on two Gaussians: chosen beta against beta* (Monte Carlo)."""
    data = selected_exponent_data(settings)
    return _save(plot_selected_exponent(data), out, "selected_exponent", data)


FIGURES: dict[str, Callable[[Path, FigureSettings], list[Path]]] = {
    "theory": theory_figure,
    "fig3_pruning_methods": pruning_methods_figure,
    "fig4a_risk_ratios": risk_ratio_figure,
    "fig4b_drop": drop_figure,
    "exact_exponent": exact_exponent_figure,
    "selected_exponent": selected_exponent_figure,
}


def make_figures(out: Path, settings: FigureSettings, names: Iterable[str] | None = None) -> list[Path]:
    """Write the named figures (all by default) into `out`, creating it; returns the paths written."""
    names = list(FIGURES) if names is None else list(names)
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        raise ValueError(f"unknown figure names {unknown}: choose from {list(FIGURES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in tqdm(names, desc="figures", disable=not settings.progress):
        written += FIGURES[name](out, settings)
    return written
