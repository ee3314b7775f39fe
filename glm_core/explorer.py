"""The explorer's pipeline as pure functions: encode a session, fit, score, choose strengths.

``encode`` turns a session, a unit and per-variable bin counts into an :class:`Encoding` (bin
edges, per-sample bin indices and the joint bin-grid totals); ``with_bins``, ``with_basis`` and
``with_unit`` update one piece of it. A variable with a basis (B-spline, cyclic for circular
variables) is binned into ``max_bins`` fine bins, and its basis is evaluated at their centres.
Two linear variables may be paired into one joint (2-D) leaf of nx x ny bins (``pairs``): the
model's leaves are then the pairs and the unpaired variables, in the order of their first
variable (``Encoding.leaves``), and ``fit``, ``cross_validate_encoding``, ``path`` take one
include flag and strength per leaf. ``fit`` runs the cached, jitted bin-grid solver;
``glm_core.tuning`` turns a fit into the curves and maps the page draws. ``with_lags`` adds lagged
leaves (history, coupling, events: ``glm_core.lag_leaves``) after the behavioural ones; the
functions above then run the lagged engine (``glm_core.lagged_fit``) and take one flag and
strength per leaf, behavioural then lagged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .basis import bspline, cyclic_bspline
from .binned import BinnedFit, cross_validate_grid, fit_bin_grid, regularization_path
from .cell_table import JOINT_MAX_BINS, BinGrid, bin_grid, max_bins_for
from .crossval import MIN_GAIN, CVResult, SelectionResult, select_by_score
from .encoding import Binning, bin_index, make_binning
from .errors import InputError
from .evidence import evidence_strengths
from .lag_leaves import LagLeaf, with_lags
from .lagged_fit import LagDesign, cross_validate_lagged, fit_lagged, lagged_n_theta, lagged_path
from .regularizers import REGULARIZERS, Ridge, Smooth, get_regularizer
from .session import Session
from .tuning import truth_others

Step = Callable[[int, int], None]  # progress callback: (steps done, steps), may raise to stop


@dataclass(frozen=True)
class Encoding:
    """Encoding of a session's valid samples for one unit: bins, and per variable either one-hot
    (``bases[v]`` None) or a basis, the (n_bins, k) matrix of its k functions at the bin
    centres; ``pairs`` of variables form joint leaves, one axis of ``grid`` each."""

    binnings: tuple[Binning, ...]
    indices: np.ndarray  # (n_valid, n_variables) bin per sample
    counts: np.ndarray  # (n_valid,) spike counts of the unit
    grid: BinGrid  # one axis per leaf
    truth_others: dict  # simulations: per truth key, mean of exp(the other true effects)
    bases: tuple = ()  # per variable: None or (n_bins, k); () means all one-hot
    pairs: tuple = ()  # (x variable, y variable) of each joint leaf
    unit: str | int | None = None
    lags: tuple = ()  # the lagged leaves (:class:`~glm_core.lag_leaves.LagLeaf`)
    lag: LagDesign | None = None  # their rows, when there are lagged leaves
    events: dict | None = None  # event trains given to ``with_lags`` (else ``session.events``)

    @property
    def leaves(self) -> tuple:
        """The behavioural leaves (:attr:`behaviour_leaves`), then the lagged leaves."""
        return self.behaviour_leaves + self.lags

    @property
    def behaviour_leaves(self) -> tuple[tuple[int, ...], ...]:
        """Variables of each behavioural leaf: a pair, or one unpaired variable, ordered by
        first variable."""
        return leaf_variables(self.pairs, len(self.binnings))

    @property
    def leaf_bins(self) -> tuple:
        """Per leaf: its bin count, or (nx, ny) for a joint leaf."""
        n = self.n_bins
        return tuple(n[leaf[0]] if len(leaf) == 1 else (n[leaf[0]], n[leaf[1]])
                     for leaf in self.behaviour_leaves)

    @property
    def n_bins(self) -> tuple[int, ...]:
        return tuple(b.n_bins for b in self.binnings)

    @property
    def n_coef(self) -> tuple[int, ...]:
        """Coefficients per variable: its bins, or its basis functions."""
        return tuple(n if b is None else b.shape[1] for n, b in zip(self.n_bins, self._bases))

    @property
    def _bases(self) -> tuple:
        return self.bases or (None,) * len(self.binnings)

    @property
    def max_bins(self) -> int:
        return self.grid.max_bins

    @property
    def circular(self) -> tuple[bool, ...]:
        return tuple(b.circular for b in self.binnings)

    def leaf_name(self, leaf: int, names, unit_names=()) -> str:
        """A leaf's name: the variable's, "x × y" for a joint leaf, or a lagged leaf's label."""
        item = self.leaves[leaf]
        if isinstance(item, LagLeaf):
            return item.label(unit_names)
        return " × ".join(names[v] for v in item)

    def _leaf_settings(self):
        """Per behavioural leaf: bins (or (nx, ny)), circular flag and basis, as the grid solver
        takes them."""
        leaves = self.behaviour_leaves
        one = [len(leaf) == 1 for leaf in leaves]
        return (self.leaf_bins,
                [is_one and self.circular[leaf[0]] for is_one, leaf in zip(one, leaves)],
                [self._bases[leaf[0]] if is_one else None for is_one, leaf in zip(one, leaves)])


