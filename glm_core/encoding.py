"""One-hot bin encodings of behavioural variables.

Linear variables get equal-width bins over their valid range; circular variables (radians) get
equal-width bins on the circle [-pi, pi).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Binning:
    """Bin edges for one variable."""

    edges: np.ndarray
    circular: bool = False

    @property
    def n_bins(self) -> int:
        return self.edges.size - 1

    @property
    def centres(self) -> np.ndarray:
        return 0.5 * (self.edges[:-1] + self.edges[1:])


def make_binning(values, n_bins: int, circular: bool = False, valid=None) -> Binning:
    """Equal-width bins over the finite (and valid) values, or over the circle."""
    n_bins = int(n_bins)
    if n_bins < 1:
        raise InputError(f"the bin count must be at least 1, got {n_bins}")
    if circular:
        return Binning(np.linspace(-np.pi, np.pi, n_bins + 1), True)
    values = np.asarray(values, float)
    keep = np.isfinite(values) if valid is None else np.isfinite(values) & valid
    if not keep.any():
        raise InputError("the variable has no finite values")
    lo, hi = values[keep].min(), values[keep].max()
    if hi <= lo:
        raise InputError(f"the variable is constant ({lo:g}): it cannot be binned")
    if not np.isfinite(hi - lo):
        raise InputError(f"the variable's values span {lo:g} to {hi:g}, too wide to bin")
    return Binning(np.linspace(lo, hi, n_bins + 1), False)


def bin_index(values, binning: Binning) -> np.ndarray:
    """Bin of each sample (int32); values outside the range go to the edge bins."""
    values = np.asarray(values, float)
    lo, hi = binning.edges[0], binning.edges[-1]
    if binning.circular:
        values = np.mod(values - lo, hi - lo) + lo
    scaled = np.floor((values - lo) / (hi - lo) * binning.n_bins)
    scaled = np.where(np.isfinite(scaled), scaled, 0)
    return np.clip(scaled, 0, binning.n_bins - 1).astype(np.int32)


def one_hot(index, n_bins: int) -> np.ndarray:
    """Dense (T, n_bins) design from bin indices."""
    return (np.asarray(index)[:, None] == np.arange(n_bins)[None, :]).astype(np.float32)
