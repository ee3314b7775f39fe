"""Poisson log-likelihood and McFadden pseudo-R2, as NeMoS scores them."""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import gammaln, xlogy


def log_likelihood(y, rate):
    """Mean over samples of the Poisson log-likelihood, log(y!) included."""
    return jnp.mean(xlogy(y, rate) - rate - gammaln(y + 1.0))


def pseudo_r2_mcfadden(ll_model, ll_null):
    """1 - LL(model) / LL(intercept-only model)."""
    return 1.0 - ll_model / ll_null
