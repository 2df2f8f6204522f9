"""Gradient diagnostics: per-example gradients and their exact fast norms, layer statistics, Jacobian spectra,
the vanishing/exploding studies and the reports that present them.

`probe` (the function; its module is jdl/diagnostics/probe.py) brings the monitor's statistics into any
training loop; `Recorder` writes them as a run directory `jdl report` renders."""

from jdl.diagnostics import recorder, report, rnn_studies, saliency, stats, studies
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
from jdl.diagnostics.probe import Probed, probe
from jdl.diagnostics.recorder import Recorder

__all__ = [
    "fast_path_coverage",
    "hidden_gradient_norms",
    "input_output_jacobian",
    "jacobian_singular_values",
    "layer_names",
    "per_example_grad_norms",
    "per_example_grads",
    "per_example_moments",
    "probe",
    "Probed",
    "Recorder",
    "recorder",
    "report",
    "rnn_studies",
    "saliency",
    "stats",
    "studies",
    "training_report",
]
