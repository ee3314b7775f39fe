"""Panel widgets of the pytree GLM explorer; ``explorer()`` shows it in a notebook."""

from .page import explorer

__all__ = ["explorer"]