def encode(session: Session, unit, n_bins, n_folds: int = 10, n_basis=None,
           pairs=()) -> Encoding:
    """Bin every variable of ``session`` and total the unit's spikes over the joint cells, per
    cross-validation fold. ``n_basis[v]`` (None: one-hot bins) gives variable v a B-spline basis
    of that many functions on ``max_bins`` fine bins instead (cyclic for circular variables).
    ``pairs`` lists (x, y) variable indices that form joint leaves of n_bins[x] x n_bins[y] bins
    (at most ``JOINT_MAX_BINS`` each); a paired variable takes no basis."""
    max_bins = max_bins_for(len(session.variables))
    pairs = _checked_pairs(session, pairs)
    paired = {v for pair in pairs for v in pair}
    n_basis = (None,) * len(session.variables) if n_basis is None else tuple(n_basis)
    n_basis = tuple(None if v in paired else k for v, k in enumerate(n_basis))
    _check_bins([n for v, (n, k) in enumerate(zip(n_bins, n_basis))
                 if k is None and v not in paired], max_bins, session)
    _check_bins([n_bins[v] for v in paired], JOINT_MAX_BINS, session)
    n_bins = [n if k is None else max_bins for n, k in zip(n_bins, n_basis)]
    binnings = tuple(
        make_binning(v.values, n, v.circular, session.valid)
        for v, n in zip(session.variables, n_bins)
    )
    bases = tuple(None if k is None else spline_basis(b, k, session)
                  for b, k in zip(binnings, n_basis))
    indices = np.stack(
        [bin_index(v.values[session.valid], b) for v, b in zip(session.variables, binnings)], 1
    )
    counts = session.unit_counts(unit)[session.valid]
    return Encoding(binnings, indices, counts,
                    _leaf_grid(indices, counts, binnings, pairs, max_bins, n_folds),
                    truth_others(session, unit), bases, pairs, unit)


def _checked_pairs(session, pairs) -> tuple:
    """Pairs of distinct linear variables, each variable in at most one pair."""
    pairs = tuple((int(a), int(b)) for a, b in pairs)
    seen = [v for pair in pairs for v in pair]
    n = len(session.variables)
    if any(not 0 <= v < n for v in seen) or len(set(seen)) != len(seen):
        raise InputError("a 2-D leaf pairs two different variables, each in one leaf at most")
    for v in seen:
        var = session.variables[v]
        if var.circular:
            raise InputError(f"{var.name!r} is circular: a 2-D leaf pairs two linear variables "
                             "(a map on a square), so a circular one cannot be paired")
    return pairs


def leaf_variables(pairs, n_variables) -> tuple:
    """Variables of each leaf of a model of ``n_variables`` with these joint ``pairs``: a pair,
    or one unpaired variable, ordered by first variable."""
    first = {min(pair): pair for pair in pairs}
    paired = {v for pair in pairs for v in pair}
    return tuple(first[v] if v in first else (v,) for v in range(n_variables)
                 if v in first or v not in paired)


def _leaf_grid(indices, counts, binnings, pairs, max_bins, n_folds) -> BinGrid:
    """The bin grid with one axis per leaf: a joint leaf's bin is bx * ny + by."""
    columns, sizes = [], []
    for leaf in leaf_variables(pairs, len(binnings)):
        if len(leaf) == 1:
            columns.append(indices[:, leaf[0]])
            sizes.append(max_bins)
        else:
            x, y = leaf
            columns.append(indices[:, x] * binnings[y].n_bins + indices[:, y])
            sizes.append(JOINT_MAX_BINS**2)
    return bin_grid(np.stack(columns, 1), counts, max_bins, n_folds, sizes)


