"""B-spline bases on equally spaced knots, as NeMoS's ``BSplineEval`` / ``CyclicBSplineEval``.

Samples are rescaled so that ``bounds`` map to [0, 1]. ``bspline`` uses NeMoS's clamped knot
vector (``order - 1`` repeated end knots around ``n_basis - order + 2`` equally spaced ones, the
upper end nudged by one ulp above 1 so the last function is nonzero at the upper bound); samples
outside the bounds get NaN rows, as in NeMoS. ``cyclic_bspline`` has ``n_basis`` equally spaced
knots on the circle and one function per knot, each the periodic sum of a B-spline; samples are
wrapped onto the circle (NeMoS instead leaves samples outside the bounds undefined). Both are
evaluated by ``scipy.interpolate.BSpline.design_matrix``.

Lag bases for spike history, coupling and event kernels: ``raised_cosine_log`` gives the kernels
of NeMoS's ``RaisedCosineLogConv`` (Pillow et al. 2005), and ``lagged`` convolves a count train
with them causally, as NeMoS's ``compute_features``: row t sees only counts t - 1 .. t - W.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline

from .errors import InputError

_TOP = 1.0 + np.finfo(float).eps  # NeMoS's upper knot
LAG_CHUNK = 1 << 15  # rows per matrix product in ``lagged``, to bound memory at large T


def bspline(x, n_basis: int, bounds, order: int = 4) -> np.ndarray:
    """(T, n_basis) B-spline design of ``x`` over ``bounds = (lo, hi)``; NaN rows outside."""
    n_basis, order, (lo, hi) = _check(n_basis, bounds, order, min_order=1)
    knots = np.concatenate([np.zeros(order - 1), np.linspace(0.0, _TOP, n_basis - order + 2),
                            np.full(order - 1, _TOP)])
    u = (np.asarray(x, float).ravel() - lo) / (hi - lo)
    inside = (u >= 0.0) & (u <= _TOP)
    design = np.full((u.size, n_basis), np.nan)
    if inside.any():
        design[inside] = BSpline.design_matrix(u[inside], knots, order - 1).toarray()
    return design


def cyclic_bspline(x, n_basis: int, bounds, order: int = 4) -> np.ndarray:
    """(T, n_basis) periodic B-spline design of ``x``, with period ``hi - lo``; NaN rows for
    non-finite ``x``."""
    n_basis, order, (lo, hi) = _check(n_basis, bounds, order, min_order=2)
    u = np.asarray(x, float).ravel()
    finite = np.isfinite(u)
    u = np.mod((u[finite] - lo) / (hi - lo), 1.0)
    # An unclamped uniform knot vector over one period plus order - 1 knots either side: its
    # n_basis + order - 1 functions, columns folded modulo n_basis, are the periodic ones; NeMoS
    # orders them from the function that starts order - 1 knots before the lower bound.
    knots = np.arange(1 - order, n_basis + order) / n_basis
    open_design = BSpline.design_matrix(u, knots, order - 1).toarray()
    design = np.full((finite.size, n_basis), np.nan)
    design[finite] = 0.0
    for column in range(open_design.shape[1]):
        design[finite, column % n_basis] += open_design[:, column]
    return design


def raised_cosine_log(n_basis: int, window_size: int, width: float = 2.0,
                      time_scaling: float = 50.0) -> np.ndarray:
    """(window_size, n_basis) log-spaced raised-cosine lag kernels, NeMoS's
    ``RaisedCosineLogConv(n_basis, window_size=window_size).evaluate_on_grid(window_size)[1]``.

    Lag l (1 .. window_size) gets row l - 1. The grid u = 0 .. 1 is stretched to
    log(1 + time_scaling * u) / log(1 + time_scaling); bump j peaks at c_j, equally spaced from 0 to
    1 - width / (n_basis + width - 1) (so the last bump decays to zero at the window's end), and is
    0.5 * (1 + cos(clip(pi * (x - c_j) / (width * spacing), -pi, pi))).

    Args:
        n_basis: number of kernels, at least 2.
        window_size: number of lags, at least 2.
        width: bump width in peak spacings; 2 * width a whole number, width > 1.
        time_scaling: strength of the log stretch, > 0 (NeMoS's default 50).

    Returns:
        The float64 kernel matrix; InputError on bad arguments.
    """
    n_basis, window_size = int(n_basis), int(window_size)
    if n_basis < 2:
        raise InputError(f"a raised-cosine basis needs at least 2 functions, got {n_basis}")
    if window_size < 2:
        raise InputError(f"a lag window needs at least 2 bins, got {window_size}")
    if not (width > 1 and np.isclose(2 * width, round(2 * width))):
        raise InputError(f"the raised-cosine width must be > 1 with 2 * width whole, got {width}")
    if not time_scaling > 0:
        raise InputError(f"time_scaling must be positive, got {time_scaling}")
    u = np.linspace(0.0, 1.0, window_size)
    x = np.log(time_scaling * u + 1.0) / np.log(time_scaling + 1.0)
    peaks = np.linspace(0.0, 1.0 - width / (n_basis + width - 1), n_basis)
    phase = np.pi * (x[:, None] - peaks[None, :]) / ((peaks[1] - peaks[0]) * width)
    return 0.5 * (np.cos(np.clip(phase, -np.pi, np.pi)) + 1.0)


def lagged(counts, kernels) -> np.ndarray:
    """(T, k) causal lagged design: row t = sum over lags l = 1..W of
    counts[t - l] * kernels[l - 1], NaN in the first W rows (their window runs before the start),
    as NeMoS's ``compute_features`` of a convolutional basis with these kernels. Row t never sees
    counts[t].

    Computed as an exact matrix product of each row's window with the kernels (in blocks of
    ``LAG_CHUNK`` rows): a row whose window holds no counts is exactly zero, and changing one count
    changes only the W rows after it.

    Args:
        counts: (T,) counts (or any finite train, e.g. events per bin) of the source.
        kernels: (W, k) lag kernels, e.g. :func:`raised_cosine_log`; a (W,) kernel counts as k = 1.

    Returns:
        The float64 design; InputError on bad input or W >= T.
    """
    counts = np.asarray(counts, np.float64)
    kernels = np.asarray(kernels, np.float64)
    kernels = kernels[:, None] if kernels.ndim == 1 else kernels
    if counts.ndim != 1:
        raise InputError(f"lagged() takes one (T,) count train, got shape {counts.shape}")
    if kernels.ndim != 2 or kernels.shape[0] < 1 or kernels.shape[1] < 1:
        raise InputError(f"the kernels must be a (window, k) array, got shape {kernels.shape}")
    if not (np.all(np.isfinite(counts)) and np.all(np.isfinite(kernels))):
        raise InputError("the counts and kernels must be finite")
    window, n_samples = kernels.shape[0], counts.size
    if window >= n_samples:
        raise InputError(f"a window of {window} bins is not shorter than the {n_samples} samples")
    design = np.full((n_samples, kernels.shape[1]), np.nan)
    # windows[i] = counts[i : i + W], the window of row i + W, oldest first: against the kernels
    # reversed (the oldest count meets lag W).
    windows = np.lib.stride_tricks.sliding_window_view(counts[:-1], window)
    reversed_kernels = np.ascontiguousarray(kernels[::-1])
    for start in range(0, windows.shape[0], LAG_CHUNK):
        block = np.ascontiguousarray(windows[start:start + LAG_CHUNK])  # else no BLAS
        design[window + start:window + start + block.shape[0]] = block @ reversed_kernels
    return design


def _check(n_basis, bounds, order, min_order):
    n_basis, order = int(n_basis), int(order)
    if order < min_order:
        raise InputError(f"the spline order must be at least {min_order}, got {order}")
    if n_basis < order:
        raise InputError(f"{n_basis} basis functions are too few for order {order}; "
                         f"use at least {order}")
    lo, hi = (float(b) for b in bounds)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise InputError(f"the basis bounds must be finite with lo < hi, got ({lo:g}, {hi:g})")
    return n_basis, order, (lo, hi)
