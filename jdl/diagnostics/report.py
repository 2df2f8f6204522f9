"""Reports a person reads: one self-contained HTML file (plots inline as PNG) plus a JSON file with every number."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jdl import _io


@dataclasses.dataclass
class Section:
    """A titled part of a report: paragraphs, a table (header, rows) and figures (PNG bytes, caption)."""

    title: str
    paragraphs: list[str] = dataclasses.field(default_factory=list)
    table: tuple[list[str], list[list[Any]]] | None = None
    figures: list[tuple[bytes, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Report:
    """A report: title, sections, plain-language findings, and `data` (every number, for report.json)."""

    title: str
    sections: list[Section] = dataclasses.field(default_factory=list)
    findings: list[str] = dataclasses.field(default_factory=list)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def html(self) -> str:
        """The whole report as one HTML document (no external resources)."""
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
                 f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>"]
        if self.findings:
            parts.append("<section id='findings'><h2>Findings</h2><ul>")
            parts += [f"<li>{html.escape(f)}</li>" for f in self.findings]
            parts.append("</ul></section>")
        for section in self.sections:
            parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
            parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
            if section.table is not None:
                header, rows = section.table
                parts.append("<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
                for row in rows:
                    parts.append("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>")
                parts.append("</table>")
            for png, caption in section.figures:
                data = base64.b64encode(png).decode("ascii")
                parts.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
            parts.append("</section>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def save(self, directory: str | os.PathLike, name: str = "report") -> tuple[Path, Path]:
        """Write DIRECTORY/NAME.html and DIRECTORY/NAME.json atomically; returns both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        page, numbers = directory / f"{name}.html", directory / f"{name}.json"
        body = {"title": self.title, "findings": self.findings, **self.data}
        _io.write_json(numbers, body)
        _io.atomic_write_text(page, self.html())
        return page, numbers


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "h1{border-bottom:2px solid #444}h2{margin-top:1.6em;border-bottom:1px solid #ccc}"
        "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
        "th{background:#eee}figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:.9em}"
        "#findings{background:#fff8e1;padding:.2em 1em;border-left:4px solid #f0a500}")


def figure_png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# -- the studies ----------------------------------------------------------------------------------


def depth_report(result: dict[str, Any]) -> Report:
    """Report of `studies.depth_study`: per-layer gradient norms by configuration, and the first/last ratios."""
    plt = _pyplot()
    records = result["records"]
    report = Report("Vanishing and exploding gradients through depth", data=result)
    groups: dict[tuple[bool, bool], list[dict]] = {}
    for r in records:
        groups.setdefault((r["batch_norm"], r["residual"]), []).append(r)
    for (bn, res), group in groups.items():
        depths = sorted({r["depth"] for r in group})
        deepest = [r for r in group if r["depth"] == depths[-1]]
        fig, ax = plt.subplots(figsize=(9, 5))
        for r in deepest:
            ax.semilogy(range(len(r["init_norms"])), r["init_norms"], marker=".", label=f"{r['activation']} + {r['init']}")
        ax.set_xlabel("layer (0 = input layer, last = output head)")
        ax.set_ylabel("‖∂L/∂W‖ at initialization (log scale)")
        ax.set_title(f"depth {depths[-1]}, batch norm {'on' if bn else 'off'}, residual {'on' if res else 'off'}")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(True, which="both", alpha=0.3)
        section = Section(f"Batch norm {'on' if bn else 'off'}, residual {'on' if res else 'off'}",
                          paragraphs=["Each line is one network's gradient norm per weight layer at initialization. "
                                      "A line rising steeply to the right means the first layers receive orders of "
                                      "magnitude less gradient than the last (vanishing); a line far above 1 explodes."])
        section.figures.append((figure_png(fig), f"per-layer gradient norms, depth {depths[-1]}"))
        header = ["activation", "init", *[f"depth {d}" for d in depths]]
        rows = []
        for act in dict.fromkeys(r["activation"] for r in group):
            for init in dict.fromkeys(r["init"] for r in group):
                by_depth = {r["depth"]: r["first_to_last"] for r in group if r["activation"] == act and r["init"] == init}
                if by_depth:
                    rows.append([act, init, *[by_depth.get(d, "") for d in depths]])
        section.table = (header, rows)
        section.paragraphs.append("Table: ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖ at initialization (1 is balanced; "
                                  "1e-6 means the first layer learns a million times slower).")
        if result.get("steps"):
            fig, ax = plt.subplots(figsize=(9, 4))
            for r in deepest:
                ax.plot(r["losses"], label=f"{r['activation']} + {r['init']}")
            ax.set_xlabel("SGD step")
            ax.set_ylabel("training loss (cross-entropy)")
            ax.set_yscale("log")
            ax.legend(fontsize=7, ncol=2)
            section.figures.append((figure_png(fig), f"training loss, depth {depths[-1]}"))
        report.sections.append(section)
    report.findings = depth_findings(records)
    return report


