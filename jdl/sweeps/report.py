"""The sweep report: trials ranked by the objective, the objective against each hyperparameter, the best
trials' learning curves, and each trial's gradient-health warnings from its monitor."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator, NullFormatter

from jdl import _io
from jdl.diagnostics.report.page import Report, Section, figure_png, pyplot
from jdl.sweeps import spec as spec_lib
from jdl.sweeps import store
from jdl.sweeps.space import label

STATE_COLOURS = {"complete": "#1f77b4", "pruned": "#ff7f0e", "failed": "#d62728", "running": "#7f7f7f"}
BEST_CURVES = 5


def ranked(sweep: spec_lib.Sweep, trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complete trials best first, then pruned (by their value), then the rest by number."""
    sign = 1.0 if sweep.objective.direction == "minimize" else -1.0

    def key(t: dict[str, Any]) -> tuple[int, float, int]:
        value = t.get("value")
        order = {"complete": 0, "pruned": 1}.get(t["state"], 2)
        return order, sign * value if value is not None else math.inf, t["number"]

    return sorted(trials, key=key)


def _value_axis(dim: spec_lib.space_lib.Dimension, values: list[Any]) -> tuple[list[float], list[str] | None]:
    if dim.discrete:
        names = [_io.json_safe(v) for v in dim.values]
        return [names.index(_io.json_safe(v)) for v in values], [str(n) for n in names]
    return [float(v) for v in values], None


def _scatter(sweep: spec_lib.Sweep, trials: list[dict[str, Any]]) -> bytes:
    plt = pyplot()
    dims = sweep.dimensions
    fig, axes = plt.subplots(1, len(dims), figsize=(3.6 * len(dims), 3.2), squeeze=False)
    for ax, dim in zip(axes[0], dims):
        for state, colour in STATE_COLOURS.items():
            chosen = [t for t in trials if t["state"] == state and t.get("value") is not None]
            if not chosen:
                continue
            xs, ticks = _value_axis(dim, [t["params"][dim.key] for t in chosen])
            ax.scatter(xs, [t["value"] for t in chosen], c=colour, label=state, s=22, alpha=0.8)
        if dim.kind == "log_uniform":
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        if dim.discrete:
            ax.set_xticks(range(len(dim.values)), [str(_io.json_safe(v)) for v in dim.values], rotation=30, ha="right")
        ax.set_xlabel(dim.key)
        ax.set_ylabel(sweep.objective.metric)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return figure_png(fig)


def _cell(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(_io.json_safe(value))


def _curves(sweep: spec_lib.Sweep, out: Path, best: list[dict[str, Any]]) -> bytes | None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    drawn = 0
    for rank, trial in enumerate(best):
        epochs, values = store.read_curve(out / trial["run_dir"], sweep.objective.metric)
        if epochs:
            ax.plot(epochs, values, label=f"#{trial['number']} {label(trial['params'])}",
                    linestyle=("-", "--", ":", "-.")[rank % 4])
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(sweep.objective.metric)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
    return figure_png(fig)


def _health(out: Path, trial: dict[str, Any]) -> list[str]:
    """A trial's gradient-health warnings (its monitor), a non-finite stop and its error, in plain words."""
    run_dir = out / trial["run_dir"]
    notes = []
    if (run_dir / "monitor.json").is_file():
        notes += list(_io.read_json(run_dir / "monitor.json").get("warnings", []))
    if (run_dir / "summary.json").is_file():
        reason = _io.read_json(run_dir / "summary.json").get("stop_reason")
        if reason and "non-finite" in str(reason).lower():  # early stopping is no gradient trouble
            notes.append(str(reason))
    if trial.get("error"):
        notes.append(str(trial["error"]))
    return notes


HEALTH_KINDS = (("non-finite", ("non-finite", "nan", "inf")), ("exploding gradients", ("explod", "grow")),
                ("vanishing gradients", ("vanish", "underflow")), ("dead ReLUs", ("dead",)))


def _kind(message: str) -> str:
    text = message.lower()
    return next((kind for kind, words in HEALTH_KINDS if any(w in text for w in words)), "other warnings")


def _where(sweep: spec_lib.Sweep, hit: list[dict[str, Any]], rest: list[dict[str, Any]]) -> str:
    """Which values the affected trials share, against the others: ranges of numbers, counts of choices."""
    parts = []
    for dim in sweep.dimensions:
        name = dim.key.rsplit(".", 1)[-1]
        values = [t["params"][dim.key] for t in hit]
        others = [t["params"][dim.key] for t in rest]
        if not dim.discrete or all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in dim.values):
            if others and (min(values), max(values)) == (min(others), max(others)):
                continue
            text = f"{name} {min(values):.3g}–{max(values):.3g}" if len(set(map(str, values))) > 1 else f"{name} {values[0]:.3g}"
            if others:
                text += f" (the others {min(others):.3g}–{max(others):.3g})"
        else:
            counts = {str(v): sum(str(x) == str(v) for x in values) for v in dim.values}
            text = f"{name} " + ", ".join(f"{k} ×{c}" for k, c in counts.items() if c)
        parts.append(text)
    return "; ".join(parts)


