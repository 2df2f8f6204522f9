"""Reports of the vanishing/exploding-gradient studies: depth, init, gradient through time, memory tasks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from jdl.diagnostics.report.page import Report, Section, pyplot, figure_png


def depth_report(result: dict[str, Any]) -> Report:
    """Report of `studies.depth_study`: per-layer gradient norms by configuration, and the first/last ratios."""
    plt = pyplot()
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
            line, = ax.semilogy(range(len(r["init_norms"])), r["init_norms"], marker=".",
                                label=f"{r['activation']} + {r['init']}")
            _seed_band(ax, r, "init_norms", line)
        ax.set_xlabel("layer (0 = input layer, last = output head)")
        ax.set_ylabel("‖∂L/∂W‖ at initialization (log scale)")
        ax.set_title(f"depth {depths[-1]}, batch norm {'on' if bn else 'off'}, residual {'on' if res else 'off'}")
        ax.legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.grid(True, which="both", alpha=0.3)
        seeds = result.get("seeds", 1)
        section = Section(f"Batch norm {'on' if bn else 'off'}, residual {'on' if res else 'off'}",
                          paragraphs=[(f"Means over {seeds} seeds, bands ± one std over seeds. " if seeds > 1 else "")
                                      + "Each line is one network's gradient norm per weight layer at initialization. "
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
                line, = ax.plot(r["losses"], label=f"{r['activation']} + {r['init']}")
                _seed_band(ax, r, "losses", line)
            ax.set_xlabel("SGD step")
            ax.set_ylabel("training loss (cross-entropy)")
            ax.set_yscale("log")
            ax.legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5))
            section.figures.append((figure_png(fig), f"training loss, depth {depths[-1]}"))
        report.sections.append(section)
    report.findings = depth_findings(records)
    return report


def _seed_band(ax: Any, record: dict[str, Any], key: str, line: Any, x: Sequence[float] | None = None) -> None:
    """Shade mean ± std over seeds around a curve (at x, default 0, 1, …) when the record holds several seeds."""
    if f"{key}_spread" in record:
        mean, spread = np.asarray(record[key], np.float64), np.asarray(record[f"{key}_spread"], np.float64)
        ax.fill_between(np.arange(len(mean)) if x is None else x, np.maximum(mean - spread, mean * 1e-3),
                        mean + spread, color=line.get_color(), alpha=0.15, linewidth=0)


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
    plt = pyplot()
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
    plt = pyplot()
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
    plt = pyplot()
    task = result["study"]
    title = {"adding": "The adding problem", "copy": "The copy-memory task"}.get(task, task)
    report = Report(f"{title}: SimpleRNN vs LSTM vs GRU", data=result)
    seeds = result.get("seeds", 1)
    for length in dict.fromkeys(r["length"] for r in result["records"]):
        group = [r for r in result["records"] if r["length"] == length]
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for r in group:
            clip = f"clipnorm {r['clipnorm']:g}" if r["clipnorm"] else "no clipping"
            line, = ax.plot(r["steps"], r["test_loss"], marker=".", label=f"{r['cell']}, {clip}")
            _seed_band(ax, r, "test_loss", line, r["steps"])
        ax.axhline(group[0]["baseline"], color="k", linestyle="--", label=f"baseline {group[0]['baseline']:.4f}")
        ax.set_yscale("log")
        ax.set_xlabel(f"Adam step (batch {result['batch_size']})")
        ax.set_ylabel(f"test {result['unit']} (log scale)")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        section = Section(f"T = {length}",
                          paragraphs=[f"Test {result['unit']} on {result['test_examples']} held-out sequences every "
                                      f"{result['eval_every']} steps; the dashed line is what a model without memory "
                                      f"scores. {result['units']} units, Adam at {result['learning_rate']:g}."
                                      + (f" Means over {seeds} seeds (initialization and shuffling), shaded ± one "
                                         "standard deviation." if seeds > 1 else "")])
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
        if seeds > 1:
            header.insert(3, f"± std over {seeds} seeds")
        rows = []
        for r in group:
            row = [r["cell"], r["clipnorm"] or "none", r["final_test_loss"], r["baseline"], r["ms_per_step"],
                   r["trained_profile"]["first_to_last"]]
            if task == "copy":
                row.insert(3, r["recall"])
            if seeds > 1:
                row.insert(3, r["final_test_loss_spread"])
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
        if "final_test_loss_seeds" in r:
            name += f" (mean of {len(r['final_test_loss_seeds'])} seeds, ± {r['final_test_loss_spread']:.2g})"
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
