"""Pure JAX/numpy core of the pytree GLM explorer: data, encodings, objective, regularizers,
solvers. Never imports Panel.

The dense pytree GLM (NeMoS-like): :class:`GLM`, :func:`cross_validate`, :func:`forward_select`.
The bin-grid GLM of the explorer: :func:`bin_grid` builds a :class:`BinGrid` (the cell table),
:func:`fit_bin_grid`, :func:`cross_validate_grid` and :func:`regularization_path` fit it. Both
cross-validations return a :class:`CVResult`; both forward selections a :class:`SelectionResult`.
Lag bases for history, coupling and event kernels: :func:`raised_cosine_log`, :func:`lagged`;
lagged leaves of an explorer encoding: :class:`LagLeaf`, :func:`with_lags`, fitted by
:func:`fit_lagged` / :func:`cross_validate_lagged` into a :class:`LaggedFit`.
The model seen in time: :func:`cross_validated_rate`, :func:`simulate_from_fit` (sequential, with
spike history), :func:`smooth_counts`.
Population decoding: :func:`bayes_decode`.
"""

from .basis import lagged, raised_cosine_log
from .binned import BinnedFit, cross_validate_grid, fit_bin_grid, regularization_path
from .cell_table import BinGrid, bin_grid
from .crossval import CVResult, SelectionResult, cross_validate, forward_select
from .decoding import bayes_decode
from .glm import GLM
from .lag_leaves import LagLeaf, with_lags
from .lagged_fit import (
    LagDesign,
    LagFilter,
    LaggedFit,
    cross_validate_lagged,
    fit_lagged,
    lag_design,
    lagged_path,
)
from .model_in_time import cross_validated_rate, simulate_from_fit, smooth_counts

__all__ = ["GLM", "BinGrid", "BinnedFit", "CVResult", "LagDesign", "LagFilter", "LagLeaf",
           "LaggedFit", "SelectionResult", "bayes_decode", "bin_grid", "cross_validate",
           "cross_validate_grid", "cross_validate_lagged", "cross_validated_rate",
           "fit_bin_grid", "fit_lagged", "forward_select", "lag_design", "lagged", "lagged_path",
           "raised_cosine_log", "regularization_path", "simulate_from_fit", "smooth_counts",
           "with_lags"]
