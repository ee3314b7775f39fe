"""Cross-validation folds of contiguous sections (placeholder; replaced by the dense CV module)."""

from __future__ import annotations

import numpy as np

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