def health_findings(sweep: spec_lib.Sweep, trials: list[dict[str, Any]], health: dict[int, list[str]]) -> list[str]:
    """One finding per kind of gradient trouble: how many trials, which, and the values they share."""
    findings = []
    for kind in [k for k, _ in HEALTH_KINDS] + ["other warnings"]:
        numbers = [n for n, notes in health.items() if any(_kind(m) == kind for m in notes)]
        if not numbers:
            continue
        hit = [t for t in trials if t["number"] in numbers]
        rest = [t for t in trials if t["number"] not in numbers]
        listed = ", ".join(f"#{n}" for n in sorted(numbers)[:12]) + (" …" if len(numbers) > 12 else "")
        findings.append(f"{kind[0].upper() + kind[1:]} in {len(numbers)} of {len(trials)} trials ({listed}): {_where(sweep, hit, rest)}. "
                        "The table 'Gradient health per trial' gives each monitor's words.")
    return findings


def sweep_report(sweep: spec_lib.Sweep, out: Path, body: dict[str, Any]) -> Report:
    """The report of a finished (or partly finished) sweep directory."""
    trials = ranked(sweep, body["trials"])
    counts = {state: sum(t["state"] == state for t in trials) for state in store.STATES}
    report = Report(f"Sweep report: {sweep.name}", data={"sweep": body})
    complete = [t for t in trials if t["state"] == "complete"]
    metric = sweep.objective.metric
    if complete:
        best = complete[0]
        report.findings.append(f"Best trial #{best['number']}: {metric} {best['value']:.5g} with "
                               f"{label(best['params'])} (epoch {best.get('best_epoch')}); rerun it alone with: {best['command']}")
    report.findings.append(f"{len(trials)} of {sweep.trials} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    for dim in sweep.dimensions:
        if dim.discrete and len(complete) >= 2:
            by_value = {}
            for t in complete:
                by_value.setdefault(str(_io.json_safe(t["params"][dim.key])), []).append(t["value"])
            means = {k: sum(v) / len(v) for k, v in by_value.items()}
            if len(means) > 1 and dim.key.rsplit(".", 1)[-1] == "seed":
                report.findings.append(
                    f"{dim.key}: the seed means of {metric} differ by {max(means.values()) - min(means.values()):.3g} ("
                    + ", ".join(f"seed {k}: {v:.4g}" for k, v in means.items())
                    + "); differences between other settings smaller than that are within seed noise")
            elif len(means) > 1:
                pick = (min if sweep.objective.direction == "minimize" else max)(means, key=means.get)
                report.findings.append(f"{dim.key} = {pick} is best on average ({metric} {means[pick]:.4g} over "
                                       f"{len(by_value[pick])} trials; the others: "
                                       + ", ".join(f"{dim.key.rsplit('.', 1)[-1]}={k} {v:.4g}" for k, v in means.items()
                                                   if k != pick) + ")")
    health = {t["number"]: _health(out, t) for t in trials}
    unhealthy = [n for n, notes in health.items() if notes]
    report.findings += health_findings(sweep, trials, health)

    keys = [d.key for d in sweep.dimensions]
    rows = [[t["number"], t["state"], t.get("value"), *(_cell(t["params"].get(k)) for k in keys),
             t.get("best_epoch"), t.get("epochs_run"), t.get("run_dir")] for t in trials]
    report.sections.append(Section(
        "Trials, best first",
        [f"method {sweep.method}, objective {metric} ({sweep.objective.direction}; a trial's value is its best epoch's), "
         f"base config {sweep.base}" + (f", fixed overrides {', '.join(sweep.overrides)}" if sweep.overrides else "")
         + (f", pruner {sweep.pruner['name']}" if sweep.pruner.get("name") != "none" else "") + "."],
        table=(["trial", "state", metric, *keys, "best epoch", "epochs", "run directory"], rows)))
    if any(t.get("value") is not None for t in trials):
        report.sections.append(Section(
            "The objective against each hyperparameter", [],
            figures=[(_scatter(sweep, trials), f"{metric} of every trial against each searched key "
                                               "(colour: trial state; pruned trials show their last reported value)")]))
    curves = _curves(sweep, out, complete[:BEST_CURVES])
    if curves is not None:
        report.sections.append(Section(f"Learning curves of the best {min(BEST_CURVES, len(complete))} trials", [],
                                       figures=[(curves, f"{metric} per epoch")]))
    report.sections.append(Section(
        "Gradient health per trial",
        ["Warnings each trial's gradient monitor raised (exploding, vanishing, dead units, non-finite values), "
         "runs stopped by a non-finite loss, and errors." if unhealthy else
         "No trial's gradient monitor raised a warning and no run stopped for a non-finite value."],
        table=(["trial", "parameters", "state", "warnings"],
               [[n, label(next(t for t in trials if t["number"] == n)["params"]),
                 next(t for t in trials if t["number"] == n)["state"], "; ".join(health[n])] for n in unhealthy])
        if unhealthy else None))
    return report