def with_bins(enc: Encoding, session: Session, variable: int, n: int) -> Encoding:
    """The same encoding with one variable re-binned into ``n`` one-hot bins."""
    return _rebinned(enc, session, variable, n, None)


def with_basis(enc: Encoding, session: Session, variable: int, n_basis: int) -> Encoding:
    """The same encoding with one variable on a B-spline basis of ``n_basis`` functions (cyclic
    for a circular variable) over ``max_bins`` fine bins; only the basis changes if the variable
    is on fine bins already."""
    if any(variable in pair for pair in enc.pairs):
        raise InputError(f"{session.variables[variable].name!r} is in a 2-D leaf, which is "
                         "binned: unpair it to give it a basis")
    if enc._bases[variable] is not None:
        basis = spline_basis(enc.binnings[variable], n_basis, session)
        return replace(enc, bases=_set(enc._bases, variable, basis))
    return _rebinned(enc, session, variable, enc.max_bins, n_basis)


def spline_basis(binning: Binning, n_basis: int, session: Session) -> np.ndarray:
    """(n_bins, n_basis) B-spline basis at the bin centres, over the bins' span (cyclic on a
    circular binning); InputError for fewer valid samples than basis functions."""
    n_basis = int(n_basis)
    if n_basis > session.n_valid:
        raise InputError(f"{n_basis} basis functions but only {session.n_valid} valid samples: "
                         "choose fewer basis functions")
    evaluate = cyclic_bspline if binning.circular else bspline
    return evaluate(binning.centres, n_basis, (binning.edges[0], binning.edges[-1]))


def _rebinned(enc, session, variable, n, n_basis):
    if n_basis is None:
        paired = any(variable in pair for pair in enc.pairs)
        _check_bins([n], JOINT_MAX_BINS if paired else enc.max_bins, session)
    var = session.variables[variable]
    binning = make_binning(var.values, n, var.circular, session.valid)
    basis = None if n_basis is None else spline_basis(binning, n_basis, session)
    indices = enc.indices.copy()
    indices[:, variable] = bin_index(var.values[session.valid], binning)
    binnings = _set(enc.binnings, variable, binning)
    return _with_grid(replace(enc, binnings=binnings, indices=indices,
                              bases=_set(enc._bases, variable, basis)),
                      _leaf_grid(indices, enc.counts, binnings, enc.pairs, enc.max_bins,
                                 enc.grid.n_folds))


def _with_grid(enc, grid) -> Encoding:
    """The encoding on another cell table; its lagged rows follow the cells and folds."""
    lag = None if enc.lag is None else enc.lag.with_grid(grid, enc.counts)
    return replace(enc, grid=grid, lag=lag)


def _set(items: tuple, index: int, value) -> tuple:
    return items[:index] + (value,) + items[index + 1 :]


def with_unit(enc: Encoding, session: Session, unit) -> Encoding:
    """The same encoding with another unit's spike counts (and its lagged leaves' rows)."""
    counts = session.unit_counts(unit)[session.valid]
    enc = replace(enc, counts=counts, grid=enc.grid.with_counts(counts), unit=unit,
                  truth_others=truth_others(session, unit))
    return with_lags(enc, session, enc.lags, enc.events) if enc.lags else enc


def with_folds(enc: Encoding, n_folds: int) -> Encoding:
    """The same encoding split into another number of cross-validation folds."""
    return _with_grid(enc, enc.grid.with_folds(n_folds, enc.counts))


def fit(enc: Encoding, include, strengths, regularizer, init=None) -> BinnedFit:
    """Fit the included leaves with per-leaf strengths (warm start from ``init``)."""
    init = _warm(enc, init)
    n_bins, circular, bases = enc._leaf_settings()
    if enc.lag is not None:
        return fit_lagged(enc.grid, enc.lag, n_bins, include, strengths, regularizer, init,
                          circular, bases=bases)
    return fit_bin_grid(enc.grid, n_bins, include, strengths, regularizer, init, circular,
                        bases=bases)


