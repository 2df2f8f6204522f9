"""Gradient diagnostics: per-example gradients and their exact fast norms."""

from jdl.diagnostics.per_example import (
    fast_path_coverage,
    layer_names,
    per_example_grad_norms,
    per_example_grads,
    per_example_moments,
)

__all__ = ["fast_path_coverage", "layer_names", "per_example_grad_norms", "per_example_grads", "per_example_moments"]
