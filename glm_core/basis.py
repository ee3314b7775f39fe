"""B-spline bases on equally spaced knots, as NeMoS's ``BSplineEval`` / ``CyclicBSplineEval``.

Samples are rescaled so that ``bounds`` map to [0, 1]. ``bspline`` uses NeMoS's clamped knot
vector (``order - 1`` repeated end knots around ``n_basis - order + 2`` equally spaced ones, the
upper end nudged by one ulp above 1 so the last function is nonzero at the upper bound); samples
outside the bounds get NaN rows, as in NeMoS. ``cyclic_bspline`` has ``n_basis`` equally spaced
knots on the circle and one function per knot, each the periodic sum of a B-spline; samples are
wrapped onto the circle (NeMoS instead leaves samples outside the bounds undefined). Both are
evaluated by ``scipy.interpolate.BSpline.design_matrix``.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline

from .errors import InputError

_TOP = 1.0 + np.finfo(float).eps  # NeMoS's upper knot


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
