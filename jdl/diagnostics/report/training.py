"""The training report of a run directory: summary, model, curves, gradient statistics, findings."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from jdl.diagnostics.report.page import Report, Section, pyplot, figure_png


def _read_csv(path: Path) -> dict[str, list[float]]:
    import csv

    columns: dict[str, list[float]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                try:
                    columns.setdefault(key, []).append(float(value))
                except (TypeError, ValueError):
                    columns.setdefault(key, []).append(float("nan"))
    return columns


def model_table(params: Any) -> list[dict[str, Any]]:
    """One row per layer: name, parameter shapes, parameter count."""
    import jax

    from jdl._tree import layer_name

    rows: dict[str, dict[str, Any]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = layer_name(path)
        row = rows.setdefault(name, {"layer": name, "shapes": [], "parameters": 0})
        row["shapes"].append(f"{str(getattr(path[-1], 'key', path[-1]))} {tuple(np.shape(leaf))}")
        row["parameters"] += int(np.size(leaf))
    return list(rows.values())


def training_report(run_dir: str | os.PathLike) -> Report:
    """The report of a `jdl train` run directory: summary, model, curves, gradient diagnostics, findings.

    Reads config.json, summary.json, metrics.csv, and when present model.json (layer table) and
    monitor.json (what `GradientMonitor` recorded).
    """
    plt = pyplot()
    run_dir = Path(run_dir)
    if not (run_dir / "summary.json").is_file():
        raise FileNotFoundError(f"run_dir must be a jdl train run directory with summary.json, got {run_dir}")
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
    curves = _read_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else {}
    layers = json.loads((run_dir / "model.json").read_text()) if (run_dir / "model.json").is_file() else []
    monitor = json.loads((run_dir / "monitor.json").read_text()) if (run_dir / "monitor.json").is_file() else {}
    report = Report(f"Training report: {summary.get('name', run_dir.name)}",
                    data={"summary": summary, "config": config, "curves": curves, "model": layers, "monitor": monitor})

    section = Section("Run summary", paragraphs=[
        f"{summary.get('epochs_run')} epochs run; best epoch {summary.get('best_epoch')} by {summary.get('best_monitor')}; "
        f"{summary.get('seconds', float('nan')):.1f} s of training." if "seconds" in summary else
        f"{summary.get('epochs_run')} epochs run; best epoch {summary.get('best_epoch')} by {summary.get('best_monitor')}."])
    metrics = sorted({k for part in ("train", "validation", "test") for k in summary.get(part, {})})
    section.table = (["split", *metrics], [[part, *[summary[part].get(m, "") for m in metrics]]
                                            for part in ("train", "validation", "test") if summary.get(part)])
    report.sections.append(section)

    if layers:
        total = sum(row["parameters"] for row in layers)
        report.sections.append(Section("Model", paragraphs=[f"{len(layers)} layers with parameters, {total:,} parameters in all."],
                                       table=(["layer", "parameters", "shapes"],
                                              [[r["layer"], r["parameters"], ", ".join(r["shapes"])] for r in layers])))

    if curves.get("epoch"):
        section = Section("Training curves", paragraphs=["Loss and metrics per epoch on the training data and, "
                                                         "when there is one, the validation split."])
        epochs = [int(e) + 1 for e in curves["epoch"]]
        names = [k for k in curves if k not in ("epoch", "lr") and not k.startswith("val_")]
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
        for ax, name in zip(axes[0], names):
            ax.plot(epochs, curves[name], label=f"train {name}")
            if f"val_{name}" in curves:
                ax.plot(epochs, curves[f"val_{name}"], label=f"validation {name}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.legend()
            ax.grid(True, alpha=0.3)
        section.figures.append((figure_png(fig), "training curves"))
        if "lr" in curves:
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.plot(epochs, curves["lr"])
            ax.set_xlabel("epoch")
            ax.set_ylabel("learning rate")
            ax.grid(True, alpha=0.3)
            section.figures.append((figure_png(fig), "learning rate per epoch"))
        report.sections.append(section)

    records = monitor.get("records", [])
    if records:
        report.sections += _monitor_sections(plt, monitor)
    report.findings = _training_findings(summary, curves, monitor)
    return report


def _monitor_sections(plt: Any, monitor: dict[str, Any]) -> list[Section]:
    records = monitor["records"]
    steps = [r["step"] for r in records]
    layers = list(records[0]["grad_norm"])
    sections = []
    grid = np.asarray([[r["grad_norm"].get(name, np.nan) for r in records] for name in layers], dtype=float)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(layers) + 1.8))
    image = ax.imshow(np.log10(np.maximum(grid, 1e-30)), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(layers)), labels=layers, fontsize=8)
    ticks = np.linspace(0, len(steps) - 1, min(len(steps), 8)).astype(int)
    ax.set_xticks(ticks, labels=[steps[i] for i in ticks])
    ax.set_xlabel("training step")
    fig.colorbar(image, ax=ax, label="log10 ‖∂L/∂θ_layer‖")
    section = Section("Gradient norms per layer", paragraphs=[
        f"Recorded inside the compiled training step every {monitor.get('every')} steps. Rows are layers (input "
        "first); a row much darker than the others is a layer that barely learns."])
    section.figures.append((figure_png(fig), "per-layer gradient norm over training (log10)"))
    last = records[-1]
    section.table = (["layer", "grad norm", "param norm", "update / param", *(["GSNR"] if "gsnr" in last else [])],
                     [[name, last["grad_norm"][name], last["param_norm"][name], last["update_ratio"][name],
                       *([last["gsnr"][name]] if "gsnr" in last else [])] for name in layers])
    section.paragraphs.append(f"Table: the last monitored step ({last['step']}).")
    sections.append(section)

    if any("example_norm" in r for r in records):
        norms = np.concatenate([np.asarray(r.get("example_norm", []), float) for r in records])
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.hist(norms, bins=50, color="#4a7ab7")
        ax.set_xlabel("per-example gradient norm ‖∇θ ℓ_i‖")
        ax.set_ylabel("examples (all monitored steps)")
        ax.set_yscale("log")
        section = Section("Per-example gradient norms", paragraphs=[
            "Exact per-example gradient norms of every monitored batch. A long right tail is a handful of examples "
            "the model finds hardest: often mislabeled ones. The table lists the largest."])
        section.figures.append((figure_png(fig), "histogram of per-example gradient norms"))
        section.table = (["training example index", "gradient norm", "step"],
                         [[t["index"], t["norm"], t["step"]] for t in monitor.get("top_examples", [])])
        sections.append(section)

    if any("noise_scale" in r for r in records):
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        for name in layers:
            axes[0].semilogy(steps, [r["gsnr"][name] for r in records], label=name)
        axes[0].set_xlabel("training step")
        axes[0].set_ylabel("GSNR = E[g]² / Var[g] (layer mean)")
        axes[0].legend(fontsize=7)
        axes[1].semilogy(steps, [r["noise_scale"] for r in records])
        axes[1].set_xlabel("training step")
        axes[1].set_ylabel("noise scale B_simple (examples)")
        section = Section("Gradient signal and noise", paragraphs=[
            "GSNR per layer (Liu et al. 2020) and the simple gradient noise scale B_simple = tr(Σ)/‖G‖² "
            "(McCandlish et al. 2018): batches much smaller than B_simple are noise-dominated, much larger waste compute."])
        section.figures.append((figure_png(fig), "GSNR and gradient noise scale over training"))
        sections.append(section)

    if any(r.get("activations") for r in records):
        names = list(records[-1]["activations"])
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        for name in names:
            axes[0].plot(steps, [r["activations"][name]["saturated"] for r in records], label=name)
            axes[1].plot(steps, [r["activations"][name]["dead"] for r in records], label=name)
        axes[0].set_ylabel("fraction of saturated units")
        axes[1].set_ylabel("fraction of dead units")
        for ax in axes:
            ax.set_xlabel("training step")
            ax.set_ylim(-0.02, 1.02)
            ax.legend(fontsize=7)
        section = Section("Activation statistics", paragraphs=[
            "Hidden layers' activations: saturated sigmoid/tanh units sit on a flat end (gradient ≈ 0); dead ReLUs "
            "output 0 for every example of the batch."])
        section.figures.append((figure_png(fig), "saturation and dead units over training"))
        act = records[-1]["activations"]
        section.table = (["layer", "mean", "std", "saturated", "dead"],
                         [[n, act[n]["mean"], act[n]["std"], act[n]["saturated"], act[n]["dead"]] for n in names])
        sections.append(section)
    return sections


def _training_findings(summary: dict[str, Any], curves: dict[str, list[float]], monitor: dict[str, Any]) -> list[str]:
    findings = []
    if summary.get("stop_reason"):
        findings.append(summary["stop_reason"])
    findings += [w[0].upper() + w[1:] + "." for w in monitor.get("warnings", [])]
    train, val = summary.get("train", {}), summary.get("validation", {})
    if "loss" in train and "loss" in val and val["loss"] > 1.5 * train["loss"] + 0.05:
        findings.append(f"The validation loss ({val['loss']:.3g}) is well above the training loss ({train['loss']:.3g}): "
                        "the model overfits (high variance); regularize, augment, or stop earlier.")
    records = monitor.get("records", [])
    if records:
        last = records[-1]["grad_norm"]
        smallest, largest = min(last, key=last.get), max(last, key=last.get)
        findings.append(f"At the last monitored step the largest gradient is in {largest} ({last[largest]:.2g}) and the "
                        f"smallest in {smallest} ({last[smallest]:.2g}).")
        scales = [r["noise_scale"] for r in records if "noise_scale" in r]
        if scales:
            final = scales[-1]
            if isinstance(final, (int, float)) and math.isfinite(final):
                findings.append(f"Gradient noise scale at the end: B_simple ≈ {final:.3g} examples.")
            else:
                findings.append("At the end the batch's mean gradient is within its noise (B_simple not measurable): "
                                "training has converged or needs larger batches to make progress.")
        top = monitor.get("top_examples", [])
        if top:
            findings.append("Training examples with the largest per-example gradients (check their labels): "
                            + ", ".join(str(t["index"]) for t in top[:5]) + ".")
    if not findings:
        findings.append("No problem detected.")
    return findings
