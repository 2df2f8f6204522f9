"""Running a sweep: trials claimed one at a time by any number of workers, each an ordinary `jdl train` run.

A trial's record (trial-K/trial.json) moves from "running" to "complete", "pruned" or "failed";
an interrupted trial keeps "running" and its checkpoints, and `--resume` continues it where it
stopped. sweep.json, sweep.csv and report.html are rebuilt from the records.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jdl import _io
from jdl import runs as runs_lib
from jdl.callbacks import Callback
from jdl.config import ConfigError
from jdl.sweeps import spec as spec_lib
from jdl.sweeps import store
from jdl.train.checkpoint import latest_step


def default_out(sweep: spec_lib.Sweep) -> Path:
    return Path("sweeps") / sweep.name


def _command(sweep: spec_lib.Sweep, overrides: list[str], run_dir: Path) -> str:
    sets = " ".join(f"--set {shlex.quote(o)}" for o in overrides)
    return f"jdl train {shlex.quote(str(sweep.base))} {sets} --out {shlex.quote(str(run_dir))}"


def _prepare(sweep: spec_lib.Sweep, out: Path, *, resume: bool, joining: bool) -> None:
    """Create the sweep directory, or check it holds this very sweep; clear dead claims on resume."""
    header = out / "sweep.json"
    if header.is_file():
        saved = _io.read_json(header)
        ours = _io.json_restore(_io.json_safe(sweep.to_dict()))
        mismatched = [k for k in ours if saved.get(k) != ours[k] and k != "sweep_file"]
        if mismatched:
            raise ConfigError(f"{out} holds another sweep ({mismatched[0]} differs from {sweep.path}); "
                              "use --out for a new directory")
        if not (resume or joining):
            raise FileExistsError(f"{out} already holds this sweep; use --resume to continue it or --out for a new one")
    elif resume:
        raise FileNotFoundError(f"--resume: no sweep to resume in {out} (no sweep.json)")
    out.mkdir(parents=True, exist_ok=True)
    with store.locked(out):
        if not header.is_file():
            _io.write_json(header, {**sweep.to_dict(), "trials": []})
    if resume:
        cleared, elsewhere = store.clear_stale_claims(out)
        if cleared:
            print(f"jdl sweep: resuming interrupted trial(s) {', '.join(map(str, cleared))}", file=sys.stderr)
        if elsewhere:
            print(f"jdl sweep: claimed on other hosts, left alone: {'; '.join(elsewhere)}", file=sys.stderr)


class PruneCallback(Callback):
    """Report the objective to an Optuna trial after every epoch; stop the run when the pruner says so."""

    holds_state = False

    def __init__(self, trial: Any, metric: str):
        self.trial, self.metric, self.pruned = trial, metric, False

    def on_epoch_end(self, epoch: int, state: Any, logs: Any) -> None:
        value = logs.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            return None
        self.trial.report(float(value), step=int(epoch))
        if self.trial.should_prune():
            self.pruned = True
            self.context.stop_training = True
        return None


def open_record(sweep: spec_lib.Sweep, out: Path, number: int, params: dict[str, Any]) -> dict[str, Any]:
    """Trial `number`'s record, written as "running" (its command reproduces it alone with `jdl train`)."""
    run_dir = store.trial_dir(out, number)
    overrides = sweep.trial_overrides(params, sweep.base_config().name)
    record = store.read_trial(out, number) or {}
    record.update({"number": number, "params": params, "state": "running", "value": None,
                   "run_dir": os.path.relpath(run_dir, out), "command": _command(sweep, overrides, run_dir),
                   "pid": os.getpid(), "error": None})
    store.write_trial(out, record)
    return record


def fail_record(out: Path, record: dict[str, Any], err: BaseException, seconds: float) -> dict[str, Any]:
    record.update(state="failed", error=" ".join(str(err).split()), seconds=seconds)
    store.write_trial(out, record)
    return record


def close_record(sweep: spec_lib.Sweep, out: Path, record: dict[str, Any], summary: dict[str, Any], seconds: float,
                 pruned: bool = False) -> dict[str, Any]:
    """The finished trial's record: its objective (best epoch's value from metrics.csv), epochs and time."""
    number = record["number"]
    epochs, values = store.read_curve(store.trial_dir(out, number), sweep.objective.metric)
    if not values and sweep.objective.metric not in summary.get("last_epoch_logs", {}):
        raise ConfigError(f"objective: {sweep.objective.metric!r} was not logged by trial {number} "
                          f"(its logs: {', '.join(summary.get('last_epoch_logs', {}))})")
    value = sweep.objective.best(values)
    record.update(value=value, best_epoch=epochs[values.index(value)] if value is not None else None,
                  epochs_run=summary.get("epochs_run"), seconds=record.get("seconds", 0.0) + seconds,
                  state="pruned" if pruned else ("complete" if value is not None else "failed"),
                  error=None if value is not None else f"{sweep.objective.metric} was never finite (the run diverged)")
    store.write_trial(out, record)
    return record


