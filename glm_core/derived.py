"""Variables derived from tracked position: velocity, speed, linearised position, a running
mask."""

from __future__ import annotations

import numpy as np

from .errors import InputError

POSITION_SMOOTHING = 0.1  # s; Gaussian s.d. applied to tracked position before differentiating


def velocity(position, bin_width: float, smooth: float = 0.0) -> np.ndarray:
    """Velocity ``(T, D)`` (units per second) of a 1-D ``(T,)`` or 2-D ``(T, D)`` position sampled
    every ``bin_width`` seconds; ``smooth`` > 0 first applies a Gaussian filter of that s.d.
    (seconds)."""
    pos = np.asarray(position, dtype=float)
    if pos.ndim == 1:
        pos = pos[:, None]
    if pos.ndim != 2 or pos.shape[0] < 2:
        raise InputError(f"speed needs at least 2 position samples, got shape {pos.shape}")
    if not bin_width > 0:
        raise InputError(f"bin width must be positive, got {bin_width}")
    if smooth > 0:
        pos = _gaussian_filter(pos, smooth / bin_width)
    return np.gradient(pos, bin_width, axis=0)


def speed(position, bin_width: float, smooth: float = 0.0) -> np.ndarray:
    """Speed: the norm of :func:`velocity`."""
    return np.linalg.norm(velocity(position, bin_width, smooth), axis=1)


def linearize(x, y) -> np.ndarray:
    """Project 2-D points onto their principal axis (PCA), in the input's units, starting at 0.

    The axis is oriented so that its x component is non-negative. NaN points stay NaN and are
    ignored when fitting the axis.
    """
    xy = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    ok = np.all(np.isfinite(xy), axis=1)
    if ok.sum() < 2:
        raise InputError("linearising needs at least 2 finite (x, y) points")
    centre = xy[ok].mean(axis=0)
    axis = np.linalg.svd(xy[ok] - centre, full_matrices=False)[2][0]
    axis = axis if axis[0] >= 0 else -axis
    along = (xy - centre) @ axis
    return along - np.min(along[ok])


def running_mask(speed_values, threshold: float) -> np.ndarray:
    """True where the speed is finite and above ``threshold``."""
    s = np.asarray(speed_values, dtype=float)
    return np.isfinite(s) & (s > threshold)


def _gaussian_filter(pos: np.ndarray, sigma_bins: float) -> np.ndarray:
    """Gaussian smoothing along axis 0; odd reflection at the ends keeps linear trends unbiased."""
    half = int(np.ceil(4 * sigma_bins))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_bins) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(pos, ((half, half), (0, 0)), mode="reflect", reflect_type="odd")
    return np.column_stack([np.convolve(col, kernel, mode="valid") for col in padded.T])
