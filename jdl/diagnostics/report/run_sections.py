"""The training report's sections about the run itself: summary, config, model and training curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jdl.diagnostics.report.page import Section, figure_png, legend_outside, series_style
from jdl.diagnostics.report.run_data import RunData

LOSS_SCALE_LOGS = ("loss_scale", "skipped_steps")  # float16 runs' epoch logs (jdl.train.loss_scale), told in words


def _summary_section(run: RunData) -> Section:
    s = run.summary
    best = s.get("best_epoch")
    line = f"{s.get('epochs_run', len(run.curves.get('epoch', [])))} epochs run (counted from 1)"
    if best is not None:
        line += f"; best epoch {best} by {s.get('best_monitor')}"
    seconds = s.get("train_seconds_this_session", s.get("seconds"))
    if isinstance(seconds, (int, float)):
        line += f"; {seconds:.1f} s of training"
    paragraphs = [line + "."]
    if s.get("stop_reason"):
        paragraphs.append(f"Stopped early: {s['stop_reason']}")
    section = Section("Run summary", paragraphs=paragraphs)
    metrics = sorted({k for part in ("train", "validation", "test") for k in (s.get(part) or {})})
    if metrics:
        section.table = (["split", *metrics], [[part, *[s[part].get(m, "") for m in metrics]]
                                                for part in ("train", "validation", "test") if s.get(part)])
    return section


def config_rows(config: Mapping[str, Any]) -> list[list[Any]]:
    """The config's facts that tell runs apart: model, init, activation, optimizer, learning rate, batch size, ..."""
    if not all(isinstance(config.get(k, {}), Mapping) for k in ("model", "train", "data")):
        return [[key, value] for key, value in config.items() if value not in (None, "", {})]  # a Recorder's free-form config
    model, train, data = config.get("model", {}), config.get("train", {}), config.get("data", {})
    rows = [["model", model.get("name")], ["activation", model.get("activation")], ["init", model.get("kernel_init")],
            ["optimizer", train.get("optimizer")], ["learning rate", train.get("learning_rate")],
            ["schedule", (train.get("schedule") or {}).get("name") if isinstance(train.get("schedule"), Mapping) else None],
            ["batch size", train.get("batch_size")], ["epochs", train.get("epochs")], ["loss", train.get("loss")],
            ["precision", train.get("precision")], ["data", data.get("name")], ["validation split", data.get("validation_split")], ["seed", config.get("seed")]]
    for key in ("hidden", "conv", "dense", "dropout", "batch_norm", "units", "layers"):
        if key in model:
            rows.append([key, model[key]])
    for key, value in (train.get("optimizer_options") or {}).items():
        rows.append([key, value])
    for key in ("clipnorm", "clipvalue", "weight_decay", "l2"):
        if key in train:
            rows.append([key, train[key]])
    callbacks = config.get("callbacks") or {}
    for name, options in callbacks.items():
        rows.append([f"callback {name}", ", ".join(f"{k}={v}" for k, v in (options or {}).items())])
    return [r for r in rows if r[1] not in (None, "", {})]


def _config_section(run: RunData) -> Section:
    rows = config_rows(run.config)
    if not rows:
        return Section("Config", paragraphs=["No config was recorded for this run."])
    return Section("Config", paragraphs=["What this run was trained with."], table=(["setting", "value"], rows))


def _model_section(run: RunData) -> Section:
    layers = run.model
    total = sum(row["parameters"] for row in layers)
    return Section("Model", paragraphs=[f"{len(layers)} layers with parameters, {total:,} parameters in all, in network order."],
                   table=(["layer", "parameters", "shapes"], [[r["layer"], r["parameters"], ", ".join(r["shapes"])]
                                                              for r in layers]))


def _stopped_early(run: RunData) -> int | None:
    planned = run.context.get("epochs")
    epochs = run.curves.get("epoch", [])
    reason = str(run.summary.get("stop_reason") or "")
    if epochs and reason and (not isinstance(planned, int) or epochs[-1] < planned):
        return int(epochs[-1])
    return None


def _curves_section(plt: Any, run: RunData) -> Section:
    curves, epochs = run.curves, run.curves["epoch"]
    best, stop = run.summary.get("best_epoch"), _stopped_early(run)
    names = [k for k in curves if k not in ("epoch", "lr", "learning_rate", *LOSS_SCALE_LOGS) and not k.startswith("val_")]
    section = Section("Training curves", paragraphs=[
        "Loss and metrics per epoch (epochs counted from 1) on the training data and, when there is one, the "
        "validation split." + (f" The dashed line marks the best epoch ({best})." if best is not None else "")
        + (f" The dotted red line marks the early stop after epoch {stop}." if stop is not None else "")])
    if names:
        fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.4), squeeze=False)
        for ax, name in zip(axes[0], names):
            ax.plot(epochs, curves[name], label=f"train {name}", **series_style(0))
            if f"val_{name}" in curves:
                ax.plot(epochs, curves[f"val_{name}"], label=f"validation {name}", **series_style(1))
            if best is not None:
                ax.axvline(best, color="#2ca02c", linestyle="--", linewidth=1, label=f"best epoch {best}")
            if stop is not None:
                ax.axvline(stop, color="#d62728", linestyle=":", linewidth=1.5, label=f"early stop ({stop})")
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.grid(True, alpha=0.3)
            legend_outside(ax)
        fig.tight_layout()
        section.figures.append((figure_png(fig), "training curves"))
    lr_key = "lr" if "lr" in curves else ("learning_rate" if "learning_rate" in curves else None)
    if lr_key:
        lr = np.asarray(curves[lr_key], float)
        if np.allclose(lr, lr[0], rtol=1e-9, atol=0):
            section.paragraphs.append(f"The learning rate was constant at {lr[0]:.3g}.")
        else:
            fig, ax = plt.subplots(figsize=(6, 2.6))
            ax.plot(epochs, lr)
            ax.set_xlabel("epoch")
            ax.set_ylabel("learning rate")
            ax.grid(True, alpha=0.3)
            section.figures.append((figure_png(fig), "learning rate per epoch"))
    if all(k in curves for k in LOSS_SCALE_LOGS):
        skipped = int(np.sum(curves["skipped_steps"]))
        section.paragraphs.append(
            f"float16 dynamic loss scaling: {skipped} step{'s' * (skipped != 1)} skipped for a gradient that overflowed "
            f"float16, in epochs {_epoch_list(epochs, curves['skipped_steps'])}; the loss scale ended at "
            f"{curves['loss_scale'][-1]:.6g}." if skipped else
            f"float16 dynamic loss scaling: no step overflowed; the loss scale ended at {curves['loss_scale'][-1]:.6g}.")
    return section


def _epoch_list(epochs: Sequence[Any], counts: Sequence[float]) -> str:
    """The epochs whose count is non-zero, with the count: "1 (2), 4 (1)"."""
    return ", ".join(f"{int(e)} ({int(c)})" for e, c in zip(epochs, counts) if c)
