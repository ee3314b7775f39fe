"""Held-out scores of the dense pytree GLM, and forward selection of its leaves.

Folds are those of Hardcastle et al. (2017): the samples, in time order, are cut into
5 * n_folds contiguous sections; section j belongs to fold j % n_folds. A fold's held-out score
is (LL_model - LL_mean) / (spikes in the fold) / ln 2 in bits per spike, on the fold's samples,
with the model fitted on the other folds and LL_mean the log-likelihood of a constant rate equal
to the training folds' mean count (the intercept-only fit, so its score is 0 by definition).

Samples with a NaN in any leaf (the first W rows of a lagged leaf) are in no fold: they are
dropped, as ``GLM.fit`` drops them, and counted in ``n_dropped``. Every other sample keeps the fold
of its time, so dropping samples never moves the others between folds. A held-out sample's lagged
row holds the observed past even where that past lies in a training fold: it is a covariate, not a
prediction.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln
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
    """Held-out and training scores of each fold, in bits per spike: the one result type of the
    dense GLM's and the bin grid's cross-validation.

    Fold k's model is fitted on the other folds; its held-out gain is LL_model - LL_mean over
    fold k's samples (nats), where LL_mean uses the training folds' mean count, and its held-out
    score that gain / fold k's spikes / ln 2 (NaN for a fold without spikes). The headline is
    ``pooled``: every fold's gain summed over every held-out spike, so that a fold of few spikes
    weighs as little as it counts (the unweighted mean of per-fold ratios favours such folds and
    can exceed the training score).

    Attributes:
        test_bits_per_spike: (n_folds,) held-out score of each fold.
        train_bits_per_spike: (n_folds,) score of each fold's model on its training folds.
        test_spikes: (n_folds,) spikes in each fold.
        train_spikes: (n_folds,) spikes in each fold's training folds.
        test_gain: (n_folds,) held-out LL_model - LL_mean of each fold, in nats.
        train_gain: (n_folds,) the same on each fold's training folds.
        test_pseudo_r2: pooled held-out McFadden pseudo-R2 over all folds (log y! included).
        converged: (n_folds,) whether each fold's solve converged.
        theta: each fold's solution, one row per fold, for warm starts (the bin grid's has
            ``cell_table.FOLD_SLOTS`` rows and stays on the device).
        n_dropped: samples left out of every fold for a NaN in some design leaf.
    """

    test_bits_per_spike: np.ndarray
    train_bits_per_spike: np.ndarray
    test_spikes: np.ndarray
    train_spikes: np.ndarray
    test_gain: np.ndarray
    train_gain: np.ndarray
    test_pseudo_r2: float
    converged: np.ndarray
    theta: Any
    n_dropped: int = 0

    @property
    def pooled(self) -> float:
        """Held-out bits/spike pooled over the folds: sum of ``test_gain`` / all held-out spikes
        / ln 2 (NaN without spikes)."""
        return float(pooled_bits_per_spike(self.test_gain, self.test_spikes))

    @property
    def pooled_se(self) -> float:
        """Standard error of ``pooled`` across folds, by the delta method for a ratio of sums:
        sqrt(K / (K - 1) * sum_k (g_k - R s_k)^2) / sum_k s_k, with g_k fold k's gain in bits,
        s_k its spikes and R = ``pooled``; NaN below two folds or without spikes."""
        gain, spikes = self.test_gain / np.log(2.0), np.asarray(self.test_spikes, float)
        k, total = gain.size, spikes.sum()
        if k < 2 or total <= 0:
            return np.nan
        residual = gain - self.pooled * spikes
        return float(np.sqrt(k / (k - 1) * np.sum(residual**2)) / total)

    @property
    def train_pooled(self) -> float:
        """Training bits/spike pooled the same way: sum of ``train_gain`` / sum of
        ``train_spikes`` / ln 2."""
        return float(pooled_bits_per_spike(self.train_gain, self.train_spikes))


def pooled_bits_per_spike(gain, spikes):
    """sum(gain) / sum(spikes) / ln 2 over the last axis: gains in nats; NaN without spikes."""
    gain, spikes = np.asarray(gain, float), np.asarray(spikes, float)
    total = spikes.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, gain.sum(axis=-1) / total / np.log(2.0), np.nan)


def pooled_pseudo_r2(ll_test, ll_test_mean, log_factorial) -> float:
    """Held-out McFadden pseudo-R2 pooled over folds.

    Args:
        ll_test: per fold, the summed log-likelihood of the model, log y! left out.
        ll_test_mean: per fold, the same for the training folds' mean rate.
        log_factorial: sum of log y! over all the folds' samples.

    Returns:
        1 - (sum ll_test - log_factorial) / (sum ll_test_mean - log_factorial).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(1.0 - (np.sum(ll_test) - log_factorial) / (
            np.sum(ll_test_mean) - log_factorial))