def cross_validate_encoding(enc: Encoding, include, strengths, regularizer, init=None,
                            moved=None) -> CVResult:
    """Held-out scores of every fold of an encoding, all folds fitted in one call.

    Args:
        enc: the encoding (its grid's folds).
        include: per leaf, whether it is in the model.
        strengths: per-leaf penalty strengths.
        regularizer: a regularizer or its name.
        init: a previous ``CVResult.theta`` or a fit's ``theta``, to warm-start from.
        moved: (before, after), the full fit's ``theta`` when ``init`` was cross-validated and
            now: each fold then starts from its previous solution moved as the full fit moved
            (fold optima move nearly in parallel with it), which saves about one Newton
            iteration per fold.

    Returns:
        A :class:`~glm_core.crossval.CVResult`.
    """
    init = _warm(enc, init)
    if moved is not None and init is not None and _warm(enc, moved[0]) is not None and (
            _warm(enc, moved[1]) is not None):
        before, after = (np.asarray(t, np.float32) for t in moved)
        init = np.asarray(init, np.float32) + (after - before)
    n_bins, circular, bases = enc._leaf_settings()
    if enc.lag is not None:
        return cross_validate_lagged(enc.grid, enc.lag, n_bins, include, strengths,
                                     regularizer, init, circular, bases=bases)
    return cross_validate_grid(enc.grid, n_bins, include, strengths, regularizer, init,
                               circular, bases=bases)


def path(enc: Encoding, include, strengths, regularizer, variable: int, log_strengths,
         init=None, on_step: Step | None = None) -> list[CVResult]:
    """Cross-validated scores along ``log_strengths`` of one leaf, the others fixed;
    ``on_step(points done, points)`` after each point (it may raise to stop)."""
    init = _warm(enc, init)
    n_bins, circular, bases = enc._leaf_settings()
    if enc.lag is not None:
        return lagged_path(enc.grid, enc.lag, n_bins, include, strengths, variable,
                           log_strengths, regularizer, init, circular, bases=bases,
                           on_step=on_step)
    return regularization_path(enc.grid, n_bins, include, strengths, variable, log_strengths,
                               regularizer, init, circular, bases=bases, on_step=on_step)


def best_strengths(enc: Encoding, include, log_strengths, regularizer, grid_points,
                   rounds: int = 2, init=None, on_step: Step | None = None) -> list[float]:
    """log10 strengths of the included variables at their optimum, within the range of
    ``grid_points``: for Ridge and Smooth the Laplace evidence's maximum (MacKay's fixed point,
    see ``glm_core.evidence``: full fits only, no cross-validation), else (Lasso, GroupLasso,
    whose evidence has no such form, and models with lagged leaves) :func:`ascent_strengths`
    (which calls ``on_step``)."""
    if isinstance(get_regularizer(regularizer), (Ridge, Smooth)) and enc.lag is None:
        bounds = (float(np.min(grid_points)), float(np.max(grid_points)))
        n_bins, circular, bases = enc._leaf_settings()
        return [float(x) for x in evidence_strengths(
            enc.grid, n_bins, include, log_strengths, regularizer, None, circular, bases,
            bounds)]
    return ascent_strengths(enc, include, log_strengths, regularizer, grid_points, rounds, init,
                            on_step)


COARSE_DECADES = 1.0  # spacing of the first sweep's coarse points in ``ascent_strengths``


