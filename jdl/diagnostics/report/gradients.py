"""The training report's sections of a monitor.json: per-layer gradient norms, per-example norms and the
examples behind them, gradient signal and noise, activation statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from jdl.diagnostics.report import findings as findings_lib
from jdl.diagnostics.report import views
from jdl.diagnostics.report.examples import _name
from jdl.diagnostics.report.page import Section, figure_png, legend_outside, series_style


def monitor_sections(plt: Any, monitor: Mapping[str, Any], context: Mapping[str, Any],
                     data: Mapping[str, Any] | None = None, examples: Mapping[int, Mapping[str, Any]] | None = None
                     ) -> list[Section]:
    """Sections of a monitor.json: per-layer gradient norms, per-example norms and examples, noise, activations."""
    records = monitor["records"]
    steps = [r["step"] for r in records]
    layers = findings_lib.layer_order(monitor)
    sections = []
    grid = np.asarray([[r["grad_norm"].get(name, np.nan) for r in records] for name in layers], dtype=float)
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(layers) + 1.6))
    image = ax.imshow(np.log10(np.maximum(grid, 1e-30)), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(layers)), labels=layers, fontsize=7)
    ticks = np.linspace(0, len(steps) - 1, min(len(steps), 8)).astype(int)
    ax.set_xticks(ticks, labels=[steps[i] for i in ticks])
    ax.set_xlabel("training step")
    fig.colorbar(image, ax=ax, label="log10 ‖∂L/∂θ_layer‖")
    section = Section("Gradient norms per layer", paragraphs=[
        f"Recorded inside the compiled training step every {monitor.get('every')} steps. Rows are layers in the order "
        "the network calls them (input first); a row much darker than the others is a layer that barely learns."])
    section.figures.append((figure_png(fig), "per-layer gradient norm over training (log10)"))
    last = records[-1]
    section.table = (["layer", "grad norm", "param norm", "update / param", *(["GSNR"] if "gsnr" in last else [])],
                     [[name, last["grad_norm"].get(name), last.get("param_norm", {}).get(name),
                       last.get("update_ratio", {}).get(name), *([last["gsnr"].get(name)] if "gsnr" in last else [])]
                      for name in layers])
    section.paragraphs.append(f"Table: the last monitored step ({last['step']}).")
    sections.append(section)

    if any("example_norm" in r for r in records) or monitor.get("top_examples"):
        sections.append(_examples_section(plt, monitor, data or {}, examples or {}))
    if any("noise_scale" in r or "gsnr" in r for r in records):
        sections.append(_noise_section(plt, monitor, layers, context))
    if any(r.get("activations") for r in records):
        section = _activation_section(plt, records, context)
        if section is not None:
            sections.append(section)
    return sections


def _examples_section(plt: Any, monitor: Mapping[str, Any], data: Mapping[str, Any],
                      examples: Mapping[int, Mapping[str, Any]]) -> Section:
    records = monitor["records"]
    section = Section("Per-example gradient norms", paragraphs=[
        "Exact per-example gradient norms of every monitored batch. A long right tail is a handful of examples the "
        "model finds hardest, often mislabeled ones; they are shown below (repeats merged), red when the model's "
        "prediction differs from the label."])
    norms = np.concatenate([np.asarray(r.get("example_norm", []), float) for r in records]) if records else np.zeros(0)
    hist = monitor.get("example_norm_histogram") or monitor.get("example_histogram")
    if hist and sum(hist.get("counts", [])) > 0:
        fig, ax = plt.subplots(figsize=(7, 3.0))
        counts, edges = np.asarray(hist["counts"], float), np.asarray(hist["edges"], float)
        used = np.flatnonzero(counts)
        counts, edges = counts[used[0]:used[-1] + 1], edges[used[0]:used[-1] + 2]  # the bins that hold norms
        ax.stairs(counts, edges, fill=True, color="#4a7ab7")
        if edges[0] > 0:
            ax.set_xscale("log")
    elif norms.size:
        fig, ax = plt.subplots(figsize=(7, 3.0))
        ax.hist(norms, bins=50, color="#4a7ab7")
    else:
        fig = None
    if fig is not None:
        ax.set_xlabel("per-example gradient norm ‖∇θ ℓ_i‖")
        ax.set_ylabel("examples (all monitored steps)")
        ax.set_yscale("log")
        section.figures.append((figure_png(fig), "histogram of per-example gradient norms"))
    top = findings_lib.merged_top_examples(monitor)
    x, vocabulary = data.get("x_train"), (data.get("info") or {}).get("vocabulary")
    class_names = (data.get("info") or {}).get("class_names")
    cards = []
    for row in top:
        i = row["index"]
        lines = [f"#{i}  norm {row['norm']:.3g}"]
        lines.append(f"seen {row['count']}×" + (f", epoch {', '.join(map(str, row['epochs'][:4]))}" if row["epochs"]
                                                 else f", step {', '.join(map(str, row['steps'][:4]))}"))
        known = examples.get(i, {})
        wrong = False
        if known.get("label") is not None:
            label = _name(known["label"], class_names)
            if known.get("prediction") is not None:
                prediction = _name(known["prediction"], class_names)
                wrong = known["prediction"] != known["label"]
                lines.append(f"label {label} → predicted {prediction}")
            else:
                lines.append(f"label {label}")
        content = views.example_html(np.asarray(x)[i], vocabulary) if x is not None and i < len(x) else ""
        cards.append(views.card(content, lines, wrong))
    if cards:
        section.blocks.append(views.gallery(cards))
    section.table = (["training example", "largest norm", "times in top-k", "epochs", "steps"],
                     [[t["index"], t["norm"], t["count"], ", ".join(map(str, t["epochs"])) or "—",
                       ", ".join(map(str, t["steps"][:6]))] for t in top])
    return section


def _noise_section(plt: Any, monitor: Mapping[str, Any], layers: list[str], context: Mapping[str, Any]) -> Section:
    records = monitor["records"]
    steps = [r["step"] for r in records]
    curve = findings_lib.noise_scale_curve(records)
    with_gsnr = any("gsnr" in r for r in records)
    fig, axes = plt.subplots(1, 2 if with_gsnr else 1, figsize=(13, 3.6), squeeze=False)
    axes = axes[0]
    if with_gsnr:
        for i, name in enumerate(layers):
            axes[0].semilogy(steps, [r.get("gsnr", {}).get(name, np.nan) for r in records], label=name,
                             linewidth=1, **series_style(i))
        axes[0].set_xlabel("training step")
        axes[0].set_ylabel("GSNR = E[g]² / Var[g] (layer mean)")
        legend_outside(axes[0])
    ax = axes[-1]
    if curve["steps"]:
        ax.semilogy(curve["steps"], curve["per_step"], color="#1f77b4", alpha=0.25, linewidth=0.8, label="per step")
        ax.semilogy(curve["steps"], curve["running"], color="#1f77b4", linewidth=2, label="running estimate")
        batch = context.get("batch_size")
        if isinstance(batch, int):
            ax.axhline(batch, color="#7f7f7f", linestyle="--", linewidth=1, label=f"batch size {batch}")
        ax.set_xlabel("training step")
        ax.set_ylabel("noise scale B_simple (examples)")
        legend_outside(ax)
    fig.tight_layout()
    finite = [b for b in curve["running"] if math.isfinite(b)]
    section = Section("Gradient signal and noise", paragraphs=[
        "GSNR per layer (Liu et al. 2020) and the simple gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et "
        f"al. 2018), estimated by {curve['method']}; the per-step ratios are drawn faintly. Batches much smaller than "
        "B_simple are noise-dominated, much larger ones waste compute."
        + (f" Final estimate: B_simple ≈ {finite[-1]:.3g}." if finite else "")])
    section.figures.append((figure_png(fig), "GSNR and gradient noise scale over training"))
    return section


def _activation_section(plt: Any, records: list[dict[str, Any]], context: Mapping[str, Any]) -> Section | None:
    names = list(records[-1]["activations"])
    steps = [r["step"] for r in records]
    activation = context.get("activation")
    panels = []
    for key, label, applies in (("saturated", "fraction of saturated units", findings_lib.BOUNDED),
                                ("dead", "fraction of dead units", findings_lib.RELU_FAMILY)):
        values = np.asarray([[r["activations"].get(n, {}).get(key, np.nan) for r in records] for n in names], float)
        constant = np.nanmax(values) - np.nanmin(values) < 1e-6 if np.isfinite(values).any() else True
        if (activation is None or activation in applies) and not constant:
            panels.append((key, label, values))
    omitted = "saturation (applies to sigmoid/tanh)" if not any(p[0] == "saturated" for p in panels) else None
    omitted_dead = "dead units (applies to ReLU)" if not any(p[0] == "dead" for p in panels) else None
    act = records[-1]["activations"]
    section = Section("Activation statistics", paragraphs=[
        "Hidden layers' activations: saturated sigmoid/tanh units sit on a flat end (gradient ≈ 0); dead ReLUs output "
        "0 for every example of the batch."
        + (" Not plotted, being constant or not applicable to "
           f"{activation or 'this model'}: {', '.join(x for x in (omitted, omitted_dead) if x)}."
           if omitted or omitted_dead else "")])
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 3.4), squeeze=False)
        for ax, (key, label, values) in zip(axes[0], panels):
            for i, name in enumerate(names):
                ax.plot(steps, values[i], label=name, linewidth=1, **series_style(i))
            ax.set_ylabel(label)
            ax.set_xlabel("training step")
            ax.set_ylim(-0.02, 1.02)
            legend_outside(ax)
        fig.tight_layout()
        section.figures.append((figure_png(fig), "saturation / dead units over training"))
    section.table = (["layer", "mean", "std", "saturated", "dead"],
                     [[n, act[n]["mean"], act[n]["std"], act[n]["saturated"], act[n]["dead"]] for n in names])
    return section
