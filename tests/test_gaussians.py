"""Tests for toy.gaussians: class risks, the global average-risk minimiser t*, t-hat, DRoP's ratios and beta*, sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from toy.gaussians import TwoGaussians, exact_exponent
from toy.quotas import drop_densities

PAPER = TwoGaussians(mu0=-1.0, mu1=1.0, sigma0=0.5, sigma1=1.0)


@st.composite
def models(draw: st.DrawFn) -> TwoGaussians:
    mu0 = draw(st.floats(-5, 5))
    gap = draw(st.floats(0.05, 5))
    sigma0 = draw(st.floats(0.05, 5))
    sigma1 = draw(st.one_of(st.just(sigma0), st.floats(0.05, 5)))
    phi0 = draw(st.floats(0.01, 0.99))
    return TwoGaussians(mu0, mu0 + gap, sigma0, sigma1, phi0)


log_prior_ratios = st.floats(-25, 25)


def _grid(model: TwoGaussians) -> np.ndarray:
    """Dense near the means, geometrically spaced far out (extreme priors push t* far away)."""
    centre = 0.5 * (model.mu0 + model.mu1)
    width = 12 * max(model.sigma0, model.sigma1) + (model.mu1 - model.mu0)
    far = np.geomspace(1e-3, 1e7, 4001)
    return np.concatenate([np.linspace(centre - width, centre + width, 40001), centre - far, centre + far])


def test_paper_reference_values() -> None:
    r0, r1 = PAPER.class_risks(PAPER.t_star(1.0))
    assert r0 == pytest.approx(0.048, abs=5e-4)
    assert r1 == pytest.approx(0.121, abs=5e-4)
    h0, h1 = PAPER.class_risks(PAPER.t_hat())
    assert h0 == pytest.approx(0.091, abs=5e-4)
    assert h1 == pytest.approx(h0, rel=1e-12)
    assert PAPER.t_star() == PAPER.t_star(1.0)
    assert PAPER.t_star(PAPER.robust_prior_ratio()) == pytest.approx(PAPER.t_hat(), rel=1e-12)


def test_class_risks_at_infinite_thresholds() -> None:
    r0, r1 = PAPER.class_risks(np.array([-np.inf, np.inf]))
    np.testing.assert_array_equal(r0, [1.0, 0.0])
    np.testing.assert_array_equal(r1, [0.0, 1.0])
    model = TwoGaussians(0.0, 1.0, 1.0, 2.0, phi0=0.3)
    np.testing.assert_allclose(model.average_risk([-np.inf, np.inf]), [0.3, 0.7])


@settings(max_examples=150, deadline=None)
@given(model=models(), log_ratio=log_prior_ratios)
def test_t_star_is_the_global_minimiser(model: TwoGaussians, log_ratio: float) -> None:
    ratio = float(np.exp(log_ratio))
    t = model.t_star(ratio)
    best = model.average_risk(t, ratio)
    grid_risk = model.average_risk(_grid(model), ratio)
    assert best <= grid_risk.min() * (1 + 1e-9) + 1e-300  # risks can be subnormal: relative error means nothing there
    assert best <= model.average_risk(np.array([-np.inf, np.inf]), ratio).min() * (1 + 1e-12)
    if np.isfinite(t):  # an interior optimum is a stationary point: phi0 N0(t) = phi1 N1(t)
        log_n0 = -0.5 * ((t - model.mu0) / model.sigma0) ** 2 - np.log(model.sigma0)
        log_n1 = -0.5 * ((t - model.mu1) / model.sigma1) ** 2 - np.log(model.sigma1)
        assert np.log(ratio) + log_n0 - log_n1 == pytest.approx(0.0, abs=1e-6 * (1 + abs(log_n0)))


@settings(max_examples=60, deadline=None)
@given(model=models(), log_ratios=st.lists(log_prior_ratios, min_size=1, max_size=6))
def test_t_star_is_vectorised_and_mirror_symmetric(model: TwoGaussians, log_ratios: list[float]) -> None:
    ratios = np.exp(np.array(log_ratios)).reshape(-1, 1)
    t = model.t_star(ratios)
    assert t.shape == ratios.shape
    np.testing.assert_array_equal(t[:, 0], [model.t_star(float(r)) for r in ratios[:, 0]])
    # x -> -x swaps the classes, so it swaps sigmas and inverts the prior ratio.
    mirror = TwoGaussians(-model.mu1, -model.mu0, model.sigma1, model.sigma0, model.phi1)
    np.testing.assert_allclose(-mirror.t_star(1 / ratios), t, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    ("model", "ratio", "expected"),
    [
        (TwoGaussians(-0.5, 0.5, 0.5, 1.0), 0.1, -np.inf),  # negative discriminant, s0 < s1
        (TwoGaussians(-0.5, 0.5, 1.0, 0.5), 10.0, np.inf),  # negative discriminant, s0 > s1
        (TwoGaussians(0.0, 0.1, 0.5, 1.0), 0.5, -np.inf),  # crossings exist but predicting 1 always wins
        (TwoGaussians(0.0, 0.1, 1.0, 0.5), 2.0, np.inf),
        (TwoGaussians(-1.0, 1.0, 1.0, 1.0), np.e, 0.5),  # equal sigmas: (mu0+mu1)/2 + s^2 log(ratio)/(mu1-mu0)
        (TwoGaussians(-1.0, 1.0, 1.0, 1.0 + 1e-12), np.e, 0.5),  # nearly equal sigmas stay stable
    ],
)
def test_t_star_special_cases(model: TwoGaussians, ratio: float, expected: float) -> None:
    assert model.t_star(ratio) == pytest.approx(expected, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(model=models())
def test_t_hat_equalises_and_minimises_worst_class_risk(model: TwoGaussians) -> None:
    t_hat = model.t_hat()
    r0, r1 = model.class_risks(t_hat)
    assert r0 == pytest.approx(r1, rel=1e-9, abs=1e-300)
    assert model.worst_class_risk(t_hat) <= model.worst_class_risk(_grid(model)).min() * (1 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(model=models())
def test_robust_prior_ratio_makes_t_star_equal_t_hat(model: TwoGaussians) -> None:
    s0, s1 = model.sigma0, model.sigma1
    assume(s0 != s1)
    beats_constant_rules = model.class_risks(model.t_hat())[0] < min(s0, s1) / (s0 + s1)
    t = model.t_star(model.robust_prior_ratio())
    if beats_constant_rules:
        assert t == pytest.approx(model.t_hat(), rel=1e-7, abs=1e-9)
    else:
        assert t == (-np.inf if s0 < s1 else np.inf)


def test_average_risk_prior_ratio_override() -> None:
    model = TwoGaussians(0.0, 2.0, 1.0, 0.7, phi0=0.2)
    t = np.linspace(-3, 5, 11)
    np.testing.assert_allclose(model.average_risk(t, 0.25), model.average_risk(t), rtol=1e-14)
    np.testing.assert_allclose(model.worst_class_risk(t), np.maximum(*model.class_risks(t)))


def test_sample_shapes_distribution_and_seed() -> None:
    model = TwoGaussians(-1.0, 2.0, 0.5, 1.5, phi0=0.3)
    x, y = model.sample(50_000, np.random.default_rng(1))
    assert x.shape == y.shape == (50_000,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1}
    assert y.mean() == pytest.approx(0.7, abs=0.01)
    assert x[y == 0].mean() == pytest.approx(-1.0, abs=0.02) and x[y == 0].std() == pytest.approx(0.5, abs=0.02)
    assert x[y == 1].mean() == pytest.approx(2.0, abs=0.03) and x[y == 1].std() == pytest.approx(1.5, abs=0.03)
    xb, yb = model.sample(7, np.random.default_rng(3), batch=4)
    assert xb.shape == yb.shape == (4, 7)
    xb2, yb2 = model.sample(7, np.random.default_rng(3), batch=4)
    np.testing.assert_array_equal(xb, xb2)
    np.testing.assert_array_equal(yb, yb2)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"sigma0": 0.0}, "sigma0"),
        ({"sigma1": -1.0}, "sigma1"),
        ({"mu0": 1.0}, "mu0"),
        ({"phi0": 1.0}, "phi0"),
        ({"phi0": 0.0}, "phi0"),
        ({"mu1": float("nan")}, "mu1"),
        ({"sigma0": 1e-17}, "sigma0"),  # t* would round to mu0 and R0 read 0.5 instead of ~0
        ({"sigma1": 1e-12, "mu1": 50.0}, "sigma1"),
    ],
)
def test_invalid_parameters_raise(kwargs: dict[str, float], name: str) -> None:
    params = {"mu0": -1.0, "mu1": 1.0, "sigma0": 0.5, "sigma1": 1.0} | kwargs
    with pytest.raises(ValueError, match=name):
        TwoGaussians(**params)


def test_tiny_but_representable_sigma_still_gives_risks() -> None:
    model = TwoGaussians(-1.0, 1.0, 1e-9, 1.0)  # just above the bound: t* sits ~1e-8 right of mu0
    r0, r1 = model.class_risks(model.t_star())
    assert r0 < 1e-6 and r1 == pytest.approx(0.02275, abs=1e-4)


def test_invalid_arguments_raise() -> None:
    rng = np.random.default_rng(0)
    for ratio in (0.0, -1.0, np.inf, [1.0, np.nan]):
        with pytest.raises(ValueError, match="prior_ratio"):
            PAPER.t_star(ratio)
    with pytest.raises(ValueError, match="prior_ratio"):
        PAPER.average_risk(0.0, prior_ratio=-2.0)
    with pytest.raises(ValueError, match="n must"):
        PAPER.sample(0, rng)
    with pytest.raises(ValueError, match="batch"):
        PAPER.sample(5, rng, batch=0)


separations = st.floats(0.05, 6.0)
sigma_ratios = st.floats(0.05, 20.0).filter(lambda r: abs(np.log(r)) > 1e-3)


def test_proxy_ratio_depends_on_the_separation() -> None:
    """Paper 003's Figure 4(a) caption says the proxy does not depend on mu0, mu1; at s = (0.5, 1) it does."""
    proxies = [TwoGaussians(0.0, gap, 0.5, 1.0).proxy_density_ratio() for gap in (0.5, 1.0, 2.0, 4.0)]
    np.testing.assert_allclose(proxies, [0.2217, 0.3070, 0.4006, 0.4625], atol=5e-5)
    assert PAPER.proxy_density_ratio() == pytest.approx(0.04847 / 0.12099, rel=1e-3)  # 4.8 % / 12.1 %
    assert PAPER.optimal_density_ratio() == 0.5