def depth_findings(records: Sequence[dict[str, Any]]) -> list[str]:
    """Plain-language findings: where gradients vanish or explode, and which configurations are balanced."""
    findings = []
    for r in records:
        ratio = r["first_to_last"]
        name = (f"{r['activation']} + {r['init']} init, depth {r['depth']}"
                f"{', batch norm' if r['batch_norm'] else ''}{', residual' if r['residual'] else ''}")
        biggest = max(r["init_norms"])
        if not math.isfinite(ratio) or not math.isfinite(biggest):
            findings.append(f"{name}: the gradient is not finite at initialization.")
        elif ratio < 1e-3:
            findings.append(f"{name}: vanishing — the first layer gets {ratio:.1e} of the last layer's gradient.")
        elif biggest > 1e3:
            findings.append(f"{name}: exploding — gradient norms reach {biggest:.1e}; clip gradients or shrink the init.")
        elif biggest < 1e-3:
            findings.append(f"{name}: every layer's gradient is tiny (at most {biggest:.1e}): the signal dies out with depth.")
        if r.get("finite") is False:
            findings.append(f"{name}: training diverged (non-finite loss).")
    configs: dict[str, list[bool]] = {}
    for r in records:
        ok = 1e-2 <= r["first_to_last"] <= 1e2 and 1e-3 <= max(r["init_norms"]) <= 1e3
        configs.setdefault(f"{r['activation']} + {r['init']}", []).append(ok)
    healthy = sorted(name for name, oks in configs.items() if all(oks))
    if healthy:
        findings.append("Healthy at every tested depth (first/last ratio within 1e-2..1e2, norms within 1e-3..1e3): "
                        + ", ".join(healthy) + ".")
    return findings


def init_report(result: dict[str, Any]) -> Report:
    """Report of `studies.init_study`: activation std per layer under each initializer."""
    plt = _pyplot()
    report = Report("Initialization and signal propagation in a deep ReLU network", data=result)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, stds in result["stds"].items():
        ax.semilogy(range(1, len(stds) + 1), stds, marker=".", label=f"{name} (×{result['ratio_per_layer'][name]:.3f} per layer)")
    ax.set_xlabel("layer")
    ax.set_ylabel("std of ReLU activations (log scale)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    section = Section(f"{result['depth']} ReLU layers of width {result['width']}, no biases, N(0, 1) inputs",
                      paragraphs=["He et al. (2015): Var[a_l] = (fan_in·Var[W]/2)·Var[a_(l-1)]. Xavier's Var[W] = 1/width "
                                  "halves the variance at every layer (std × 0.707); He's 2/fan_in keeps it constant."])
    section.figures.append((figure_png(fig), "activation std per layer"))
    section.table = (["init", "std at layer 1", f"std at layer {result['depth']}", "factor per layer"],
                     [[n, s[0], s[-1], result["ratio_per_layer"][n]] for n, s in result["stds"].items()])
    report.sections.append(section)
    report.findings = [f"{n}: activations scale by {result['ratio_per_layer'][n]:.3f} per layer "
                       f"({s[-1] / s[0]:.1e} after {result['depth']} layers)." for n, s in result["stds"].items()]
    return report


def _log_profile(ax: Any, profile: Sequence[float], label: str) -> None:
    values = np.asarray(profile, np.float64)
    values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    ax.semilogy(np.arange(len(values)), values, label=label)


