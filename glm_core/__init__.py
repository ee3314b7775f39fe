"""Pure JAX/numpy core of the pytree GLM explorer: data, encodings, objective, regularizers,
solvers. Never imports Panel."""
