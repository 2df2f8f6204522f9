"""The training report: findings, summary, config, model, curves, gradient statistics, the examples themselves.

`training_report` builds it from a `jdl train` run directory or straight from Python (`history`,
`monitor`, `trainer`, `state`, `data`); `jdl train` and `jdl report` use the same function.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from jdl.diagnostics.report import findings as findings_lib
from jdl.diagnostics.report.examples import (  # noqa: F401  (re-exported)
    _label,
    _labels,
    _logits_fn,
    _name,
    _predictions,
    attribution_section,
)
from jdl.diagnostics.report.gradients import monitor_sections
from jdl.diagnostics.report.page import Report, Section, pyplot
from jdl.diagnostics.report.run_data import RunData, _from_python, _split_data, load_run, model_table
from jdl.diagnostics.report.run_sections import (  # noqa: F401  (re-exported)
    LOSS_SCALE_LOGS,
    _config_section,
    _curves_section,
    _model_section,
    _summary_section,
    config_rows,
)


def training_report(run_dir: str | os.PathLike | None = None, *, history: Any = None, monitor: Any = None,
                    trainer: Any = None, state: Any = None, data: Any = None, config: Mapping[str, Any] | None = None,
                    summary: Mapping[str, Any] | None = None, name: str | None = None,
                    attributions: int = 4) -> Report:
    """The training report of a run, from its directory or from Python objects.

    run_dir: a `jdl train` run directory (summary.json, metrics.csv, config.json, model.json,
    monitor.json); or, instead, history (`History` or its dict), monitor (`GradientMonitor`, its
    `to_dict()` or a monitor.json dict; None: the monitor was off), trainer, state, data (a jdl
    Dataset or a mapping/tuple of x_train, y_train, x_test, y_test), config (shown as the config
    section), summary. With state and data, the highest-norm training examples are drawn with
    their labels and predictions, and `attributions` test examples with their saliency maps.
    """
    if run_dir is None and history is None and monitor is None:
        raise ValueError("training_report needs a run_dir or Python objects (history=..., monitor=..., trainer=..., "
                         "state=..., data=...)")
    split = _split_data(data)
    if run_dir is not None:
        run = load_run(run_dir)
        if monitor is not None:
            run.monitor = dict(monitor if isinstance(monitor, Mapping) else monitor.to_dict())
        if state is not None and not run.model:
            run.model = model_table(state.params)
        if split.get("info", {}).get("num_classes"):
            run.context["num_classes"] = split["info"]["num_classes"]
    else:
        run = _from_python(history, monitor, trainer, state, split, config, summary, name)
    return build_report(run, trainer=trainer, state=state, data=split, attributions=attributions)


def build_report(run: RunData, *, trainer: Any = None, state: Any = None, data: Mapping[str, Any] | None = None,
                 attributions: int = 4) -> Report:
    """The report of a loaded run (see `training_report`)."""
    plt = pyplot()
    data = dict(data or {})
    fn = _logits_fn(trainer, state)
    top = findings_lib.merged_top_examples(run.monitor)
    examples: dict[int, dict[str, Any]] = {}
    if fn is not None and top and data.get("x_train") is not None:
        index = np.asarray([t["index"] for t in top if t["index"] < len(data["x_train"])], int)
        if index.size:
            predicted = _predictions(fn, np.asarray(data["x_train"])[index])
            for k, i in enumerate(index):
                examples[int(i)] = {"label": _label(data.get("y_train"), i),
                                    "prediction": int(predicted[k]) if predicted is not None else None}
    run.context["examples"] = {k: v for k, v in examples.items() if v["prediction"] is not None}
    facts = findings_lib.RunFacts(run.summary, run.curves, run.monitor, run.context)
    findings = findings_lib.training_findings(facts)
    report = Report(f"Training report: {run.name}", findings=[str(f) for f in findings],
                    data={"summary": run.summary, "config": run.config, "curves": run.curves, "model": run.model,
                          "monitor": run.monitor, "top_examples": top,
                          "examples": {str(k): v for k, v in examples.items()}})
    report.sections.append(_summary_section(run))
    report.sections.append(_config_section(run))
    if run.model:
        report.sections.append(_model_section(run))
    if run.curves.get("epoch"):
        report.sections.append(_curves_section(plt, run))
    if run.monitor.get("records"):
        report.sections += monitor_sections(plt, run.monitor, run.context, data, examples)
    else:
        report.sections.append(Section("Gradient diagnostics", paragraphs=[
            "The gradient monitor was off for this run (no monitor.json), so there are no per-layer gradient "
            "statistics; the curves above come from the epoch logs."]))
    if fn is not None and attributions and data.get("x_test") is not None and len(data["x_test"]):
        section = attribution_section(fn, np.asarray(data["x_test"])[:attributions],
                                      _labels(data.get("y_test"), attributions), (data.get("info") or {}))
        if section is not None:
            report.sections.append(section)
    return report