def ascent_strengths(enc: Encoding, include, log_strengths, regularizer, grid_points,
                     rounds: int = 2, init=None, on_step: Step | None = None) -> list[float]:
    """Coordinate ascent of the pooled held-out score over evenly spaced ``grid_points`` (log10
    strengths): each included leaf in turn moves to its best grid point along its path, the
    others held; ``rounds`` sweeps.

    The first sweep scores one point a decade (``COARSE_DECADES``), then the grid points
    between the best one's coarse neighbours; later sweeps climb from the current point to a
    neighbouring grid point while that scores better. With 25 points over six decades this
    scores about 17 points per leaf instead of 25 per sweep, and stops at a grid point that
    beats both its neighbours (the exhaustive ascent's optimum where the score is unimodal).

    Args:
        enc: the encoding.
        include: per leaf, whether it is in the model (excluded leaves keep their strength).
        log_strengths: per-leaf log10 strengths to start from.
        regularizer: a regularizer or its name.
        grid_points: the candidate log10 strengths, ascending and evenly spaced.
        rounds: sweeps over the leaves.
        init: a ``CVResult.theta`` to warm-start every path from.
        on_step: called as ``on_step(points scored, points planned)`` after each point (the
            plan may grow while climbing); it may raise to stop.

    Returns:
        The log10 strengths, one per leaf.
    """
    grid = np.asarray(grid_points, float)
    logs = [float(x) for x in log_strengths]
    leaves = [v for v, keep in enumerate(include) if keep]
    stride = max(1, int(round(COARSE_DECADES / (grid[1] - grid[0])))) if len(grid) > 1 else 1
    coarse = sorted({*range(0, len(grid), stride), len(grid) - 1})
    plan = [len(leaves) * (len(coarse) + 2 * (stride - 1) + 3 * (rounds - 1)), 0]  # planned, done

    def score(v, points, scores):
        """Add the pooled held-out scores of leaf v at these grid indices to ``scores``."""
        points = [i for i in points if 0 <= i < len(grid) and i not in scores]
        if not points:
            return False
        plan[0] = max(plan[0], plan[1] + len(points))

        def step(done, _):
            if on_step is not None:
                on_step(plan[1] + done, plan[0])

        results = path(enc, include, [10.0**x for x in logs], regularizer, v, grid[points],
                       init, step)
        plan[1] += len(points)
        scores.update((i, r.pooled) for i, r in zip(points, results))
        return True

    def best(scores):
        finite = {i: m for i, m in scores.items() if np.isfinite(m)}
        return max(finite, key=finite.get) if finite else None

    for sweep in range(rounds):
        for v in leaves:
            scores = {}
            if sweep == 0:
                score(v, coarse, scores)
                top = best(scores)
                if top is not None:
                    score(v, range(top - stride + 1, top + stride), scores)
            else:
                top = int(np.argmin(np.abs(grid - logs[v])))
                score(v, (top - 1, top, top + 1), scores)
                while (new := best(scores)) not in (None, top):
                    top = new
                    if not score(v, (top - 1, top + 1), scores):
                        break
            top = best(scores)
            if top is not None:
                logs[v] = float(grid[top])
    return logs


def forward_select_encoding(enc: Encoding, strengths, regularizer, alpha: float = 0.05,
                            init=None, min_gain: float = MIN_GAIN,
                            on_step: Step | None = None) -> SelectionResult:
    """Forward selection of an encoding's leaves by held-out score.

    Args:
        enc: the encoding.
        strengths: per-leaf penalty strengths.
        regularizer: a regularizer or its name.
        alpha: level of the one-sided Wilcoxon test across folds (``crossval.select_by_score``).
        init: a warm start for every cross-validation (a ``CVResult.theta`` or a ``theta``).
        min_gain: the smallest pooled held-out gain (bits/spike) that adds a leaf.
        on_step: called as ``on_step(models scored, most models to score)`` after each
            cross-validation; it may raise to stop.

    Returns:
        A :class:`~glm_core.crossval.SelectionResult` whose keys are leaf indices.
    """
    n = len(enc.leaves)
    done = [0]

    def score(subset):
        include = [v in subset for v in range(n)]
        scores = cross_validate_encoding(enc, include, strengths, regularizer, init)
        done[0] += 1
        if on_step is not None:
            on_step(done[0], n * (n + 1) // 2)
        return scores

    return select_by_score(score, range(len(enc.leaves)), alpha, min_gain)


def warm_up(enc: Encoding, regularizers=tuple(REGULARIZERS)) -> None:
    """Compile the fit and cross-validation of each regularizer for this encoding's shapes (the
    paths, forward selection and Best strengths reuse them), and the evidence's update."""
    include = [True] * len(enc.leaves)
    for name in regularizers:
        result = fit(enc, include, [1e-3] * len(include), name)
        cross_validate_encoding(enc, include, [1e-3] * len(include), name, result.theta)
        if isinstance(get_regularizer(name), (Ridge, Smooth)) and enc.lag is None:
            n_bins, circular, bases = enc._leaf_settings()
            evidence_strengths(enc.grid, n_bins, include, [-3.0] * len(include), name,
                               result.theta, circular, bases, maxiter=1)


def _warm(enc: Encoding, init):
    """``init`` if it is a solution of this encoding's layout (one, or one per fold), else
    None: adding or removing lagged leaves changes the layout."""
    size = enc.grid.n_theta if enc.lag is None else lagged_n_theta(enc.grid)
    return init if init is not None and np.shape(init)[-1] == size else None


def _check_bins(n_bins, max_bins, session):
    if any(not 1 <= int(n) <= max_bins for n in n_bins):
        raise InputError(f"choose between 1 and {max_bins} bins per variable")
    if max((int(n) for n in n_bins), default=0) > session.n_valid:
        raise InputError(
            f"more bins than valid samples ({session.n_valid}): choose fewer bins"
        )