def cross_validate(model: GLM, X, y, n_folds: int = 10) -> CVResult:
    """Held-out and training bits/spike of the dense GLM on each fold.

    All folds are fitted in one jitted call (0/1 training weights, vmapped over folds), compiled
    once per design shape, regularizer and fold count: new strengths reuse it. Memory grows as
    n_folds times the design.

    Args:
        model: a :class:`GLM` whose regularizer, strengths, tol and maxiter are used.
        X: the design, a (T, p) array or a pytree of (T, k) leaves.
        y: (T,) spike counts.
        n_folds: folds of :func:`fold_index`.

    Returns:
        A :class:`CVResult`; raises ``InputError`` without spikes, or when a training set has
        none. Samples with a NaN in a leaf are dropped (``CVResult.n_dropped``).
    """
    return _cross_validate(model, X, y, n_folds, None)


def _cross_validate(model: GLM, X, y, n_folds: int, keep) -> CVResult:
    """:func:`cross_validate` on the samples in ``keep`` (a (T,) bool mask, or None for all)
    without a NaN; folds are those of all T samples."""
    problem = dense_problem(X, y, model.regularizer, model.regularizer_strength, keep)
    counts = np.asarray(problem.y, np.float64)
    fold = fold_index(problem.keep.size, n_folds)[problem.keep]
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
    ll_test_mean = test_spikes * np.log(rate) - test_samples * rate
    ll_train_mean = train_spikes * np.log(rate) - train_samples * rate
    return CVResult(
        test_bits_per_spike=bits_per_spike(ll_test, ll_test_mean, test_spikes),
        train_bits_per_spike=bits_per_spike(ll_all - ll_test, ll_train_mean, train_spikes),
        test_spikes=test_spikes,
        train_spikes=train_spikes,
        test_gain=ll_test - ll_test_mean,
        train_gain=ll_all - ll_test - ll_train_mean,
        test_pseudo_r2=pooled_pseudo_r2(ll_test, ll_test_mean, gammaln(counts + 1.0).sum()),
        converged=np.asarray(fits.converged),
        theta=np.asarray(fits.theta),
        n_dropped=problem.n_dropped,
    )


@partial(jax.jit, static_argnames=("reg", "groups", "tol", "maxiter"))
def _fit_folds(design, y, fold, folds, weights, reg, groups, tol, maxiter):
    theta0 = jnp.zeros(design.shape[1], design.dtype)

    def fit(k):
        train = (fold != k).astype(design.dtype)
        return solve_weighted(design, y, train, theta0, weights, reg, groups, tol, maxiter)

    return jax.vmap(fit)(folds)


MIN_GAIN = 0.005  # bits/spike: a smaller pooled gain adds no variable, whatever its p-value


@dataclass(frozen=True)
class SelectionStep:
    """One round of forward selection: each candidate added to the current model and scored,
    the best by pooled held-out score, its gain over the current model (per fold and pooled)
    and the one-sided Wilcoxon signed-rank p-value of the per-fold gains.

    Attributes:
        candidates: the keys tried.
        scores: (n_candidates, n_folds) held-out bits/spike of each candidate's model per fold.
        pooled: (n_candidates,) their pooled held-out bits/spike (``CVResult.pooled``).
        chosen: the best candidate.
        gain: (n_folds,) its per-fold gain over the current model.
        pooled_gain: its pooled gain over the current model.
        p_value: the test's p-value.
        added: whether ``chosen`` was added (p < alpha and pooled_gain >= min_gain).
    """

    candidates: tuple
    scores: np.ndarray
    pooled: np.ndarray
    chosen: Hashable
    gain: np.ndarray
    pooled_gain: float
    p_value: float
    added: bool

    @property
    def smallest_p(self) -> float:
        """The smallest p-value the test can give with these folds: 2**-n for n folds with a
        nonzero gain (every fold's gain positive)."""
        gain = self.gain[np.isfinite(self.gain)]
        return 0.5 ** int(np.count_nonzero(gain))


