"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader, Hardie & Lee 2005b), fitted by maximum
likelihood with SciPy: the interpretable baseline of the return prediction and the fallback of a
clinic too small to train on.

Why not a library: docs/decisions.md, "Return prediction" (PyMC-Marketing measured here: a 790 MB
install; lifetimes and btyd are unmaintained since 2020/2022). The likelihoods are the published closed
forms, vectorised over persons; `tests/test_predict.py` checks that the fit recovers the parameters
purchases were simulated with.

Inputs per person: x = repeat transactions (episodes of care after the first), t_x = time of the last
one since the first visit, T = time from the first visit to the cutoff, all in the same unit (weeks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special


@dataclass(frozen=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float

    # -- fitting ------------------------------------------------------------------------------------

    @staticmethod
    def log_likelihood(params, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = params
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x),
                          -np.inf)
        return a1 + a2 + np.logaddexp(a3, a4)

    @classmethod
    def fit(cls, x, t_x, T) -> BGNBD:
        """Maximum likelihood over log-parameters (Nelder-Mead then L-BFGS polish). Raises ValueError when
        the data cannot identify the model (no repeat transactions at all)."""
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        if x.size < 2 or not (x > 0).any():
            raise ValueError("BG/NBD needs persons with repeat visits")
        # sufficient statistics: persons with equal (x, t_x, T) add the same term
        keys, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
        xs, txs, Ts = keys[:, 0], keys[:, 1], keys[:, 2]

        def nll(log_params):
            params = np.exp(np.clip(log_params, -20, 20))
            value = -(counts * cls.log_likelihood(params, xs, txs, Ts)).sum()
            return value if np.isfinite(value) else 1e300

        # L-BFGS (about 200 evaluations) finds the optimum's neighbourhood; a short Nelder-Mead polishes it
        # along the flat ridge of (a, b) that BG/NBD often has. Nelder-Mead from the start took ~10,000
        # evaluations of ~30k distinct persons (20 s per fit) for the same likelihood within 1e-6.
        start = np.log([1.0, max(T.mean(), 1.0), 1.0, 1.0])
        first = optimize.minimize(nll, start, method="L-BFGS-B")
        best = optimize.minimize(nll, first.x, method="Nelder-Mead", options={"maxiter": 400, "xatol": 1e-6, "fatol": 1e-8})
        chosen = best if best.fun <= first.fun else first
        r, alpha, a, b = np.exp(chosen.x)
        return cls(float(r), float(alpha), float(a), float(b))

    # -- predictions --------------------------------------------------------------------------------

    def p_alive(self, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_ratio = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
            odds = np.where(x > 0, np.exp(np.minimum(log_ratio, 700)), 0.0)
        return 1.0 / (1.0 + odds)

    def p_return(self, x, t_x, T, t) -> np.ndarray:
        """P(at least one transaction in (T, T + t]): alive at T and a Poisson event in t under the
        posterior gamma of the rate (a BG/NBD person drops out only right after a transaction)."""
        x, T = np.asarray(x, dtype=float), np.asarray(T, dtype=float)
        none_if_alive = ((self.alpha + T) / (self.alpha + T + t)) ** (self.r + x)
        return self.p_alive(x, t_x, T) * (1.0 - none_if_alive)

    def expected_transactions(self, x, t_x, T, t) -> np.ndarray:
        """E[transactions in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10). Needs a > 1; else falls back to
        p_return (at least one)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
        if a <= 1:
            return self.p_return(x, t_x, T, t)
        z = t / (alpha + T + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        first = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + t_x)) ** (r + x), 0.0)
        return np.nan_to_num(first / (1 + odds), nan=0.0, posinf=0.0)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float

    @classmethod
    def fit(cls, frequency, mean_value) -> GammaGamma:
        """Fit on persons with at least one transaction and a positive mean value."""
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(mean_value, dtype=float)
        keep = (x > 0) & (m > 0)
        x, m = x[keep], m[keep]
        if x.size < 2:
            raise ValueError("Gamma-Gamma needs persons with money")
        scale = float(np.mean(m))  # fit in units of the mean check: better conditioned
        m = m / scale

        def nll(log_params):
            p, q, v = np.exp(np.clip(log_params, -20, 20))
            ll = (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
                  + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))
            value = -ll.sum()
            return value if np.isfinite(value) else 1e300

        res = optimize.minimize(nll, np.log([2.0, 3.0, 2.0]), method="Nelder-Mead", options={"maxiter": 2000})
        p, q, v = np.exp(res.x)
        return cls(float(p), float(q), float(v * scale))

    def expected_value(self, frequency, mean_value) -> np.ndarray:
        """E[value of one transaction | x, mean]: the person's mean shrunk towards the population's."""
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(mean_value, dtype=float)
        population = self.p * self.v / (self.q - 1) if self.q > 1 else np.nan
        own = self.p * (self.v + x * m) / (self.p * x + self.q - 1)
        return np.where((x > 0) & (m > 0), own, population)
