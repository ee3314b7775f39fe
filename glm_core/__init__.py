"""Pure JAX/numpy core of the pytree GLM explorer: data, encodings, objective, regularizers,
solvers. Never imports Panel."""

from .crossval import cross_validate, forward_select
from .glm import GLM

__all__ = ["GLM", "cross_validate", "forward_select"]