@settings(max_examples=100, deadline=None)
@given(model=models())
def test_optimal_density_ratio_makes_the_pruned_priors_robust(model: TwoGaussians) -> None:
    pruned_prior_ratio = model.phi0 / model.phi1 * model.optimal_density_ratio()
    assert pruned_prior_ratio == pytest.approx(model.robust_prior_ratio(), rel=1e-12)
    r0, r1 = model.class_risks(model.t_star())
    if r1 > 1e-300:
        assert model.proxy_density_ratio() == pytest.approx(r0 / r1, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(separation=separations, sigma_ratio=sigma_ratios)
def test_exact_exponent_makes_the_proxy_exact(separation: float, sigma_ratio: float) -> None:
    model = TwoGaussians(0.0, separation, sigma_ratio, 1.0)
    beta = exact_exponent(separation, sigma_ratio)
    assert model.proxy_density_ratio() ** beta == pytest.approx(sigma_ratio, rel=1e-9)
    # Equal class sizes: pruning to d0/d1 = proxy^beta* makes the prior ratio s0/s1, so ERM aims at t*(s0/s1),
    # which is t_hat wherever t_hat beats the constant rules (see test_robust_prior_ratio_makes_t_star_equal_t_hat).
    aimed = model.t_star(model.proxy_density_ratio() ** beta)
    assert aimed == pytest.approx(model.t_star(model.robust_prior_ratio()), rel=1e-7, abs=1e-9)
    if model.class_risks(model.t_hat())[0] < min(sigma_ratio, 1.0) / (sigma_ratio + 1.0):
        assert aimed == pytest.approx(model.t_hat(), rel=1e-7, abs=1e-9)
    # Shifting and scaling x changes nothing: beta* is a function of the separation in units of s1 and of s0/s1.
    scaled = TwoGaussians(-3.0, -3.0 + 2.5 * separation, 2.5 * sigma_ratio, 2.5)
    assert scaled.proxy_density_ratio() == pytest.approx(model.proxy_density_ratio(), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(separation=separations, sigma_ratio=sigma_ratios)
def test_the_allocator_with_exact_exponent_prunes_to_the_exact_ratio(separation: float, sigma_ratio: float) -> None:
    model = TwoGaussians(0.0, separation, sigma_ratio, 1.0)
    risks = np.array(model.class_risks(model.t_star()))
    # At d = 0.2 neither class saturates for the ratios drawn (max d_k = 0.4 / (1 + min ratio) < 1).
    d0, d1 = drop_densities(0.2, [1000, 1000], 1.0 - risks, exponent=exact_exponent(separation, sigma_ratio))
    # Recalls carry an error e only to about 1e-16 absolutely (1 - (1 - e) != e), so tiny risks cost precision.
    assert d0 / d1 == pytest.approx(sigma_ratio, rel=max(1e-9, 1e-14 / risks.min()))


@pytest.mark.parametrize("separation", [0.1, 0.5, 2.0, 4.0, 10.0])
def test_exact_exponent_is_continuous_at_equal_sigmas(separation: float) -> None:
    limit = exact_exponent(separation, 1.0)
    for ratio in (1.0 - 1e-5, 1.0 + 1e-5):
        assert exact_exponent(separation, ratio) == pytest.approx(limit, rel=1e-4)
    half = separation / 2.0  # the limit in closed form, Mills' ratio written with the normal cdf and pdf
    assert limit == pytest.approx(half * ndtr(-half) / np.exp(-0.5 * half**2) * np.sqrt(2.0 * np.pi), rel=1e-12)


def test_exact_exponent_reference_values() -> None:
    """beta* < 1 at every setting here: the proxy over-corrects, and tempering it down makes it exact."""
    assert [round(exact_exponent(gap, 0.5), 3) for gap in (0.5, 1.0, 2.0, 4.0)] == [0.46, 0.587, 0.758, 0.899]
    assert [round(exact_exponent(gap, 1.0), 3) for gap in (0.5, 1.0, 2.0, 4.0)] == [0.259, 0.438, 0.656, 0.843]
    assert exact_exponent(60.0, 0.5) == pytest.approx(1.0, abs=0.01)  # well separated: the proxy is nearly exact


@pytest.mark.parametrize(
    ("separation", "sigma_ratio", "name"),
    [(0.0, 0.5, "separation"), (-1.0, 0.5, "separation"), (np.inf, 0.5, "separation"), (1.0, 0.0, "sigma_ratio"),
     (1.0, np.nan, "sigma_ratio"), (1.0, [0.5, 2.0], "sigma_ratio")],
)
def test_exact_exponent_rejects_bad_arguments(separation: float, sigma_ratio: float, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        exact_exponent(separation, sigma_ratio)
