"""Findings of a training run a reader can act on: each names a layer or an epoch/step, a number and a remedy.

Pure functions of plain dicts (summary, per-epoch curves, monitor.json), so they are tested on
synthetic runs. `training_findings` ranks them: the run's outcome first ("did not learn"), then
critical, warning and info findings, each as "SEVERITY: text".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
VANISHING = 1e-3  # a layer's gradient norm below this fraction of the largest layer's is "vanishing"
UNDERFLOW = 1e-30  # a gradient norm at or below this is float32 underflow, not a small number
BOUNDED = ("sigmoid", "tanh", "hard_sigmoid", "bipolar_sigmoid", "softsign")
RELU_FAMILY = ("relu", "step", "relu6")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One finding: severity ("critical" | "warning" | "info"), the sentence, and a key for diffing runs."""

    severity: str
    text: str
    key: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.text}"


@dataclasses.dataclass
class RunFacts:
    """What the findings read: summary (metrics of the returned state), curves per epoch, monitor.json, context.

    curves: {"epoch": [1, 2, ...], "loss": [...], "val_loss": [...], "lr": [...], ...} with 1-based epochs.
    context: num_classes, batch_size, activation, learning_rate, epochs (planned), examples (label /
    prediction per training index, for the top examples) when known.
    """

    summary: Mapping[str, Any]
    curves: Mapping[str, Sequence[float]]
    monitor: Mapping[str, Any]
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def layer_order(monitor: Mapping[str, Any]) -> list[str]:
    """Layers in the order monitor.json recorded them (network order; never re-sorted)."""
    if monitor.get("layers"):
        return list(monitor["layers"])
    records = monitor.get("records") or []
    return list(records[0]["grad_norm"]) if records and "grad_norm" in records[0] else []


def merged_top_examples(monitor: Mapping[str, Any]) -> list[dict[str, Any]]:
    """monitor.json's top_examples with repeats of one index merged: largest norm, summed count, epochs and steps seen.

    Reads entries with or without "epoch" (1-based) and "count"; sorted by norm, largest first.
    """
    merged: dict[int, dict[str, Any]] = {}
    for entry in monitor.get("top_examples") or []:
        if isinstance(entry, Mapping):
            index, norm, step = int(entry["index"]), float(entry["norm"]), entry.get("step")
            epoch, count = entry.get("epoch"), int(entry.get("count", 1))
        else:  # the old (norm, index, step) tuple
            norm, index, step = float(entry[0]), int(entry[1]), entry[2]
            epoch, count = None, 1
        row = merged.setdefault(index, {"index": index, "norm": norm, "count": 0, "steps": [], "epochs": []})
        row["norm"] = max(row["norm"], norm)
        row["count"] += count
        if step is not None and step not in row["steps"]:
            row["steps"].append(int(step))
        if epoch is not None and epoch not in row["epochs"]:
            row["epochs"].append(int(epoch))
    return sorted(merged.values(), key=lambda r: -r["norm"])


def noise_scale_curve(records: Sequence[Mapping[str, Any]], decay: float = 0.9) -> dict[str, Any]:
    """B_simple as McCandlish et al. (2018, App. A): running averages of the unbiased |G|² and tr(Σ), divided afterwards.

    Each record's "noise_signal" (|G|² estimate ‖ḡ‖² − tr(Σ)/B) and "noise_trace" (tr(Σ)) enter
    bias-corrected exponential averages S_t, T_t (factor `decay`); B_t = T_t / S_t where S_t > 0
    (before that: warm-up). Also the per-step ratio, for drawing faintly. Records with only
    "noise_scale" (older monitors) give a running median of the finite per-step ratios instead.
    Returns {"steps", "per_step", "running", "method"}; NaN marks steps without a value.
    """
    rows = [r for r in records if "noise_scale" in r or "noise_trace" in r]
    steps = [int(r["step"]) for r in rows]
    per_step = [float(r.get("noise_scale", math.nan)) for r in rows]
    if rows and all("noise_signal" in r and "noise_trace" in r for r in rows):
        s = t = 0.0
        running = []
        for i, r in enumerate(rows, start=1):
            s = decay * s + (1 - decay) * float(r["noise_signal"])
            t = decay * t + (1 - decay) * float(r["noise_trace"])
            correction = 1 - decay ** i
            signal, trace = s / correction, t / correction
            running.append(trace / signal if signal > 0 and math.isfinite(trace) else math.nan)
        return {"steps": steps, "per_step": per_step, "running": running, "method": "running averages of |G|² and tr(Σ)"}
    running, seen = [], []
    for value in per_step:
        if math.isfinite(value):
            seen.append(value)
        running.append(float(np.median(seen[-20:])) if seen else math.nan)
    return {"steps": steps, "per_step": per_step, "running": running,
            "method": "running median of the per-step ratio (this monitor.json has no |G|², tr(Σ) estimates)"}


