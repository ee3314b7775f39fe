"""Cross-validation folds of contiguous sections (placeholder; replaced by the dense CV module)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon

from .errors import InputError


def fold_index(n_samples: int, n_folds: int) -> np.ndarray:
    """Fold of each sample in time order: 5 * n_folds contiguous sections, section j in fold
    j % n_folds."""
    if not 2 <= int(n_folds) <= 20:
        raise InputError(f"choose between 2 and 20 folds, got {n_folds}")
    if 5 * n_folds > n_samples:
        raise InputError(f"{n_folds} folds need at least {5 * n_folds} samples, "
                         f"the data has {n_samples}: choose fewer folds")
    fold = np.empty(n_samples, np.int64)
    for j, section in enumerate(np.array_split(np.arange(n_samples), 5 * n_folds)):
        fold[section] = j % n_folds
    return fold


@dataclass(frozen=True)
class SelectionStep:
    """One step of forward selection: every candidate's mean held-out score, the chosen leaf,
    its mean gain over the current model and the one-sided Wilcoxon p-value of that gain."""

    candidates: dict
    chosen: str
    gain: float
    p_value: float
    accepted: bool


@dataclass(frozen=True)
class SelectionResult:
    selected: tuple
    steps: tuple


def select_forward(score_subset: Callable, keys, alpha: float = 0.05) -> SelectionResult:
    """Forward selection by held-out score: ``score_subset(subset)`` returns per-fold scores."""
    selected, steps = (), []
    current = None
    remaining = list(keys)
    while remaining:
        scores = {k: np.asarray(score_subset(selected + (k,))) for k in remaining}
        means = {k: float(np.nanmean(s)) for k, s in scores.items()}
        best = max(remaining, key=lambda k: means[k])
        base = np.zeros_like(scores[best]) if current is None else current
        diff = scores[best] - base
        ok = np.isfinite(diff)
        p = float(wilcoxon(diff[ok], alternative="greater").pvalue) if ok.sum() > 1 else 1.0
        accepted = p < alpha
        steps.append(SelectionStep(means, best, float(np.mean(diff[ok])), p, accepted))
        if not accepted:
            break
        selected, current = selected + (best,), scores[best]
        remaining.remove(best)
    return SelectionResult(selected, tuple(steps))