def rnn_report(result: dict[str, Any]) -> Report:
    """Report of `rnn_studies.rnn_study`: ‖∂L/∂h_t‖ against t per cell, and the recurrent weight sweep."""
    plt = _pyplot()
    report = Report("Gradients through time in recurrent networks", data=result)
    length = result["length"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for r in result["cells"]:
        _log_profile(ax, r["profile"], f"{r['cell']} (×{r['growth_per_step_back']:.3f} per step back)")
    ax.set_xlabel(f"time step t (the loss is on the output at t = {length - 1})")
    ax.set_ylabel("mean ‖∂L/∂h_t‖ over examples (log scale)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    cells = Section(f"Each cell at initialization, adding problem, T = {length}, {result['units']} units",
                    paragraphs=["How much of the loss's gradient reaches the hidden state h_t, t steps into the "
                                "sequence. A line falling to the left means early inputs barely move the weights: "
                                "the network cannot learn to remember them. An LSTM's h_t gradient also decays at "
                                "initialization (its forget gate starts near σ(1) = 0.73); training opens the gate "
                                "(see the adding study's profiles after training)."])
    cells.figures.append((figure_png(fig), "‖∂L/∂h_t‖ against t at initialization"))
    cells.table = (["cell", "‖∂L/∂h_0‖ / ‖∂L/∂h_T‖", "factor per step back"],
                   [[r["cell"], r["first_to_last"], r["growth_per_step_back"]] for r in result["cells"]])
    report.sections.append(cells)
    for activation in dict.fromkeys(r["activation"] for r in result["sweep"]):
        group = [r for r in result["sweep"] if r["activation"] == activation]
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for r in group:
            _log_profile(ax, r["profile"], f"scale {r['scale']:g}")
        ax.set_xlabel(f"time step t (the loss reads h_{result['sweep_length'] - 1})")
        ax.set_ylabel("mean ‖∂L/∂h_t‖ (log scale)")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        section = Section(f"Recurrent weight sweep, SimpleRNN with {activation} activation",
                          paragraphs=["The recurrent kernel is scale × an orthogonal matrix and the loss is u·h_T with "
                                      "‖u‖ = 1. In the notes' terms: with w = 0.5 the gradient shrinks as 0.5^t, with "
                                      "w = 50 it grows as 50^t" + (" — exactly, for a linear activation." if activation == "linear"
                                                                 else "; a saturating activation damps both.")])
        section.figures.append((figure_png(fig), f"weight scale sweep, {activation}"))
        section.table = (["scale", "factor per step back", "finite steps back", "‖∂L/∂h_0‖ / ‖∂L/∂h_T‖"],
                         [[r["scale"], r["growth_per_step_back"], r["finite_steps_back"], r["first_to_last"]] for r in group])
        report.sections.append(section)
    report.findings = rnn_findings(result)
    return report


def rnn_findings(result: dict[str, Any]) -> list[str]:
    """Plain-language findings of the rnn study."""
    findings = []
    for r in result["cells"]:
        if r["finite_steps_back"] < result["length"]:
            word = "explodes beyond" if r["growth_per_step_back"] > 1 else "vanishes below"
            findings.append(f"{r['cell']} at initialization: the gradient {word} float32's range "
                            f"{r['finite_steps_back']} steps back (×{r['growth_per_step_back']:.3f} per step back), "
                            f"T = {result['length']}.")
        else:
            findings.append(f"{r['cell']} at initialization: the gradient reaching h_0 is {r['first_to_last']:.1e} of "
                            f"the one at h_T, T = {result['length']} (×{r['growth_per_step_back']:.3f} per step back).")
    for r in result["sweep"]:
        steps = result["sweep_length"]
        if r["finite_steps_back"] < steps:
            kind, word = ("exploding", "overflows") if r["growth_per_step_back"] > 1 else ("vanishing", "underflows")
            findings.append(f"{r['activation']} SimpleRNN, recurrent scale {r['scale']:g}: {kind} — the gradient "
                            f"{word} float32 {r['finite_steps_back']} steps back.")
        elif r["growth_per_step_back"] > 1.05:
            findings.append(f"{r['activation']} SimpleRNN, recurrent scale {r['scale']:g}: exploding — "
                            f"×{r['growth_per_step_back']:.3g} per step back, ‖∂L/∂h_0‖ / ‖∂L/∂h_T‖ = "
                            f"{r['first_to_last']:.1e} after {steps} steps.")
        elif r["growth_per_step_back"] < 0.95:
            findings.append(f"{r['activation']} SimpleRNN, recurrent scale {r['scale']:g}: vanishing — "
                            f"×{r['growth_per_step_back']:.3g} per step back, {r['first_to_last']:.1e} after {steps} steps.")
    return findings


def memory_report(result: dict[str, Any]) -> Report:
    """Report of `rnn_studies.adding_study` / `copy_study`: learning curves against the baseline, per length."""
    plt = _pyplot()
    task = result["study"]
    title = {"adding": "The adding problem", "copy": "The copy-memory task"}.get(task, task)
    report = Report(f"{title}: SimpleRNN vs LSTM vs GRU", data=result)
    for length in dict.fromkeys(r["length"] for r in result["records"]):
        group = [r for r in result["records"] if r["length"] == length]
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for r in group:
            clip = f"clipnorm {r['clipnorm']:g}" if r["clipnorm"] else "no clipping"
            ax.plot(r["steps"], r["test_loss"], marker=".", label=f"{r['cell']}, {clip}")
        ax.axhline(group[0]["baseline"], color="k", linestyle="--", label=f"baseline {group[0]['baseline']:.4f}")
        ax.set_yscale("log")
        ax.set_xlabel(f"Adam step (batch {result['batch_size']})")
        ax.set_ylabel(f"test {result['unit']} (log scale)")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        section = Section(f"T = {length}",
                          paragraphs=[f"Test {result['unit']} on {result['test_examples']} held-out sequences every "
                                      f"{result['eval_every']} steps; the dashed line is what a model without memory "
                                      f"scores. {result['units']} units, Adam at {result['learning_rate']:g}."])
        section.figures.append((figure_png(fig), f"learning curves, T = {length}"))
        fig, ax = plt.subplots(figsize=(9, 4))
        for r in group:
            clip = f"clipnorm {r['clipnorm']:g}" if r["clipnorm"] else "no clipping"
            _log_profile(ax, r["trained_profile"]["profile"], f"{r['cell']}, {clip}")
        ax.set_xlabel("time step t")
        ax.set_ylabel("mean ‖∂L/∂h_t‖ after training (log scale)")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        section.figures.append((figure_png(fig), f"gradient reaching each step after training, T = {length}"))
        header = ["cell", "clipnorm", f"final test {result['unit']}", "baseline", "ms/step", "‖∂L/∂h_0‖ / ‖∂L/∂h_T‖"]
        if task == "copy":
            header.insert(3, "recall")
        rows = []
        for r in group:
            row = [r["cell"], r["clipnorm"] or "none", r["final_test_loss"], r["baseline"], r["ms_per_step"],
                   r["trained_profile"]["first_to_last"]]
            if task == "copy":
                row.insert(3, r["recall"])
            rows.append(row)
        section.table = (header, rows)
        report.sections.append(section)
    report.findings = memory_findings(result)
    return report


def memory_findings(result: dict[str, Any]) -> list[str]:
    """Plain-language findings: which cell solved each length, which stayed at the baseline, which diverged."""
    findings = []
    for r in result["records"]:
        name = f"T = {r['length']}, {r['cell']}, {'clipnorm ' + format(r['clipnorm'], 'g') if r['clipnorm'] else 'no clipping'}"
        final, baseline = r["final_test_loss"], r["baseline"]
        steps = r["steps"][-1] if r["steps"] else 0
        recall = f", recall {r['recall']:.1%}" if "recall" in r else ""
        if not r["finite"]:
            findings.append(f"{name}: training diverged ({r['stop_reason'] or 'non-finite loss'}).")
        elif result["solved_below"] is not None and final < result["solved_below"]:
            findings.append(f"{name}: solved — test {result['unit']} {final:.4f} after {steps} steps "
                            f"(baseline {baseline:.4f}).")
        elif final > 1.25 * baseline:
            findings.append(f"{name}: nothing learned — test {result['unit']} {final:.4f} is worse than the "
                            f"memoryless baseline {baseline:.4f}{recall} after {steps} steps.")
        elif final > 0.8 * baseline:
            findings.append(f"{name}: no memory learned — test {result['unit']} {final:.4f} stays near the "
                            f"baseline {baseline:.4f}{recall} after {steps} steps.")
        else:
            findings.append(f"{name}: partly learned — test {result['unit']} {final:.4f} ({final / baseline:.2f} of "
                            f"the baseline){recall} after {steps} steps.")
    return findings


# -- a training run ---------------------------------------------------------------------------------


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
    plt = _pyplot()
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
