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
from jdl.diagnostics.report.compare import compare_report
from jdl.diagnostics.report.explain import explain_report
from jdl.diagnostics.report.findings import Finding, RunFacts, noise_scale_curve, training_findings
from jdl.diagnostics.report.training import RunData, load_run, model_table, training_report

__all__ = [
    "Finding",
    "Report",
    "RunData",
    "RunFacts",
    "compare_report",
    "explain_report",
    "load_run",
    "noise_scale_curve",
    "training_findings",
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
