"""A mixture of two 1-D Gaussians with the threshold rule 1(x > t): class risks, t*, t-hat, DRoP's ratios, sampling.

DRoP's class-density ratio d0/d1, exact and practical. Pruning class k to density d_k turns the priors into
phi0 d0 : phi1 d1, and ERM aims at t*(phi0 d0 / (phi1 d1)).
- Exact: t*(s0/s1) = t_hat, so d0/d1 = (s0/s1)(phi1/phi0) (`optimal_density_ratio`); by counts, n0/n1 = s0/s1.
- Practical (paper 003's proxy): densities proportional to the class errors of the average-optimal rule on the
  unpruned data, d0/d1 = R0/R1 at t*(phi0/phi1) (`proxy_density_ratio`). It depends on the separation
  (mu1 - mu0)/s1, not only on s0/s1 and the priors (paper 003's Figure 4(a) caption says it does not): at
  s = (0.5, 1), phi0 = phi1 it is 0.22, 0.31, 0.40, 0.46 for mu1 - mu0 = 0.5, 1, 2, 4, against the exact 0.5.
- Tempered (`toy.quotas`, exponent beta): d0/d1 = (R0/R1)^beta, exact for beta* = log(exact ratio)/log(R0/R1)
  (`exact_exponent`, equal priors; with unequal priors the same formula holds with the density ratio above, or
  with s0/s1 for count allocation, where n0/n1 = (R0/R1)^beta).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import erfcx, log_ndtr, ndtr

Scalar = float | np.ndarray


def _validated_prior_ratio(prior_ratio: ArrayLike) -> np.ndarray:
    ratio = np.asarray(prior_ratio, dtype=float)
    if not np.all(np.isfinite(ratio) & (ratio > 0)):
        raise ValueError(f"prior_ratio must be finite and > 0 (it is phi0/phi1), got {prior_ratio!r}")
    return ratio


MIN_RELATIVE_SIGMA = 1e-10  # the smallest sigma, relative to max(|mu|, sigma), whose risks float64 computes


@dataclass(frozen=True)
class TwoGaussians:
    """x | y ~ N(mu_y, sigma_y^2) with P(y = 0) = phi0; classify by 1(x > t), t in R ∪ {±inf}."""

    mu0: float
    mu1: float
    sigma0: float
    sigma1: float
    phi0: float = 0.5

    def __post_init__(self) -> None:
        for name in ("mu0", "mu1", "sigma0", "sigma1", "phi0"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)!r}")
        for name in ("sigma0", "sigma1"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not self.mu0 < self.mu1:
            raise ValueError(f"mu0 must be < mu1 (class 1 lies to the right), got mu0={self.mu0}, mu1={self.mu1}")
        if not 0 < self.phi0 < 1:
            raise ValueError(f"phi0 must lie strictly between 0 and 1, got {self.phi0!r}")
        # Thresholds sit a few sigma from a mean: a sigma below ~1e-10 of the problem's scale puts them within float64
        # rounding of the mean itself (sigma0 = 1e-18 at mu0 = -1 gave t* = mu0 and R0 = 0.5 instead of ~0).
        scale = max(abs(self.mu0), abs(self.mu1), self.sigma0, self.sigma1)
        for name in ("sigma0", "sigma1"):
            if getattr(self, name) < MIN_RELATIVE_SIGMA * scale:
                raise ValueError(f"{name}={getattr(self, name)!r} is below {MIN_RELATIVE_SIGMA:g} of the problem's scale "
                                 f"({scale:g}): float64 cannot place a threshold that close to a mean; rescale x")

    @property
    def phi1(self) -> float:
        """Prior of class 1."""
        return 1.0 - self.phi0

    def class_risks(self, t: ArrayLike) -> tuple[Scalar, Scalar]:
        """(R0, R1) = (P(x > t | y=0), P(x <= t | y=1)), elementwise over t (±inf allowed)."""
        t = np.asarray(t, dtype=float)
        return ndtr((self.mu0 - t) / self.sigma0), ndtr((t - self.mu1) / self.sigma1)

    def average_risk(self, t: ArrayLike, prior_ratio: ArrayLike | None = None) -> Scalar:
        """phi0 R0(t) + phi1 R1(t), with priors from prior_ratio = phi0/phi1 if given (broadcast with t)."""
        r0, r1 = self.class_risks(t)
        if prior_ratio is None:
            return self.phi0 * r0 + self.phi1 * r1
        ratio = _validated_prior_ratio(prior_ratio)
        return ratio / (1.0 + ratio) * r0 + 1.0 / (1.0 + ratio) * r1

    def worst_class_risk(self, t: ArrayLike) -> Scalar:
        """max(R0(t), R1(t))."""
        return np.maximum(*self.class_risks(t))

    def t_star(self, prior_ratio: ArrayLike | None = None) -> Scalar:
        """Global minimiser over R ∪ {±inf} of the average risk with phi0/phi1 = prior_ratio (default: own priors).

        The stationary points are the roots of phi0 N(t; mu0, s0) = phi1 N(t; mu1, s1), a quadratic
        a t^2 - 2 b t + c = 0 (linear when s0 = s1); with s0 != s1 one root is a local maximum and the
        risk may be lowest at t = -inf (s0 < s1) or +inf (s0 > s1). So every root and both infinities
        are candidates and the one with the lowest risk wins (on an exact tie, the interior root).
        Scalar in, float out; array in, array out.
        """
        ratio = np.asarray(self.phi0 / self.phi1 if prior_ratio is None else _validated_prior_ratio(prior_ratio))
        v0, v1, m0, m1 = self.sigma0**2, self.sigma1**2, self.mu0, self.mu1
        a = v1 - v0
        b = v1 * m0 - v0 * m1
        log_ratio = np.log(ratio) + np.log(self.sigma1 / self.sigma0)
        c = v1 * m0**2 - v0 * m1**2 - 2.0 * v0 * v1 * log_ratio
        with np.errstate(invalid="ignore", divide="ignore"):
            # b^2 - a c factorises as s0^2 s1^2 [(m0-m1)^2 + 2 a log_ratio]; negative means no crossing.
            root_disc = self.sigma0 * self.sigma1 * np.sqrt((m0 - m1) ** 2 + 2.0 * a * log_ratio)
            # Cancellation-free quadratic formula; a = 0 (equal sigmas) gives the roots inf and c / (2 b).
            q = b + np.copysign(root_disc, b)
            candidates = np.stack(np.broadcast_arrays(c / q, q / a, -np.inf, np.inf), axis=-1)
        risks = self.average_risk(candidates, ratio[..., None])
        best = np.argmin(np.where(np.isnan(risks), np.inf, risks), axis=-1)
        t = np.take_along_axis(candidates, best[..., None], axis=-1)[..., 0]
        return float(t) if t.ndim == 0 else t

    def t_hat(self) -> float:
        """(mu0 s1 + mu1 s0) / (s0 + s1): the threshold with R0 = R1, which minimises the worst-class risk."""
        return (self.mu0 * self.sigma1 + self.mu1 * self.sigma0) / (self.sigma0 + self.sigma1)

    def robust_prior_ratio(self) -> float:
        """s0/s1: the prior ratio whose Bayes-optimal threshold is t_hat.

        t_star(s0/s1) == t_hat exactly when t_hat beats the constant rules, i.e. when
        R0(t_hat) < min(s0, s1) / (s0 + s1); for badly overlapping classes the average-risk optimum
        at that ratio is the constant rule ±inf instead.
        """
        return self.sigma0 / self.sigma1

    def optimal_density_ratio(self) -> float:
        """d0/d1 of exact DRoP, (s0/s1)(phi1/phi0): the pruned prior ratio d0 phi0 / (d1 phi1) becomes s0/s1."""
        return self.sigma0 / self.sigma1 * self.phi1 / self.phi0

    def proxy_density_ratio(self) -> float:
        """d0/d1 of practical DRoP: R0/R1 at t*(phi0/phi1), the error ratio of the average-optimal threshold."""
        with np.errstate(over="ignore"):  # a class with (nearly) no error gives an infinite ratio
            return float(np.exp(_log_risk_ratio(self, self.t_star())))

    def sample(self, n: int, rng: np.random.Generator, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw (x, y) of shape (n,) or (batch, n): y = 1 with prob. phi1 (int64), x | y ~ N(mu_y, s_y^2)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if batch is not None and (isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1):
            raise ValueError(f"batch must be None or a positive integer, got {batch!r}")
        shape = (n,) if batch is None else (batch, n)
        y = (rng.random(shape) < self.phi1).astype(np.int64)
        mean = np.where(y == 1, self.mu1, self.mu0)
        scale = np.where(y == 1, self.sigma1, self.sigma0)
        return mean + scale * rng.standard_normal(shape), y


def _log_risk_ratio(model: TwoGaussians, t: float) -> float:
    """log(R0(t) / R1(t)) from log-risks, so that tiny risks of well separated classes do not underflow."""
    return float(log_ndtr((model.mu0 - t) / model.sigma0) - log_ndtr((t - model.mu1) / model.sigma1))


def exact_exponent(separation: float, sigma_ratio: float) -> float:
    """beta* with (R0/R1 at t*(1))^beta* = s0/s1: the quota exponent that makes practical DRoP exact (phi0 = phi1).

    separation = (mu1 - mu0) / s1 and sigma_ratio = s0/s1 (the risks do not change when x is shifted or scaled).
    At sigma_ratio = 1 both logarithms vanish; the limit s0/s1 -> 1 is x Phi(-x) / phi(x) with x = separation / 2
    (d log(R0/R1) / d log(s0/s1) = 2 phi(x) / (separation Phi(-x)) there, from the implicit derivative of t*).
    """
    for name, value in (("separation", separation), ("sigma_ratio", sigma_ratio)):
        if not (np.ndim(value) == 0 and np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if sigma_ratio == 1.0:
        half = 0.5 * float(separation)
        return float(half * np.sqrt(np.pi / 2.0) * erfcx(half / np.sqrt(2.0)))  # erfcx: Mills ratio without underflow
    model = TwoGaussians(mu0=0.0, mu1=float(separation), sigma0=float(sigma_ratio), sigma1=1.0)
    return float(np.log(sigma_ratio) / _log_risk_ratio(model, model.t_star()))