def _chance(context: Mapping[str, Any]) -> float | None:
    classes = context.get("num_classes")
    return 1.0 / classes if isinstance(classes, int) and classes > 1 else None


def _final(summary: Mapping[str, Any], curves: Mapping[str, Sequence[float]], metric: str) -> float | None:
    for part in ("train",):
        value = (summary.get(part) or {}).get(metric)
        if isinstance(value, (int, float)):
            return float(value)
    values = [v for v in curves.get(metric, []) if math.isfinite(v)]
    return values[-1] if values else None


def _span(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} … {names[-1]} ({len(names)} layers)"


def _gradient_causes(facts: RunFacts) -> list[Finding]:
    """Gradient pathologies at the last monitored step: non-finite, underflow, vanishing, saturation, dead units."""
    records = facts.monitor.get("records") or []
    if not records:
        return []
    layers = layer_order(facts.monitor)
    last = records[-1]
    step = last.get("step")
    out = []
    bad = next(((r["step"], k) for r in records for k, ok in (r.get("finite") or {}).items() if not ok), None)
    if bad:
        out.append(Finding("critical", f"The gradient of {bad[1]} went non-finite at step {bad[0]}: lower the learning "
                           "rate, clip gradients (clipnorm=1.0) or check the inputs for inf/NaN.", "nonfinite"))
    norms = {k: last["grad_norm"][k] for k in layers if k in last.get("grad_norm", {})}
    finite = {k: v for k, v in norms.items() if math.isfinite(v)}
    top_name = max(finite, key=finite.get) if finite else None
    top = finite.get(top_name, 0.0) if top_name else 0.0
    if top > UNDERFLOW:
        under = [k for k in layers if k in finite and finite[k] <= UNDERFLOW]
        if under:
            out.append(Finding("critical", f"Gradient underflow at step {step}: {_span(under)} get exactly 0 in float32 "
                               f"(largest: {top_name}, {top:.2g}), so they receive no update; the signal vanished below "
                               "float32's range: use ReLU with He init, batch norm, residual connections or fewer layers.",
                               "underflow"))
        weak = [k for k in layers if k in finite and UNDERFLOW < finite[k] < VANISHING * top]
        if weak:
            ratios = [finite[k] / top for k in weak]
            out.append(Finding("warning", f"Vanishing gradient at step {step}: {_span(weak)} get {min(ratios):.1e} to "
                               f"{max(ratios):.1e} of {top_name}'s gradient norm ({top:.2g}), so they barely learn: use "
                               "ReLU with He init, batch norm or residual connections.", "vanishing"))
    activation = facts.context.get("activation") or facts.monitor.get("activation")
    stats = last.get("activations") or {}
    saturated = {k: v["saturated"] for k, v in stats.items() if v.get("saturated", 0) > 0.5}
    if saturated and (activation is None or activation in BOUNDED):
        name = max(saturated, key=saturated.get)
        out.append(Finding("warning", f"{100 * saturated[name]:.0f}% of {name}'s units are saturated at step {step}"
                           + (f" ({len(saturated)} layers above 50%)" if len(saturated) > 1 else "")
                           + ": their gradient is ≈ 0; use Glorot init, standardized inputs or ReLU.", "saturated"))
    dead = {k: v["dead"] for k, v in stats.items() if v.get("dead", 0) > 0.5}
    if dead and (activation is None or activation in RELU_FAMILY):
        name = max(dead, key=dead.get)
        out.append(Finding("warning", f"{100 * dead[name]:.0f}% of {name}'s ReLUs are dead at step {step}"
                           + (f" ({len(dead)} layers above 50%)" if len(dead) > 1 else "")
                           + ": lower the learning rate, use He init or leaky_relu.", "dead"))
    totals = [math.sqrt(sum(v * v for v in r["grad_norm"].values())) for r in records if r.get("grad_norm")]
    if len(totals) >= 4 and all(math.isfinite(t) for t in totals):
        quarter = max(1, len(totals) // 4)
        early, late = float(np.median(totals[:quarter])), float(np.median(totals[-quarter:]))
        if early > 0 and late > 100 * early:
            out.append(Finding("warning", f"Exploding gradient: the global gradient norm grew {late / early:.0f}-fold "
                               f"by step {step}: clip gradients (clipnorm=1.0) or lower the learning rate.", "exploding"))
    return out


def _update_cause(facts: RunFacts) -> Finding | None:
    records = facts.monitor.get("records") or []
    ratios = [v for r in records[-max(1, len(records) // 4):] for v in (r.get("update_ratio") or {}).values()
              if math.isfinite(v)]
    if not ratios:
        return None
    median = float(np.median(ratios))
    lr = facts.context.get("learning_rate")
    at = f" (learning rate {lr:.3g})" if isinstance(lr, (int, float)) else ""
    if median < 1e-5:
        return Finding("warning", f"Updates are {median:.1e} of the weights per step{at}, healthy is ≈ 1e-3: raise the "
                       "learning rate.", "small updates")
    if median > 1e-1:
        return Finding("warning", f"Updates are {median:.2g} of the weights per step{at}, healthy is ≈ 1e-3: lower the "
                       "learning rate.", "large updates")
    return None


def _did_not_learn(facts: RunFacts, causes: list[Finding]) -> Finding | None:
    chance = _chance(facts.context)
    accuracy = _final(facts.summary, facts.curves, "accuracy")
    epochs = len(facts.curves.get("epoch", [])) or facts.summary.get("epochs_run")
    if chance is not None and accuracy is not None and accuracy <= min(1.5 * chance, chance + 0.1):
        outcome = (f"The model did not learn: training accuracy {accuracy:.3f} is at chance "
                   f"(1/{facts.context['num_classes']} = {chance:.3f}) after {epochs} epochs.")
    else:
        losses = [v for v in facts.curves.get("loss", []) if math.isfinite(v)]
        if len(losses) < 3 or losses[-1] < 0.95 * losses[0]:
            return None
        outcome = (f"The model did not learn: the training loss went from {losses[0]:.3g} (epoch 1) to only "
                   f"{losses[-1]:.3g} (epoch {len(losses)}).")
    if causes:
        cause = causes[0]
        return Finding("critical", f"{outcome} Most likely cause: {cause.text[0].lower()}{cause.text[1:]}", "did not learn")
    if not facts.monitor.get("records"):
        return Finding("critical", f"{outcome} The gradient monitor was off, so no cause can be named: rerun with it, "
                       "and check the labels and the learning rate.", "did not learn")
    return Finding("critical", f"{outcome} The gradients look healthy: check that labels match inputs (not shuffled "
                   "separately), the loss fits the labels, and the learning rate.", "did not learn")


def _curve_findings(facts: RunFacts) -> list[Finding]:
    """Still improving, overfitting (validation loss rising while training loss falls), or a generalization gap."""
    curves, out = facts.curves, []
    name = "val_loss" if any(math.isfinite(v) for v in curves.get("val_loss", [])) else "loss"
    values = np.asarray(curves.get(name, []), float)
    epochs = list(curves.get("epoch", range(1, len(values) + 1)))
    if len(values) < 2 or not np.isfinite(values).any():
        return out
    best = int(np.nanargmin(values))
    last = len(values) - 1
    window = max(1, len(values) // 10)
    lr = facts.context.get("learning_rate")
    if best >= last - window + 1 and (len(values) < 3 or values[last] < values[max(0, last - window)]):
        before = max(0, last - max(window, 2))
        out.append(Finding("warning", f"Still improving at the last epoch ({epochs[last]}): {name} fell from "
                           f"{values[before]:.4g} (epoch {epochs[before]}) to {values[last]:.4g}; train longer"
                           + (f" or raise the learning rate ({lr:.3g})" if isinstance(lr, (int, float)) else "")
                           + " — this is not overfitting.", "still improving"))
        return out
    train = np.asarray(curves.get("loss", []), float)
    if name == "val_loss" and len(train) == len(values):
        rise = values[last] - values[best]
        if rise > 0.1 * abs(values[best]) + 0.01 and train[last] < train[best]:
            out.append(Finding("warning", f"Overfitting from epoch {epochs[best]}: val_loss rose from {values[best]:.4g} "
                               f"to {values[last]:.4g} (epoch {epochs[last]}) while the training loss fell from "
                               f"{train[best]:.4g} to {train[last]:.4g}; keep the weights of epoch {epochs[best]} "
                               "(early stopping with restore_best_weights) and regularize (dropout, weight decay, "
                               "augmentation).", "overfitting"))
        elif values[best] > 1.5 * train[best] + 0.05:
            out.append(Finding("info", f"Generalization gap at the best epoch ({epochs[best]}): val_loss "
                               f"{values[best]:.4g} against training loss {train[best]:.4g}; more data or "
                               "regularization would narrow it.", "gap"))
    return out


def _noise_finding(facts: RunFacts) -> Finding | None:
    curve = noise_scale_curve(facts.monitor.get("records") or [])
    batch = facts.context.get("batch_size")
    values = [(s, b) for s, b in zip(curve["steps"], curve["running"]) if math.isfinite(b)]
    if not values or not isinstance(batch, int):
        return None
    step, scale = values[-1]
    if batch < scale / 10:
        return Finding("info", f"Batch size {batch} is far below the gradient noise scale B_simple ≈ {scale:.3g} "
                       f"(step {step}): batches up to ≈ {scale:.0f} would need proportionally fewer steps "
                       "(scale the learning rate with them).", "noise scale")
    if batch > 2 * scale:
        return Finding("info", f"Batch size {batch} exceeds the gradient noise scale B_simple ≈ {scale:.3g} (step "
                       f"{step}): smaller batches would reach the same loss with less computation.", "noise scale")
    return None


def _example_finding(facts: RunFacts) -> Finding | None:
    top = merged_top_examples(facts.monitor)[:5]
    if not top:
        return None
    norms = [n for r in facts.monitor.get("records") or [] for n in r.get("example_norm", [])]
    median = float(np.median(norms)) if norms else None
    examples = facts.context.get("examples") or {}
    parts = []
    for row in top:
        seen = f", {row['count']} times" if row["count"] > 1 else ""
        known = examples.get(row["index"]) or examples.get(str(row["index"])) or {}
        label = (f", label {known['label']} predicted {known['prediction']}"
                 if "label" in known and "prediction" in known else "")
        parts.append(f"#{row['index']} (norm {row['norm']:.3g}{seen}{label})")
    scale = f", median {median:.3g}" if median else ""
    return Finding("info", f"Training examples with the largest per-example gradients{scale}: {', '.join(parts)}; "
                   "check their labels (mislabeled examples stand out here).", "top examples")


def training_findings(facts: RunFacts) -> list[Finding]:
    """All findings of a run, ranked: "did not learn" first, then by severity (critical, warning, info)."""
    causes = _gradient_causes(facts)
    update = _update_cause(facts)
    outcome = _did_not_learn(facts, causes + ([update] if update else []))
    findings: list[Finding] = []
    stop = facts.summary.get("stop_reason")
    if stop and any(word in str(stop).lower() for word in ("non-finite", "nonfinite", " nan")):
        findings.append(Finding("critical", str(stop), "stop"))
    if outcome is None:
        findings += _curve_findings(facts)
    findings += causes
    if outcome is not None and update is not None:
        findings.append(update)
    for extra in (_noise_finding(facts), _example_finding(facts)):
        if extra is not None:
            findings.append(extra)
    if not facts.monitor.get("records"):
        findings.append(Finding("info", "The gradient monitor was off for this run: no per-layer findings (add a "
                                "GradientMonitor callback or keep jdl train's default).", "monitor off"))
    findings.sort(key=lambda f: SEVERITY_RANK[f.severity])
    if outcome is not None:
        used = outcome.text.split("Most likely cause: ")[-1]
        findings = [outcome] + [f for f in findings if f.text[0].lower() + f.text[1:] != used]
    return findings


def diff_findings(runs: Mapping[str, Sequence[Finding]]) -> list[tuple[str, list[str]]]:
    """Findings keys per run: (key, [runs that have it]) for keys not shared by all runs, then shared ones."""
    keys: dict[str, list[str]] = {}
    for name, findings in runs.items():
        for finding in findings:
            keys.setdefault(finding.key, [])
            if name not in keys[finding.key]:
                keys[finding.key].append(name)
    return sorted(keys.items(), key=lambda kv: (len(kv[1]) == len(runs), kv[0]))
