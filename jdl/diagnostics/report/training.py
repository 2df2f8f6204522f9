"""The training report: findings, summary, config, model, curves, gradient statistics, the examples themselves.

`training_report` builds it from a `jdl train` run directory or straight from Python (`history`,
`monitor`, `trainer`, `state`, `data`); `jdl train` and `jdl report` use the same function.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jdl.diagnostics.report import findings as findings_lib
from jdl.diagnostics.report import views
from jdl.diagnostics.report.page import Report, Section, figure_png, legend_outside, pyplot, series_style

LOSS_SCALE_LOGS = ("loss_scale", "skipped_steps")  # float16 runs' epoch logs (jdl.train.loss_scale), told in words


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


def model_table(params: Any, layers: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per layer in call order (`layers`, else natural order of the names): name, shapes, count."""
    from jdl.diagnostics.recorder import model_rows

    return model_rows(params, layers)


@dataclasses.dataclass
class RunData:
    """Everything a report reads about one run (as plain JSON-able values), from a run directory or from Python.

    curves: per-epoch series with "epoch" counted from 1; monitor: monitor.json's dict ({} when the
    monitor was off); context: num_classes, batch_size, activation, learning_rate, epochs (planned).
    """

    name: str
    summary: dict[str, Any]
    config: dict[str, Any]
    curves: dict[str, list[float]]
    model: list[dict[str, Any]]
    monitor: dict[str, Any]
    context: dict[str, Any]


def _json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


