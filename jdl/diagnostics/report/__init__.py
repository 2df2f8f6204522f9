"""Reports a person reads: one self-contained HTML file (plots inline as PNG) plus a JSON file with every number."""

from jdl.diagnostics.report.page import Report, Section, figure_png
from jdl.diagnostics.report.papers import (
    glorot_findings,
    glorot_report,
    he_findings,
    he_report,
    noise_scale_findings,
    noise_scale_report,
    pascanu_findings,
    pascanu_report,
)
from jdl.diagnostics.report.studies import (
    depth_findings,
    depth_report,
    init_report,
    memory_findings,
    memory_report,
    rnn_findings,
    rnn_report,
)
from jdl.diagnostics.report.training import model_table, training_report

__all__ = [
    "Report",
    "Section",
    "depth_findings",
    "depth_report",
    "figure_png",
    "glorot_findings",
    "glorot_report",
    "he_findings",
    "he_report",
    "init_report",
    "memory_findings",
    "memory_report",
    "model_table",
    "noise_scale_findings",
    "noise_scale_report",
    "pascanu_findings",
    "pascanu_report",
    "rnn_findings",
    "rnn_report",
    "training_report",
]
