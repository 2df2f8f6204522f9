"""Host-side records of probe statistics, bounded, and the run directory `jdl report` renders.

`MonitorLog` turns the statistics of monitored steps (device arrays fetched once per epoch) into
monitor.json's records, for `GradientMonitor` and `Recorder` alike:

    records       one dict per monitored step (layers in network call order): grad_norm,
                  param_norm, update_ratio, finite, gsnr, noise_scale, activations,
                  example_norm_stats {mean, max, count}; the raw example_norm/example_index
                  lists only in the last `raw_records` records. Beyond `max_records`, every
                  other record is dropped and only steps with (step / every) % thinned == 0 kept.
    top_examples  [{"index", "norm", "step", "epoch" (1-based), "count"}], merged by index:
                  norm is the example's largest, step and epoch where it was, count how many
                  monitored steps had it among their batch's top_k.
    example_norm_histogram  counts of every per-example norm in log-spaced bins (8 per decade).

`Recorder` does the same for a custom loop and writes monitor.json, metrics.csv, summary.json,
model.json and config.json, what `jdl.diagnostics.report.training_report` reads.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jdl import _checks, _io
from jdl._tree import layer_name, layer_names, natural_key, ordered
from jdl.train import distributed

HISTOGRAM_EDGES = 10.0 ** np.linspace(-10, 6, 16 * 8 + 1)
POOL = 20  # candidates kept per top_k place, so counts survive examples moving in and out of the top


def _f(value: Any) -> float:
    """A float with float32's 7 significant digits (shorter JSON, no false precision)."""
    value = float(value)
    return float(f"{value:.7g}") if math.isfinite(value) else value


