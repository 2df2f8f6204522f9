"""Gradient diagnostics: per-example gradients and their exact fast norms, layer statistics, Jacobian spectra,
the vanishing/exploding studies and the reports that present them."""

from jdl.diagnostics import report, rnn_studies, saliency, stats, studies
from jdl.diagnostics.jacobian import input_output_jacobian, jacobian_singular_values
from jdl.diagnostics.report import training_report
from jdl.diagnostics.rnn_studies import hidden_gradient_norms
from jdl.diagnostics.per_example import (
    fast_path_coverage,
    layer_names,
    per_example_grad_norms,
    per_example_grads,
    per_example_moments,
)

__all__ = [
    "fast_path_coverage",
    "hidden_gradient_norms",
    "input_output_jacobian",
    "jacobian_singular_values",
    "layer_names",
    "per_example_grad_norms",
    "per_example_grads",
    "per_example_moments",
    "report",
    "rnn_studies",
    "saliency",
    "stats",
    "studies",
    "training_report",
]