def load_run(run_dir: str | os.PathLike) -> RunData:
    """A `jdl train` run directory (summary.json required; metrics.csv, config.json, model.json, monitor.json optional)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir must be a jdl train run directory, got {run_dir} (not a directory)")
    if not (run_dir / "summary.json").is_file() and not (run_dir / "metrics.csv").is_file():
        raise FileNotFoundError(f"run_dir must be a jdl train run directory with summary.json or metrics.csv, got {run_dir}")
    summary = _json(run_dir / "summary.json", {})
    config = _json(run_dir / "config.json", {})
    curves = _read_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else {}
    if "epoch" in curves:
        curves["epoch"] = [int(e) + 1 for e in curves["epoch"]]  # CSVLogger writes Keras' 0-based epoch index
    model, train = config.get("model", {}), config.get("train", {})
    model = model if isinstance(model, Mapping) else {"name": str(model)}  # a Recorder's config may only name it
    train = train if isinstance(train, Mapping) else {}
    context = {"batch_size": train.get("batch_size"), "learning_rate": train.get("learning_rate"),
               "activation": model.get("activation"), "epochs": train.get("epochs"),
               "num_classes": model.get("outputs") if isinstance(model.get("outputs"), int) else None}
    return RunData(summary.get("name") or config.get("name") or run_dir.name, summary, config, curves,
                   _json(run_dir / "model.json", []), _json(run_dir / "monitor.json", {}), context)


def _history_curves(history: Any) -> dict[str, list[float]]:
    if isinstance(history, Mapping):
        series, epochs = dict(history.get("history", history)), list(history.get("epoch", []))
    else:
        series, epochs = dict(history.history), list(history.epoch)
    series = {k: [float(v) for v in values] for k, values in series.items() if k != "epoch"}
    length = max((len(v) for v in series.values()), default=0)
    epochs = epochs or list(range(length))
    return {"epoch": [int(e) + 1 for e in epochs], **series}


def _best_epoch(curves: Mapping[str, list[float]]) -> tuple[int | None, str | None]:
    """(1-based best epoch, the curve it was chosen on): val_loss when present, else loss."""
    for name in ("val_loss", "loss"):
        values = np.asarray(curves.get(name, []), float)
        if values.size and np.isfinite(values).any():
            return int(curves["epoch"][int(np.nanargmin(values))]), name
    return None, None


def _split_data(data: Any) -> dict[str, Any]:
    """x_train, y_train, x_test, y_test, info from a jdl Dataset, a mapping with those keys, or (x_train, y_train[, x_test, y_test])."""
    if data is None:
        return {}
    keys = ("x_train", "y_train", "x_test", "y_test", "info")
    if isinstance(data, Mapping):
        return {k: data[k] for k in keys if k in data}
    if all(hasattr(data, k) for k in keys[:4]):
        return {k: getattr(data, k) for k in keys if hasattr(data, k)}
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        return dict(zip(keys, data))
    raise TypeError("data must be a jdl Dataset, a mapping with x_train/y_train/x_test/y_test, or a tuple "
                    f"(x_train, y_train[, x_test, y_test]), got {type(data).__name__}")


def _optimizer_facts(trainer: Any) -> dict[str, Any]:
    optimizer = getattr(trainer, "optimizer", None)
    if optimizer is None:
        return {}
    lr = getattr(optimizer, "learning_rate", None)
    facts = {"optimizer": getattr(optimizer, "name", type(optimizer).__name__),
             "learning_rate": float(lr) if isinstance(lr, (int, float)) else (type(lr).__name__ if lr is not None else None)}
    for key in ("clipnorm", "clipvalue", "weight_decay", "l2"):
        value = getattr(optimizer, key, None)
        if value is not None:
            facts[key] = value
    return facts


def _from_python(history: Any, monitor: Any, trainer: Any, state: Any, data: dict[str, Any], config: Any,
                 summary: Any, name: str | None) -> RunData:
    curves = _history_curves(history) if history is not None else {}
    if monitor is not None and not isinstance(monitor, Mapping):
        monitor = monitor.to_dict()
    monitor = dict(monitor or {})
    model = getattr(trainer, "model", None) or getattr(state, "model", None)
    if history is None:
        params_info = {}
    else:
        params_info = dict(history.get("params", {}) if isinstance(history, Mapping) else history.params)
    optimizer = _optimizer_facts(trainer)
    info = data.get("info") or {}
    classes = info.get("num_classes") or getattr(model, "outputs", None)
    context = {"batch_size": params_info.get("batch_size"), "epochs": params_info.get("epochs"),
               "learning_rate": optimizer.get("learning_rate") if isinstance(optimizer.get("learning_rate"), float) else None,
               "activation": getattr(model, "activation", None) if isinstance(getattr(model, "activation", None), str) else None,
               "num_classes": classes if isinstance(classes, int) else None}
    config = dict(config or {})
    if not config:
        config = {"model": {"name": type(model).__name__ if model is not None else None,
                            **{k: getattr(model, k) for k in ("activation", "kernel_init", "hidden", "conv", "dense",
                                                               "dropout", "batch_norm")
                               if isinstance(getattr(model, k, None), (str, int, float, bool, tuple))}},
                  "train": {**optimizer, "batch_size": params_info.get("batch_size"), "epochs": params_info.get("epochs"),
                            "precision": getattr(getattr(trainer, "objective", None), "precision", None)}}
    if summary is None:
        best, by = _best_epoch(curves) if curves else (None, None)
        summary = {"epochs_run": len(curves.get("epoch", [])), "best_epoch": best, "best_monitor": by,
                   "stop_reason": getattr(history, "stop_reason", None) if history is not None else None}
        if trainer is not None and state is not None:
            for part, x_key, y_key in (("train", "x_train", "y_train"), ("test", "x_test", "y_test")):
                if data.get(x_key) is not None and len(data[x_key]):
                    summary[part] = {k: float(v) for k, v in trainer.evaluate(state, data[x_key], data[y_key]).items()}
    table = model_table(state.params) if state is not None else []
    return RunData(name or config.get("name") or "run", dict(summary), config, curves, table, monitor, context)


def _logits_fn(trainer: Any, state: Any) -> Any:
    """x -> the model's raw outputs in inference mode (one compiled program per input shape), or None without a state."""
    if state is None:
        return None
    import jax

    from jdl.nn.mode import mode_kwargs

    model = state.model
    kwargs = dict(getattr(getattr(trainer, "objective", None), "eval_kwargs", ()) or mode_kwargs(model, False))
    apply = jax.jit(lambda variables, x: model.apply(variables, x, **kwargs))
    return lambda x: apply(state.variables, x)