class MonitorLog:
    """The bounded host-side log of monitored steps (see the module docstring)."""

    def __init__(self, every: int, top_k: int = 10, max_records: int = 2000, raw_records: int = 20,
                 source: str = "GradientMonitor"):
        for name, value in (("top_k", top_k), ("max_records", max_records), ("raw_records", raw_records)):
            _checks.check_number(value, name, integer=True, positive=True)
        self.every, self.top_k, self.max_records, self.raw_records = every, top_k, max_records, raw_records
        self.source = source
        self.records: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.layers: list[str] = []
        self.thinned = 1
        self.histogram = np.zeros(len(HISTOGRAM_EDGES) + 1, np.int64)  # [below, bins..., above]
        self._pool: dict[int, dict[str, Any]] = {}
        self._warned: set[str] = set()

    # -- adding steps ------------------------------------------------------------------------------

    def add_chunk(self, epoch: int, chunk: Mapping[str, Any], layers: list[str] | None = None) -> None:
        """The monitored steps of host arrays stacked over steps (a leading axis on every leaf)."""
        on = np.asarray(chunk["on"]).reshape(-1)
        for i in np.flatnonzero(on):
            self.add_step(epoch, jax.tree_util.tree_map(lambda a: np.asarray(a)[i], chunk), layers)

    def add_step(self, epoch: int, row: Mapping[str, Any], layers: list[str] | None = None) -> None:
        """One monitored step's host statistics (0-based epoch)."""
        if layers:
            self.layers = list(layers)
        elif not self.layers:
            self.layers = sorted(row["grad_norm"], key=natural_key)
        step = int(row["step"])
        if "example_norm" in row:
            self._add_examples(epoch, step, np.asarray(row["example_norm"], float), np.asarray(row["index"]))
        if (step // self.every) % self.thinned:
            return
        record: dict[str, Any] = {"epoch": epoch, "step": step}
        for key in ("grad_norm", "param_norm", "update_ratio", "gsnr"):
            if key in row:
                record[key] = {k: _f(v) for k, v in ordered(row[key], self.layers).items()}
        if "grad_norm" in record and "update_ratio" not in record:
            record["update_ratio"] = {k: float("nan") for k in record["grad_norm"]}
        record["finite"] = {k: bool(v) for k, v in ordered(row["finite"], self.layers).items()}
        for key in ("noise_scale", "noise_signal", "noise_trace"):
            if key in row:
                record[key] = _f(row[key])
        if "activations" in row:
            record["activations"] = {k: {s: _f(v) for s, v in d.items()}
                                     for k, d in ordered(row["activations"], self.layers).items()}
        if "example_norm" in row:
            norms, index = np.asarray(row["example_norm"], float), np.asarray(row["index"])
            valid = norms > 0
            record["example_norm_stats"] = {"mean": _f(norms[valid].mean()) if valid.any() else 0.0,
                                            "max": _f(norms.max(initial=0.0)), "count": int(valid.sum())}
            record["example_norm"] = [_f(v) for v in norms[valid]]
            record["example_index"] = index[valid].tolist()
        self.records.append(record)
        for old in self.records[:-self.raw_records]:
            old.pop("example_norm", None)
            old.pop("example_index", None)
        if len(self.records) > self.max_records:
            self.thinned *= 2
            self.records = [r for r in self.records if (r["step"] // self.every) % self.thinned == 0]

    def _add_examples(self, epoch: int, step: int, norms: np.ndarray, index: np.ndarray) -> None:
        valid = norms > 0
        values = norms[valid]
        bins = np.searchsorted(HISTOGRAM_EDGES, values, side="right")
        np.add.at(self.histogram, bins, 1)
        order = np.argsort(-values, kind="stable")[: self.top_k]
        for k in order:
            i, value = int(index[valid][k]), float(values[k])
            entry = self._pool.setdefault(i, {"index": i, "norm": -1.0, "step": step, "epoch": epoch + 1, "count": 0})
            entry["count"] += 1
            if value > entry["norm"]:
                entry.update(norm=_f(value), step=step, epoch=epoch + 1)
        if len(self._pool) > POOL * self.top_k:
            kept = sorted(self._pool.values(), key=lambda e: -e["norm"])[: POOL * self.top_k]
            self._pool = {e["index"]: e for e in kept}

    @property
    def top_examples(self) -> list[dict[str, Any]]:
        """The top_k examples by their largest norm, merged by index (see the module docstring)."""
        return [dict(e) for e in sorted(self._pool.values(), key=lambda e: (-e["norm"], e["index"]))[: self.top_k]]

    # -- warnings ---------------------------------------------------------------------------------

    def check_warnings(self) -> None:
        """Plain-language warnings, each given once: a non-finite layer, vanishing layers, dead ReLUs, growing norms."""
        new = []
        for record in self.records:
            bad = [k for k, ok in record["finite"].items() if not ok]
            if bad:
                new.append(("nonfinite", f"the gradient of layer {bad[0]} first went non-finite at step {record['step']}"))
                break
        if self.records:
            last = self.records[-1]["grad_norm"]
            finite = {k: v for k, v in last.items() if math.isfinite(v) and v > 0}
            if len(finite) > 1:
                top_name, top = max(finite.items(), key=lambda kv: kv[1])
                for name, value in finite.items():
                    if value < 1e-3 * top:
                        new.append((f"vanishing {name}", f"layer {name}'s gradient is {math.log10(top / value):.0f} "
                                    f"orders of magnitude below layer {top_name}'s: it is barely learning "
                                    "(vanishing gradient)"))
            dead = {k: v["dead"] for k, v in self.records[-1].get("activations", {}).items() if v["dead"] > 0.5}
            for name, fraction in dead.items():
                new.append((f"dead {name}", f"{100 * fraction:.0f}% of layer {name}'s ReLUs are dead "
                            "(zero for every example of a batch)"))
            totals = [math.sqrt(sum(v * v for v in r["grad_norm"].values())) for r in self.records]
            if len(totals) >= 4 and all(math.isfinite(t) for t in totals):
                quarter = max(1, len(totals) // 4)
                early, late = np.median(totals[:quarter]), np.median(totals[-quarter:])
                if late > 100 * early:
                    new.append(("exploding", f"the gradient norm grew {late / early:.0f}-fold during training "
                                "(exploding): consider gradient clipping (clipnorm) or a smaller learning rate"))
        for key, message in new:
            if key not in self._warned:
                self._warned.add(key)
                self.warnings.append(message)
                warnings.warn(f"{self.source}: {message}", RuntimeWarning, stacklevel=3)

    # -- (de)serialization ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """monitor.json: every kept record, the merged top examples, the histogram (JSON-able)."""
        return {"every": self.every, "layers": list(self.layers), "thinned": self.thinned, "records": self.records,
                "warnings": self.warnings, "top_examples": self.top_examples,
                "example_norm_histogram": {"edges": [_f(e) for e in HISTOGRAM_EDGES],
                                           "counts": self.histogram[1:-1].tolist(),
                                           "below": int(self.histogram[0]), "above": int(self.histogram[-1])}}

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs: to_dict plus the warnings given and the candidate pool."""
        return {**self.to_dict(), "warned": sorted(self._warned), "pool": list(self._pool.values())}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.records = list(state.get("records", []))
        self.warnings = list(state.get("warnings", []))
        self._warned = set(state.get("warned", []))
        self.layers = list(state.get("layers", []))
        self.thinned = int(state.get("thinned", 1))
        pool = state.get("pool", state.get("top_examples", []))
        self._pool = {int(e["index"]): {"index": int(e["index"]), "norm": float(e["norm"]), "step": int(e["step"]),
                                        "epoch": e.get("epoch"), "count": int(e.get("count", 1))} for e in pool}
        histogram = state.get("example_norm_histogram")
        if histogram and len(histogram.get("counts", [])) == len(HISTOGRAM_EDGES) - 1:
            self.histogram = np.asarray([histogram["below"], *histogram["counts"], histogram["above"]], np.int64)


def model_rows(params: Any, layers: list[str] | None = None) -> list[dict[str, Any]]:
    """model.json: one row per layer in call order (layers), its parameter shapes and count."""
    rows: dict[str, dict[str, Any]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        row = rows.setdefault(layer_name(path), {"layer": layer_name(path), "shapes": [], "parameters": 0})
        row["shapes"].append(f"{getattr(path[-1], 'key', path[-1])} {tuple(np.shape(leaf))}")
        row["parameters"] += int(np.size(leaf))
    return [rows[name] for name in layer_names(params, layers)]


class Recorder:
    """Accumulate a probe's stats on the device and write a run directory that `jdl report RUN_DIR` renders.

        recorder = Recorder(probed)
        for epoch ...:
            for batch ...: state, stats = step(...); recorder.record(stats)   # no host sync
            recorder.end_epoch(loss=..., accuracy=..., val_loss=...)          # one device fetch
        recorder.save("runs/mine", params=params, config={...})

    top_k, max_records: as `GradientMonitor` (see `MonitorLog`).
    """

    def __init__(self, probed: Any = None, *, top_k: int = 10, max_records: int = 2000, name: str | None = None):
        every = getattr(probed, "every", 1)
        self.probed = probed
        self.name = name
        self.log = MonitorLog(every, top_k, max_records, source="Recorder")
        self.curves: list[dict[str, float]] = []
        self.epoch = 0
        self._pending: list[Any] = []

    def record(self, stats: Mapping[str, Any]) -> None:
        """Keep one step's stats (device arrays) until `end_epoch`."""
        if not isinstance(stats, Mapping) or "on" not in stats:
            raise TypeError(f"stats must be the dict a probe returns (with 'on' and 'step'), got {_checks.describe(stats)}")
        self._pending.append(stats)

    def end_epoch(self, **logs: Any) -> None:
        """Fetch the epoch's stats once, add them to the records, and log this epoch's curves (loss=..., val_loss=...)."""
        pending, self._pending = distributed.to_host(self._pending), []
        layers = getattr(self.probed, "layer_names", None)
        for row in pending:
            if bool(np.asarray(row["on"])):
                self.log.add_step(self.epoch, row, layers)
        self.curves.append({"epoch": self.epoch, **{k: float(np.asarray(v)) for k, v in logs.items()}})
        self.log.check_warnings()
        self.epoch += 1

    def to_dict(self) -> dict[str, Any]:
        return self.log.to_dict()

    def save(self, run_dir: str | os.PathLike, *, params: Any = None, config: Mapping[str, Any] | None = None,
             evaluation: Mapping[str, Mapping[str, float]] | None = None) -> Path:
        """Write monitor.json, metrics.csv, summary.json, model.json (when params) and config.json (when config).

        evaluation: {"train": {...}, "validation": {...}, "test": {...}} final metrics for the summary;
        default: the last epoch's curves (val_ entries as validation).
        """
        if self._pending:
            self.end_epoch()
        out = Path(run_dir)
        out.mkdir(parents=True, exist_ok=True)
        _io.write_json(out / "monitor.json", self.log.to_dict())
        _io.atomic_write_text(out / "metrics.csv", self._csv())
        _io.write_json(out / "summary.json", self._summary(out, evaluation))
        if params is not None:
            _io.write_json(out / "model.json", model_rows(params, self.log.layers or None))
        if config is not None:
            _io.write_json(out / "config.json", dict(config))
        return out

    def _csv(self) -> str:
        keys = list(dict.fromkeys(k for row in self.curves for k in row))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(keys)
        for row in self.curves:
            writer.writerow([int(row[k]) if k == "epoch" else row.get(k, "") for k in keys])
        return buffer.getvalue()

    def _summary(self, out: Path, evaluation: Mapping[str, Mapping[str, float]] | None) -> dict[str, Any]:
        last = {k: v for k, v in (self.curves[-1] if self.curves else {}).items() if k != "epoch"}
        monitor = "val_loss" if any("val_loss" in r for r in self.curves) else "loss"
        scores = [(r[monitor], r["epoch"]) for r in self.curves if monitor in r and math.isfinite(r[monitor])]
        if evaluation is None:
            evaluation = {"train": {k: v for k, v in last.items() if not k.startswith("val_")},
                          "validation": {k[4:]: v for k, v in last.items() if k.startswith("val_")}}
        return {"name": self.name or out.name, "epochs_run": len(self.curves),
                "best_epoch": min(scores)[1] if scores else None, "best_monitor": monitor if scores else None,
                **{part: dict(evaluation.get(part, {})) for part in ("train", "validation", "test")},
                "last_epoch_logs": last, "stop_reason": None, "source": "jdl.diagnostics.Recorder"}
