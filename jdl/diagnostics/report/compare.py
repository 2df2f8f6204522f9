"""Runs side by side (`jdl report RUN_A RUN_B ...`): config differences, curves overlaid, per-layer gradient
profiles (saying which layers match), and the findings diffed. Runs of different models are allowed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jdl.diagnostics.report import findings as findings_lib
from jdl.diagnostics.report.page import Report, Section, figure_png, legend_outside, pyplot, series_style
from jdl.diagnostics.report.training import RunData, config_rows, load_run


def _unique_names(runs: Sequence[RunData]) -> list[str]:
    names, seen = [], {}
    for run in runs:
        seen[run.name] = seen.get(run.name, 0) + 1
        names.append(run.name if seen[run.name] == 1 else f"{run.name} ({seen[run.name]})")
    return names


def layer_profile(monitor: dict[str, Any]) -> dict[str, float]:
    """Median gradient norm per layer over the last quarter of the monitored steps, in network order."""
    records = monitor.get("records") or []
    tail = records[-max(1, len(records) // 4):]
    return {name: float(np.median([r["grad_norm"][name] for r in tail if name in r.get("grad_norm", {})]))
            for name in findings_lib.layer_order(monitor)}


def compare_report(runs: Sequence[str | os.PathLike | RunData], names: Sequence[str] | None = None) -> Report:
    """Compare two or more runs (run directories or loaded `RunData`) in one page."""
    if isinstance(runs, (str, os.PathLike)) or len(runs) < 2:
        raise ValueError(f"compare_report needs at least two runs, got {runs!r}")
    loaded = [r if isinstance(r, RunData) else load_run(r) for r in runs]
    labels = list(names) if names is not None else _unique_names(loaded)
    if len(labels) != len(loaded):
        raise ValueError(f"names must give one name per run ({len(loaded)}), got {len(labels)}")
    plt = pyplot()
    report = Report("Comparison: " + " vs ".join(labels), data={"runs": labels})

    rows: dict[str, list[Any]] = {}
    for k, run in enumerate(loaded):
        for key, value in config_rows(run.config):
            rows.setdefault(key, ["—"] * len(loaded))[k] = value
    differing = [key for key, values in rows.items() if len({str(v) for v in values}) > 1]
    section = Section("Config", paragraphs=[
        ("Settings that differ: " + ", ".join(differing) + "." if differing else "The recorded configs are the same.")])
    section.table = (["setting", *labels, "differs"], [[key, *values, "yes" if key in differing else ""]
                                                       for key, values in rows.items()])
    report.sections.append(section)

    metrics = sorted({m for run in loaded for part in ("train", "validation", "test") for m in (run.summary.get(part) or {})})
    table = []
    for label, run in zip(labels, loaded):
        s = run.summary
        table.append([label, s.get("epochs_run", len(run.curves.get("epoch", []))), s.get("best_epoch"),
                      *[(s.get("test") or s.get("validation") or {}).get(m, "—") for m in metrics]])
    report.sections.append(Section("Outcome", paragraphs=["Best epoch counted from 1; metrics on the test split "
                                                          "(validation when there is no test)."],
                                   table=(["run", "epochs", "best epoch", *metrics], table)))

    curve_names = [k for k in dict.fromkeys(k for run in loaded for k in run.curves)
                   if k not in ("epoch", "lr", "learning_rate") and not k.startswith("val_")]
    if curve_names:
        fig, axes = plt.subplots(1, len(curve_names), figsize=(5.6 * len(curve_names), 3.4), squeeze=False)
        for ax, name in zip(axes[0], curve_names):
            for k, (label, run) in enumerate(zip(labels, loaded)):
                style = series_style(k)
                if name in run.curves:
                    ax.plot(run.curves["epoch"], run.curves[name], color=style["color"], label=f"{label} train")
                if f"val_{name}" in run.curves:
                    ax.plot(run.curves["epoch"], run.curves[f"val_{name}"], color=style["color"], linestyle="--",
                            label=f"{label} validation")
                best = run.summary.get("best_epoch")
                if best is not None and name == "loss":
                    ax.axvline(best, color=style["color"], linestyle=":", linewidth=1)
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.grid(True, alpha=0.3)
            legend_outside(ax)
        fig.tight_layout()
        section = Section("Curves", paragraphs=["Each run in its own colour: training solid, validation dashed; the "
                                                 "dotted line on the loss marks each run's best epoch."])
        section.figures.append((figure_png(fig), "curves of all runs overlaid"))
        report.sections.append(section)

    report.sections.append(_layer_section(plt, loaded, labels))

    per_run = {label: findings_lib.training_findings(findings_lib.RunFacts(r.summary, r.curves, r.monitor, r.context))
               for label, r in zip(labels, loaded)}
    by_key = {label: {f.key: f for f in found} for label, found in per_run.items()}
    diff = findings_lib.diff_findings(per_run)
    rows = []
    for key, have in diff:
        status = "all runs" if len(have) == len(loaded) else "only " + ", ".join(have)
        rows.append([key, status, *[str(by_key[label][key]) if key in by_key[label] else "—" for label in labels]])
    report.sections.append(Section("Findings compared", paragraphs=[
        "Each run's findings by topic; topics that only some runs have come first."],
        table=(["topic", "in", *labels], rows)))
    report.findings = [f"{key}: only in {', '.join(have)}" for key, have in diff if len(have) < len(loaded)]
    report.data["findings"] = {label: [str(f) for f in found] for label, found in per_run.items()}
    return report


def _layer_section(plt: Any, loaded: Sequence[RunData], labels: Sequence[str]) -> Section:
    profiles = [layer_profile(run.monitor) for run in loaded]
    shapes = [{row["layer"]: tuple(row["shapes"]) for row in run.model} for run in loaded]
    order = list(dict.fromkeys(name for run, profile in zip(loaded, profiles)
                               for name in (profile or [row["layer"] for row in run.model])))

    def matches(name: str) -> bool:
        present = [name in (p or s) for p, s in zip(profiles, shapes)]
        known = [s[name] for s in shapes if name in s]
        return all(present) and len(set(known)) <= 1

    matched = [name for name in order if matches(name)]
    off = [k for k, p in enumerate(profiles) if not p]
    section = Section("Per-layer gradient profiles", paragraphs=[
        f"{len(matched)} of {len(order)} layers match across the runs (same name and, where the model table is "
        "known, the same parameter shapes)"
        + (": " + ", ".join(matched) if 0 < len(matched) <= 12 else "") + "."
        + (" The monitor was off for " + ", ".join(labels[k] for k in off) + "." if off else "")
        + " Each line is one run's median gradient norm per layer over its last quarter of monitored steps, layers "
          "in network order."])
    if any(profiles):
        fig, ax = plt.subplots(figsize=(10, 3.6))
        for k, (label, profile) in enumerate(zip(labels, profiles)):
            if profile:
                ax.semilogy(range(len(profile)), list(profile.values()), marker="o", label=label, **series_style(k))
        longest = max(profiles, key=len)
        ax.set_xticks(range(len(longest)), labels=list(longest), rotation=60, fontsize=7, ha="right")
        ax.set_xlabel("layer (network order; ticks: the deepest run's names)")
        ax.set_ylabel("gradient norm")
        ax.grid(True, alpha=0.3)
        legend_outside(ax)
        section.figures.append((figure_png(fig), "per-layer gradient profile of each run"))
    section.table = (["layer", *labels, "matches"],
                     [[name, *[p.get(name, "—") if p else "—" for p in profiles], "yes" if name in matched else "no"]
                      for name in order])
    return section