TRIAL_ERRORS = (ConfigError, ValueError, TypeError, FloatingPointError, FileExistsError)


def run_trial(sweep: spec_lib.Sweep, out: Path, number: int, params: dict[str, Any], *, trial: Any = None,
              verbose: int = 0) -> dict[str, Any]:
    """Run (or continue) trial `number` in out/trial-K/ and write its record; the caller holds its claim."""
    run_dir = store.trial_dir(out, number)
    record = open_record(sweep, out, number, params)
    started = time.perf_counter()
    prune = PruneCallback(trial, sweep.objective.metric) if trial is not None else None
    try:
        config = sweep.trial_config(params)
        resume = latest_step(run_dir / runs_lib.LATEST) is not None
        summary = runs_lib.run(config, run_dir, resume=resume, verbose=verbose,
                               extra_callbacks=[prune] if prune is not None else ())
    except TRIAL_ERRORS as err:
        return fail_record(out, record, err, time.perf_counter() - started)
    return close_record(sweep, out, record, summary, time.perf_counter() - started,
                        pruned=prune is not None and prune.pruned)


def _grid_or_random(sweep: spec_lib.Sweep, out: Path, only: int | None, verbose: int) -> int:
    """Claim and run unfinished trials in order (just `only`, when given); returns how many ran."""
    points = sweep.points()
    numbers = range(len(points)) if only is None else [only]
    if sweep.population and only is None:
        from jdl.sweeps import population

        return population.run_batches(sweep, out, points, lambda record: _progress(sweep, record, verbose))
    ran = 0
    for number in numbers:
        existing = store.read_trial(out, number)
        if existing is not None and existing["state"] in store.FINISHED:
            if only is not None:
                print(f"jdl sweep: trial {number} is already {existing['state']} ({existing['run_dir']})", file=sys.stderr)
            continue
        if not store.claim(out, number):
            if only is not None:
                raise FileExistsError(f"trial {number} is claimed by another process ({store.trial_dir(out, number) / '.claim'})")
            continue
        try:
            record = run_trial(sweep, out, number, points[number])
        finally:
            store.release(out, number)
        ran += 1
        _progress(sweep, record, verbose)
    return ran


def _progress(sweep: spec_lib.Sweep, record: dict[str, Any], verbose: int) -> None:
    if verbose:
        value = "—" if record["value"] is None else f"{record['value']:.5g}"
        print(f"trial {record['number']}: {record['state']}, {sweep.objective.metric} {value} "
              f"({spec_lib.space_lib.label(record['params'])})", flush=True)


def _spawn_workers(sweep: spec_lib.Sweep, out: Path, workers: int, verbose: int) -> None:
    command = [sys.executable, "-m", "jdl.cli", "sweep", str(sweep.path), "--out", str(out), "--worker",
               "--verbose", str(min(verbose, 1))]
    children = [subprocess.Popen(command) for _ in range(workers)]
    try:
        codes = [child.wait() for child in children]
    except BaseException:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
        for child in children:
            child.wait()
        raise
    failed = [c for c in codes if c != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {workers} sweep workers exited with an error (codes {failed}); "
                           f"jdl sweep {sweep.path} --out {out} --resume continues")


def sweep(sweep: spec_lib.Sweep, out: str | os.PathLike | None = None, *, resume: bool = False, workers: int = 1,
          trial: int | None = None, worker: bool = False, verbose: int = 1) -> dict[str, Any]:
    """Run a sweep and write sweep.json, sweep.csv and report.html; returns sweep.json's content.

    sweep:   a parsed sweep file (`jdl.sweeps.load`)
    out:     the sweep directory (default sweeps/NAME)
    resume:  continue an interrupted sweep (finished trials are kept, interrupted ones continue)
    workers: run trials in this many local processes
    trial:   run only this trial number (grid and random; for job arrays)
    worker:  internal: a process started by `workers`, which leaves the report to its parent
    """
    from jdl.sweeps import optuna_search, report as report_lib

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if trial is not None:
        if sweep.method == "optuna":
            raise ConfigError("--trial runs one trial of a grid or random sweep; an optuna sweep's trials are asked "
                              "from its study: start `jdl sweep --resume` in each job instead (they share the journal)")
        if isinstance(trial, bool) or not isinstance(trial, int) or not 0 <= trial < sweep.trials:
            raise ValueError(f"--trial must be a trial number in 0..{sweep.trials - 1}, got {trial!r}")
    out = Path(out) if out is not None else default_out(sweep)
    _prepare(sweep, out, resume=resume, joining=worker or trial is not None)
    if workers > 1 and not worker and trial is None:
        _spawn_workers(sweep, out, workers, verbose)
    elif sweep.method == "optuna":
        optuna_search.run(sweep, out, run_trial=run_trial, progress=lambda r: _progress(sweep, r, verbose),
                          concurrent=worker)
    else:
        _grid_or_random(sweep, out, trial, verbose)
    body = store.write_summary(out, sweep.to_dict(), [d.key for d in sweep.dimensions])
    if not worker:
        report_lib.sweep_report(sweep, out, body).save(out)
    return body