def _predictions(fn: Any, x: np.ndarray) -> np.ndarray | None:
    import jax

    try:
        out = jax.device_get(fn(np.asarray(x)))
    except Exception:  # a model whose outputs are not one array: no predictions shown
        return None
    out = np.asarray(out) if not isinstance(out, (dict, tuple, list)) else None
    if out is None or out.ndim != 2:
        return None
    return out.argmax(-1) if out.shape[1] > 1 else (out[:, 0] > 0).astype(int)


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


def _label(y: Any, i: int) -> Any:
    if y is None:
        return None
    value = np.asarray(y)[i]
    return int(value) if np.ndim(value) == 0 else int(np.argmax(value))


def _labels(y: Any, n: int) -> np.ndarray | None:
    if y is None:
        return None
    y = np.asarray(y)[:n]
    return y.astype(int) if y.ndim == 1 else y.argmax(-1)


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


def _name(value: Any, names: Any) -> str:
    if isinstance(names, (list, tuple)) and isinstance(value, int) and 0 <= value < len(names):
        return str(names[value])
    return str(value)


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


def attribution_section(fn: Any, x: np.ndarray, y: np.ndarray | None, info: Mapping[str, Any],
                        methods: tuple[str, ...] = ("gradient", "smoothgrad")) -> Section | None:
    """Saliency of a few test examples for their predicted class: image, heat map, overlay (or shaded tokens)."""
    from jdl.diagnostics import saliency

    predicted = _predictions(fn, x)
    if predicted is None or views.kind(x[0]) not in ("image", "tokens"):
        return None
    class_names = info.get("class_names")
    section = Section("Attributions of test examples", paragraphs=[
        "Which input entries the predicted class's score depends on: vanilla gradient (|∂s/∂x|) and SmoothGrad "
        "(gradients averaged over noisy copies), each as a heat map and an overlay on the example. These two pass "
        "Adebayo et al.'s (2018) weight-randomization check on digits; gradient × input and integrated gradients "
        "with a zero baseline are zero wherever x is, so they are not shown as evidence."])
    cards = []
    if views.kind(x[0]) == "tokens":
        weights = np.asarray(saliency.embedding_attributions(fn, x, target=predicted))
        for i in range(len(x)):
            lines = [f"test #{i}: predicted {_name(int(predicted[i]), class_names)}"
                     + (f", label {_name(int(y[i]), class_names)}" if y is not None else "")]
            cards.append(views.card(views.token_html(x[i], weights[i], info.get("vocabulary")), lines,
                                    y is not None and predicted[i] != y[i]))
        section.blocks.append(views.gallery(cards))
        return section
    x = np.asarray(x, np.float32)
    maps = {m: np.asarray(getattr(saliency, m)(fn, x, target=predicted.astype(np.int32))) for m in methods}
    for i in range(len(x)):
        image = views.as_image(x[i])
        tiles = [("input", views.image_png(image))]
        for m, values in maps.items():
            attribution = values[i].reshape(image.shape) if values[i].size == image.size else values[i]
            tiles.append((f"{m} heat map", views.image_png(views.heat_rgb(attribution))))
            tiles.append((f"{m} overlay", views.image_png(views.overlay_rgb(image, attribution))))
        content = "".join(f"<img alt='{t}' title='{t}' src='{views.png_data_uri(p)}'>" for t, p in tiles)
        lines = [f"test #{i}: predicted {_name(int(predicted[i]), class_names)}"
                 + (f", label {_name(int(y[i]), class_names)}" if y is not None else ""),
                 "input · " + " · ".join(f"{m} heat, overlay" for m in methods)]
        cards.append(views.card(content, lines, y is not None and predicted[i] != y[i]))
    section.blocks.append(views.gallery(cards))
    return section
