"""Ready-made models built from jdl.nn (Flax Linen modules)."""

from jdl.models.mlp import MLP

__all__ = ["MLP"]