@dataclass(frozen=True)
class SelectionResult:
    """Keys in the order they were added, every round, and the rule that added them."""

    selected: tuple
    steps: tuple[SelectionStep, ...]
    alpha: float
    min_gain: float
    n_dropped: int = 0  # samples left out of every model for a NaN in some leaf


def select_by_score(score_subset: Callable[[tuple], CVResult], keys: Iterable[Hashable],
                    alpha: float = 0.05, min_gain: float = MIN_GAIN) -> SelectionResult:
    """The forward-selection engine, driven by a scorer (used by :func:`forward_select` and
    ``explorer.forward_select_encoding``).

    Each round scores every remaining key added to the current model and takes the best pooled
    held-out score. It is added if its pooled gain over the current model is at least
    ``min_gain`` bits/spike and a one-sided Wilcoxon signed-rank test of its per-fold gains
    (folds with a NaN score left out) gives p < alpha. With n folds the test's p-value is at
    least 2**-n (``SelectionStep.smallest_p``): below 5 folds nothing can pass alpha = 0.05.

    Args:
        score_subset: ``score_subset(keys)`` gives the :class:`CVResult` of the model with those
            keys (in the order added); the empty model scores 0 on every fold.
        keys: the candidates.
        alpha: the test's level.
        min_gain: the smallest pooled gain, in bits/spike, that adds a key.

    Returns:
        A :class:`SelectionResult`.
    """
    remaining, selected, steps = list(keys), (), []
    current, current_pooled = None, 0.0
    while remaining:
        results = [score_subset((*selected, k)) for k in remaining]
        pooled = np.array([r.pooled for r in results])
        best = int(np.nanargmax(pooled)) if np.isfinite(pooled).any() else 0
        scores = np.stack([np.asarray(r.test_bits_per_spike, float) for r in results])
        gain = scores[best] - (0.0 if current is None else current)
        pooled_gain = float(pooled[best] - current_pooled)
        p_value = _signed_rank_p(gain)
        added = bool(p_value < alpha and pooled_gain >= min_gain)
        steps.append(SelectionStep(tuple(remaining), scores, pooled, remaining[best], gain,
                                   pooled_gain, p_value, added))
        if not added:
            break
        selected = (*selected, remaining.pop(best))
        current, current_pooled = scores[best], float(pooled[best])
    return SelectionResult(selected, tuple(steps), alpha, min_gain)


def forward_select(model: GLM, X: dict, y, n_folds: int = 10, alpha: float = 0.05,
                   min_gain: float = MIN_GAIN) -> SelectionResult:
    """Forward selection of the keys of a dict design by held-out bits/spike.

    Each subset is scored by :func:`cross_validate` with ``model``'s settings; per-key strengths
    (a dict over X's keys) and Smooth's circular leaves follow each subset. With fewer than 5
    folds no p-value can fall below 0.05 (the smallest is 2**-n_folds). Samples with a NaN in any
    leaf of X are dropped from every subset's model, so all are scored on the same samples.

    Args:
        model: a :class:`GLM` (regularizer, strengths, tol, maxiter).
        X: dict of design leaves; a key's value may be one (T, k) leaf or any pytree of them,
            selected together.
        y: (T,) spike counts.
        n_folds: folds of :func:`fold_index`.
        alpha: level of the one-sided Wilcoxon signed-rank test (:func:`select_by_score`).
        min_gain: the smallest pooled gain (bits/spike) that adds a key.

    Returns:
        A :class:`SelectionResult` whose keys are X's keys.
    """
    if not isinstance(X, dict) or not X:
        raise InputError("forward selection needs a non-empty dict of design leaves")
    problem = dense_problem(X, y, model.regularizer, model.regularizer_strength)  # checks, once
    keep = problem.keep

    def score_subset(keys):
        subset = {k: X[k] for k in keys}
        return _cross_validate(_submodel(model, subset), subset, y, n_folds, keep)

    return replace(select_by_score(score_subset, X, alpha, min_gain),
                   n_dropped=problem.n_dropped)


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
