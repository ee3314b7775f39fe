"""Independent float64 references for the tests (numpy, scipy): histogram bins, one-hot designs,
the Poisson objective with each penalty, its optimality (KKT) residual and log-likelihoods.

Nothing here imports glm_core: every quantity is recomputed from the data and the returned
coefficients, so a bug in the code under test cannot hide in its own reference.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import poisson


def histogram_bins(values, n_bins: int, circular: bool = False):
    """Bin index of each value and the edges, as ``np.histogram`` bins them (equal widths over the
    values' range, or over [-pi, pi) for angles; the last bin closed)."""
    values = np.asarray(values, float)
    span = (-np.pi, np.pi) if circular else (values.min(), values.max())
    edges = np.histogram_bin_edges(values, n_bins, span)
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, n_bins - 1)
    return index, edges


def one_hot(index, n_bins: int) -> np.ndarray:
    return (np.asarray(index)[:, None] == np.arange(n_bins)[None, :]).astype(float)


def log_rate(designs, coefs, intercept) -> np.ndarray:
    return float(intercept) + sum(np.asarray(X, float) @ np.asarray(w, float)
                                  for X, w in zip(designs, coefs))


def penalty(regularizer: str, coefs, strengths) -> float:
    """NeMoS's penalties: Ridge 0.5 s w^2, Lasso s |w|, GroupLasso s sqrt(p) ||w|| per leaf."""
    total = 0.0
    for w, s in zip(coefs, strengths):
        w = np.asarray(w, float)
        if regularizer == "Ridge":
            total += 0.5 * np.sum(s * w**2)
        elif regularizer == "Lasso":
            total += np.sum(s * np.abs(w))
        elif regularizer == "GroupLasso":
            total += s * np.sqrt(w.size) * np.linalg.norm(w)
    return float(total)


def objective(designs, coefs, intercept, y, regularizer="UnRegularized", strengths=()):
    """mean_t [exp(eta_t) - y_t eta_t] + penalty, in float64."""
    eta = log_rate(designs, coefs, intercept)
    return float(np.mean(np.exp(eta) - y * eta)) + penalty(regularizer, coefs, strengths)


def kkt_residual(designs, coefs, intercept, y, regularizer="UnRegularized", strengths=None):
    """Largest entry of the minimum-norm subgradient of ``objective`` at the given coefficients,
    relative to the mean count (zero exactly at the optimum)."""
    y = np.asarray(y, float)
    strengths = [0.0] * len(coefs) if strengths is None else strengths
    r = (np.exp(log_rate(designs, coefs, intercept)) - y) / y.size
    parts = [np.array([r.sum()])]
    for X, w, s in zip(designs, coefs, strengths):
        w, g = np.asarray(w, float), np.asarray(X, float).T @ r
        if regularizer == "Ridge":
            g = g + s * w
        elif regularizer == "Lasso":
            g = np.where(w != 0, g + s * np.sign(w), np.sign(g) * np.maximum(np.abs(g) - s, 0))
        elif regularizer == "GroupLasso":
            lam, norm = s * np.sqrt(w.size), np.linalg.norm(w)
            g = (g + lam * w / norm if norm > 0
                 else g * max(0.0, 1 - lam / max(np.linalg.norm(g), 1e-300)))
        parts.append(g)
    return float(np.max(np.abs(np.concatenate(parts)))) / max(y.mean(), 1e-3)


def mean_log_likelihood(y, rate) -> float:
    """Mean Poisson log-likelihood per sample, log(y!) included (scipy)."""
    return float(np.mean(poisson.logpmf(np.asarray(y, float), np.asarray(rate, float))))


def pseudo_r2(y, rate) -> float:
    """McFadden: 1 - LL(model) / LL(constant rate = mean count)."""
    y = np.asarray(y, float)
    return 1.0 - mean_log_likelihood(y, rate) / mean_log_likelihood(y, np.full(y.shape, y.mean()))
