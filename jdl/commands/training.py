"""`jdl train CONFIG` and `jdl sweep SWEEP.toml`: runs of TOML configs; a signal stops one with a checkpoint and
prints the command that resumes it."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from jdl.commands.errors import user_error


def run_train(args: argparse.Namespace) -> int:
    """Run a TOML config: `jdl train CONFIG [--set k=v ...] [--out DIR] [--resume]`.

    SIGINT (Ctrl-C) or SIGTERM stops training after the current dispatch, saves a checkpoint and
    prints one line with the `--resume` command; the exit status is 130 (SIGINT) or 143 (SIGTERM).
    """
    from jdl import _processes, launch

    multi = _processes.requested(args.coordinator, args.num_processes)
    if multi:
        try:
            _processes.check_arguments(args.coordinator, args.num_processes, args.process_id)
        except ValueError as err:
            return user_error(args.command, err)
        if not launch.is_child():
            return launch.supervise(args.argv, args.process_id, args.num_processes)
        launch.use_parent_stdout()
        launch.watch_parent()
    from jdl import config as config_lib
    from jdl.train import distributed

    if multi:
        try:
            distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                                   connect_seconds=args.connect_timeout)
        except ValueError as err:
            return user_error(args.command, err)
    try:
        config = config_lib.load(args.config, args.set)
    except (ValueError, TypeError) as err:  # ConfigError, or a check that escaped it: the user's config
        return user_error(args.command, err)
    if args.print_config:
        import json

        if distributed.is_main():
            print(json.dumps(config.to_dict(), indent=2))
        return 0
    from jdl import runs as run_lib
    from jdl.train.callbacks.backup_and_restore import TrainingInterrupted

    out = Path(args.out) if args.out is not None else Path("runs") / config.name
    again = shlex.join(["jdl", "train", str(args.config), "--out", str(out), "--resume",
                        *(part for item in args.set for part in ("--set", item))])
    try:
        summary = run_lib.run(config, out, resume=args.resume, verbose=args.verbose)
    except TrainingInterrupted as stop:
        if distributed.is_main():
            every = " in every process, with its --coordinator/--num-processes/--process-id" if multi else ""
            print(f"jdl train: {stop.reason}: saved the state after step {stop.steps_done}/{stop.steps_per_epoch} of "
                  f"epoch {stop.epoch + 1} to {stop.directory}/{stop.step}; continue with: {again}{every}",
                  file=sys.stderr)
        return run_lib.exit_code(getattr(signal, stop.reason, signal.SIGINT))
    except KeyboardInterrupt:
        print(f"jdl train: interrupted; the last checkpoint is in {out / run_lib.LATEST}; continue with: {again}",
              file=sys.stderr)
        return 130
    except Exception as err:
        if multi and _lost_peer(err):
            _await_lost_verdict(err)
        raise
    if not distributed.is_main():
        return 0
    test = ", ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
    print(f"{summary['name']}: {summary['epochs_run']} epochs, best epoch {summary['best_epoch']}; test {test}")
    if summary["stop_reason"]:
        print(summary["stop_reason"], file=sys.stderr)
    print(f"wrote {out}/ (report: {out / 'report.html'})")
    return 0


def _lost_peer(err: BaseException) -> bool:
    """True for the runtime error a collective raises when another process of the run is gone."""
    import jax

    return isinstance(err, jax.errors.JaxRuntimeError)


def _await_lost_verdict(err: BaseException) -> None:
    """Wait for JAX's coordination service to say which process was lost (it ends this process), then exit."""
    import os
    import time

    from jdl import launch
    from jdl.train import distributed

    print(f"{launch.LOST_MARK} {' '.join(str(err).split())[:300]}", file=sys.stderr, flush=True)
    time.sleep(distributed.HEARTBEAT_SECONDS + 20)
    os._exit(launch.EXIT_LOST)  # no verdict came: skip JAX's exit barrier, which would wait for the lost process


def run_sweep(args: argparse.Namespace) -> int:
    """Run a hyperparameter sweep: `jdl sweep SWEEP.toml [--out DIR] [--workers K] [--trial K] [--resume]`."""
    from jdl import sweeps

    from jdl import runs as run_lib
    from jdl.train.callbacks.backup_and_restore import TrainingInterrupted

    sweep = sweeps.load(args.sweep_file)
    out = Path(args.out) if args.out is not None else sweeps.runner.default_out(sweep)
    again = shlex.join(["jdl", "sweep", str(args.sweep_file), "--out", str(out), "--resume"])
    try:
        body = sweeps.run(sweep, out, resume=args.resume, workers=args.workers, trial=args.trial, worker=args.worker,
                          verbose=args.verbose)
    except TrainingInterrupted as stop:
        print(f"jdl sweep: {stop.reason}: the running trial saved its state in {stop.directory}; "
              f"continue with: {again}", file=sys.stderr)
        return run_lib.exit_code(getattr(signal, stop.reason, signal.SIGINT))
    except KeyboardInterrupt:
        print(f"jdl sweep: interrupted; finished trials are kept; continue with: {again}", file=sys.stderr)
        return 130
    if not args.worker:
        done = [t for t in body["trials"] if t["value"] is not None and t["state"] == "complete"]
        if done:
            pick = min if sweep.objective.direction == "minimize" else max
            best = pick(done, key=lambda t: t["value"])
            print(f"{sweep.name}: best trial {best['number']}, {sweep.objective.metric} {best['value']:.5g} "
                  f"({sweeps.space.label(best['params'])})")
        print(f"wrote {out}/ (sweep.json, sweep.csv, report: {out / 'report.html'})")
    return 0


def trial_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a trial number, got {text!r}") from None
