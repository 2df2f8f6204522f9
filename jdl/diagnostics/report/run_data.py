"""What a training report reads about one run (`RunData`), from a `jdl train` run directory or from Python objects."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


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
