"""Held-out scores of the dense pytree GLM, and forward selection of its leaves.

Folds are those of Hardcastle et al. (2017): the samples, in time order, are cut into
5 * n_folds contiguous sections; section j belongs to fold j % n_folds. A fold's held-out score
is (LL_model - LL_mean) / (spikes in the fold) / ln 2 in bits per spike, on the fold's samples,
with the model fitted on the other folds and LL_mean the log-likelihood of a constant rate equal
to the training folds' mean count (the intercept-only fit, so its score is 0 by definition).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import wilcoxon

from .errors import InputError
from .glm import GLM, dense_problem, float64_chunks, leaf_names, solve_weighted
from .regularizers import Smooth

MIN_FOLDS, MAX_FOLDS = 2, 20
SECTIONS_PER_FOLD = 5


def fold_index(n_samples: int, n_folds: int) -> np.ndarray:
    """The fold of each sample: 5 * n_folds contiguous sections (``np.array_split``), section j
    in fold j % n_folds."""
    n_samples, n_folds = int(n_samples), int(n_folds)
    if not MIN_FOLDS <= n_folds <= MAX_FOLDS:
        raise InputError(f"the number of folds must be between {MIN_FOLDS} and {MAX_FOLDS}, "
                         f"got {n_folds}")
    n_sections = SECTIONS_PER_FOLD * n_folds
    if n_sections > n_samples:
        raise InputError(f"{n_folds} folds need at least {n_sections} samples "
                         f"({SECTIONS_PER_FOLD} contiguous sections per fold), but there are "
                         f"{n_samples}: choose fewer folds")
    lengths = [len(s) for s in np.array_split(np.arange(n_samples), n_sections)]
    return np.repeat(np.arange(n_sections) % n_folds, lengths)


def bits_per_spike(ll_model, ll_mean, n_spikes):
    """(ll_model - ll_mean) / n_spikes / ln 2 from summed log-likelihoods; NaN where there are no
    spikes."""
    ll_model, ll_mean, n_spikes = np.broadcast_arrays(
        np.asarray(ll_model, float), np.asarray(ll_mean, float), np.asarray(n_spikes, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (ll_model - ll_mean) / n_spikes / np.log(2.0)
    return np.where(n_spikes > 0, score, np.nan)


@dataclass(frozen=True)
class CVResult:
    """Per-fold scores in bits/spike; a fold without spikes scores NaN and is left out of
    ``mean`` and ``sem``."""

    test_bits_per_spike: np.ndarray
    train_bits_per_spike: np.ndarray
    test_spikes: np.ndarray
    train_spikes: np.ndarray
    converged: np.ndarray

    @property
    def mean(self) -> float:
        """Mean held-out score over the folds with spikes."""
        return float(np.mean(self._scored))

    @property
    def sem(self) -> float:
        """Standard error of ``mean``: sample std / sqrt(folds with spikes)."""
        return float(np.std(self._scored, ddof=1) / np.sqrt(self._scored.size))

    @property
    def train_mean(self) -> float:
        return float(np.mean(self.train_bits_per_spike))

    @property
    def _scored(self) -> np.ndarray:
        return self.test_bits_per_spike[np.isfinite(self.test_bits_per_spike)]


def cross_validate(model: GLM, X, y, n_folds: int = 10) -> CVResult:
    """Held-out and training bits/spike of ``model`` (its regularizer, strengths and tol) on each
    fold. All folds are fitted in one jitted call (0/1 training weights, vmapped over folds),
    compiled once per design shape, regularizer and fold count: new strengths reuse it. Memory
    grows as n_folds times the design."""
    problem = dense_problem(X, y, model.regularizer, model.regularizer_strength)
    counts = np.asarray(problem.y, np.float64)
    fold = fold_index(counts.size, n_folds)
    test_spikes = np.bincount(fold, weights=counts, minlength=n_folds)
    test_samples = np.bincount(fold, minlength=n_folds)
    train_spikes, train_samples = counts.sum() - test_spikes, counts.size - test_samples
    if counts.sum() <= 0:
        raise InputError("there are no spikes: nothing to cross-validate")
    if np.any(train_spikes <= 0):
        raise InputError("the spikes all fall in one fold, so a training set has none: "
                         "use more data or fewer folds")
    fits = jax.device_get(_fit_folds(
        problem.design, problem.y, jnp.asarray(fold), jnp.arange(n_folds), problem.weights,
        model.regularizer, problem.groups, model.tol, model.maxiter))

    # Summed log-likelihoods in float64, log(y!) left out (it cancels in the scores): every
    # sample under every fold's model, and under its own fold's model.
    theta = np.asarray(fits.theta, np.float64).T  # (p + 1, n_folds)
    ll_all, ll_test, start = np.zeros(n_folds), np.zeros(n_folds), 0
    for rows in float64_chunks(np.asarray(problem.design)):
        stop = start + rows.shape[0]
        eta = rows @ theta
        terms = counts[start:stop, None] * eta - np.exp(eta)
        own = terms[np.arange(rows.shape[0]), fold[start:stop]]
        ll_all += terms.sum(axis=0)
        ll_test += np.bincount(fold[start:stop], weights=own, minlength=n_folds)
        start = stop
    rate = train_spikes / train_samples
    return CVResult(
        test_bits_per_spike=bits_per_spike(
            ll_test, test_spikes * np.log(rate) - test_samples * rate, test_spikes),
        train_bits_per_spike=bits_per_spike(
            ll_all - ll_test, train_spikes * np.log(rate) - train_samples * rate, train_spikes),
        test_spikes=test_spikes,
        train_spikes=train_spikes,
        converged=np.asarray(fits.converged),
    )


@partial(jax.jit, static_argnames=("reg", "groups", "tol", "maxiter"))
def _fit_folds(design, y, fold, folds, weights, reg, groups, tol, maxiter):
    theta0 = jnp.zeros(design.shape[1], design.dtype)

    def fit(k):
        train = (fold != k).astype(design.dtype)
        return solve_weighted(design, y, train, theta0, weights, reg, groups, tol, maxiter)

    return jax.vmap(fit)(folds)


@dataclass(frozen=True)
class SelectionStep:
    """One round of forward selection: each candidate added to the current model, scored per
    fold (held-out bits/spike), the best by mean, its per-fold gain over the current model and
    the one-sided Wilcoxon signed-rank p-value of that gain."""

    candidates: tuple
    scores: np.ndarray  # (n_candidates, n_folds)
    chosen: Hashable
    gain: np.ndarray  # (n_folds,)
    p_value: float
    added: bool

    @property
    def candidate_means(self) -> np.ndarray:
        return np.nanmean(self.scores, axis=1)

    @property
    def gain_mean(self) -> float:
        return float(np.nanmean(self.gain))


@dataclass(frozen=True)
class SelectionResult:
    selected: tuple  # keys in the order they were added
    steps: tuple[SelectionStep, ...]


def select_forward(score_subset: Callable[[tuple], np.ndarray], keys: Iterable[Hashable],
                   alpha: float = 0.05) -> SelectionResult:
    """Forward selection over ``keys``. ``score_subset(keys)`` gives the held-out score of the
    model with those keys (in the order added) on each fold; the empty model scores 0. Each round
    scores every remaining key added to the current model, takes the best mean, and adds it if a
    one-sided Wilcoxon signed-rank test across folds (folds with a NaN score left out) finds its
    gain over the current model greater than zero with p < alpha."""
    remaining, selected, steps = list(keys), (), []
    current = None
    while remaining:
        scores = np.stack([np.asarray(score_subset((*selected, k)), float) for k in remaining])
        best = int(np.argmax(np.nanmean(scores, axis=1)))
        gain = scores[best] - (0.0 if current is None else current)
        p_value = _signed_rank_p(gain)
        added = p_value < alpha
        steps.append(SelectionStep(tuple(remaining), scores, remaining[best], gain, p_value,
                                   added))
        if not added:
            break
        selected, current = (*selected, remaining.pop(best)), scores[best]
    return SelectionResult(selected, tuple(steps))


def forward_select(model: GLM, X: dict, y, n_folds: int = 10, alpha: float = 0.05
                   ) -> SelectionResult:
    """Forward selection of the keys of the dict design ``X`` by held-out bits/spike
    (``cross_validate`` with ``model``'s settings). A key's value may be one (T, k) leaf or any
    pytree of them, selected together. Per-key strengths (a dict over X's keys) and Smooth's
    circular leaves follow each subset. With fewer than 5 folds no p-value can fall below 0.05
    (the smallest is 2**-n_folds)."""
    if not isinstance(X, dict) or not X:
        raise InputError("forward selection needs a non-empty dict of design leaves")
    dense_problem(X, y, model.regularizer, model.regularizer_strength)  # checks, once

    def score_subset(keys):
        subset = {k: X[k] for k in keys}
        return cross_validate(_submodel(model, subset), subset, y, n_folds).test_bits_per_spike

    return select_forward(score_subset, X, alpha)


def _submodel(model: GLM, subset: dict) -> GLM:
    reg, strength = model.regularizer, model.regularizer_strength
    if isinstance(reg, Smooth):
        names = set(leaf_names(jax.tree_util.tree_structure(subset)))
        reg = Smooth(circular=reg.circular & names,
                     grids={k: g for k, g in reg.grids if k in names})
    if isinstance(strength, dict):
        strength = {k: strength[k] for k in subset}
    return GLM(reg, strength, model.tol, model.maxiter)


def _signed_rank_p(gain: np.ndarray) -> float:
    """One-sided Wilcoxon signed-rank p-value of gain > 0; 1 when no fold has a nonzero gain."""
    gain = gain[np.isfinite(gain)]
    if not np.any(gain != 0):
        return 1.0
    return float(wilcoxon(gain, alternative="greater").pvalue)
