"""The `jdl` command: `jdl info` (versions and devices), `jdl train CONFIG` (batch runs), `jdl study NAME` (gradient studies)."""

from __future__ import annotations

import argparse
import inspect
import platform
import shlex
import signal
import sys
from collections.abc import Sequence
from typing import Any
from pathlib import Path
from importlib.metadata import version


def _info(args: argparse.Namespace) -> int:
    """Print jdl, Python, JAX, Flax and Optax versions and the devices JAX sees."""
    import flax
    import jax
    import optax

    import jdl

    print(f"jdl      {jdl.__version__}")
    print(f"python   {platform.python_version()} ({sys.executable})")
    print(f"jax      {jax.__version__}")
    print(f"jaxlib   {version('jaxlib')}")
    print(f"flax     {flax.__version__}")
    print(f"optax    {optax.__version__}")
    print(f"backend  {jax.default_backend()}")
    devices = jax.devices()
    print(f"devices  {len(devices)}")
    for device in devices:
        print(f"  [{device.id}] {device.platform}: {device.device_kind}")
    return 0


def _train(args: argparse.Namespace) -> int:
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
            return _error(args.command, err)
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
            return _error(args.command, err)
    try:
        config = config_lib.load(args.config, args.set)
    except (ValueError, TypeError) as err:  # ConfigError, or a check that escaped it: the user's config
        return _error(args.command, err)
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


def _sweep(args: argparse.Namespace) -> int:
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


def _trial_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a trial number, got {text!r}") from None


STUDY_SIZES = {
    "depth": {"full": dict(depths=(2, 5, 10, 20, 30), batch_norm=(False, True), steps=200),
              "quick": dict(activations=("sigmoid", "tanh", "relu"), inits=("uniform", "xavier_normal", "he_normal", "large"),
                            depths=(3, 10), batch_norm=(False,), width=64, steps=0, examples=256)},
    "init": {"full": dict(depth=30, width=512), "quick": dict(depth=10, width=128, examples=300)},
    "rnn": {"full": dict(length=200), "quick": dict(length=40, units=16, examples=32, sweep_length=20)},
    "adding": {"full": dict(lengths=(50, 100, 200), steps=2000),
               "quick": dict(cells=("simple_rnn", "lstm"), lengths=(10,), clipnorms=(1.0,), steps=200, units=16,
                             eval_every=50, test_examples=200)},
    "copy": {"full": dict(lengths=(20, 50, 100), steps=3000),
             "quick": dict(cells=("simple_rnn", "lstm"), lengths=(5,), clipnorms=(1.0,), steps=200, units=16,
                           eval_every=50, test_examples=200)},
    "glorot": {"full": dict(width=256), "quick": dict(width=32, examples=128, jacobian_examples=8, bins=21)},
    "he": {"full": dict(depth=30, width=256, steps=300),
           "quick": dict(depth=12, width=32, signal_width=64, signal_examples=200, steps=60, examples=128,
                         learning_rate=0.05)},
    "pascanu": {"full": dict(iterations=400, grid=161), "quick": dict(iterations=150, grid=25)},
    "noise-scale": {"full": dict(steps=1000, checkpoints=10),
                    "quick": dict(hidden=32, steps=200, checkpoints=4, learning_rate=0.05, big=256, small=32,
                                  batches=128)},
}

STUDY_HELP = {  # what each study shows and roughly how long its full size takes on 2 idle cores (--quick: seconds)
    "adding": "SimpleRNN vs LSTM vs GRU on the adding problem (about 20 min)",
    "copy": "SimpleRNN vs LSTM vs GRU on the copy-memory task (about 30 min)",
    "depth": "activation x init x depth x batch-norm grid of per-layer gradients, 200 SGD steps (about 15 min)",
    "glorot": "Glorot & Bengio 2010: tanh activations, gradients and Jacobians at init (about 15 s)",
    "he": "He et al. 2015: 30-layer ReLU net, Xavier vs He init, signal and training (about 1 min)",
    "init": "30-layer ReLU signal under Xavier vs He (about 10 s)",
    "noise-scale": "McCandlish et al. 2018: B_simple during training, two estimators (about 1 min)",
    "pascanu": "Pascanu et al. 2013: the one-unit RNN's cliff, plain vs clipped descent (about 20 s)",
    "rnn": "gradient through time per cell and recurrent weight scale (about 30 s)",
}

STUDIES = {
    "depth": ("depth_study", "depth_report"),
    "init": ("init_study", "init_report"),
    "rnn": ("rnn_study", "rnn_report"),
    "adding": ("adding_study", "memory_report"),
    "copy": ("copy_study", "memory_report"),
    "glorot": ("glorot_study", "glorot_report"),
    "he": ("he_study", "he_report"),
    "pascanu": ("pascanu_study", "pascanu_report"),
    "noise-scale": ("noise_scale_study", "noise_scale_report"),
}


def _study(args: argparse.Namespace) -> int:
    """Run a gradient study and write report.html + report.json: `jdl study NAME [--out DIR] [--quick]`."""
    from jdl.diagnostics import report as report_lib
    from jdl.diagnostics import studies

    out = Path(args.out or f"runs/study_{args.name}")
    options = dict(STUDY_SIZES[args.name]["quick" if args.quick else "full"])
    study, make_report = STUDIES[args.name]
    run = getattr(studies, study)
    parameters = inspect.signature(run).parameters
    if args.seeds is not None:
        if "seeds" not in parameters:
            with_seeds = ", ".join(n for n in sorted(STUDIES) if "seeds" in inspect.signature(getattr(studies, STUDIES[n][0])).parameters)
            return _error("study", ValueError(f"--seeds applies to the {with_seeds} studies, not {args.name}"))
        if args.seeds < 1:
            return _error("study", ValueError(f"--seeds must be a positive integer, got {args.seeds}"))
        options["seeds"] = args.seeds
    if args.mnist is not None:
        if "mnist" not in parameters:
            return _error("study", ValueError(f"--mnist applies to the noise-scale study, not {args.name}"))
        options["mnist"] = args.mnist
    if "progress" in parameters:
        options["progress"] = True
    report = getattr(report_lib, make_report)(run(**options))
    page, numbers = report.save(out)
    for line in report.findings:
        print(line)
    print(f"wrote {page} and {numbers}")
    return 0


def _restored_run(run_dir: Path) -> tuple[Any, Any, Any] | None:
    """(trainer, state with the best weights, data as the model saw it) of a jdl train run directory, or None."""
    import json

    from jdl import config as config_lib
    from jdl import data as data_lib
    from jdl import runs as run_lib
    from jdl.train import checkpoint

    if not (run_dir / "config.json").is_file() or not any(
            checkpoint.latest_step(run_dir / name) is not None for name in (run_lib.BEST, run_lib.LATEST)):
        return None
    config = config_lib.from_dict(json.loads((run_dir / "config.json").read_text()))
    trainer, dataset = run_lib.build(config)
    if config.data.standardize:
        scaler = data_lib.Standardizer.fit(dataset.x_train)
        dataset = dataset._replace(x_train=scaler(dataset.x_train), x_test=scaler(dataset.x_test))
    for name in (run_lib.BEST, run_lib.LATEST):
        if checkpoint.latest_step(run_dir / name) is not None:
            state, _ = checkpoint.restore(run_dir / name, trainer.init(dataset.x_train[:1], seed=config.seed))
            return trainer, state, dataset
    return None


def _report(args: argparse.Namespace) -> int:
    """Write report.html + report.json of a run directory, or compare runs: `jdl report RUN_DIR [RUN_DIR ...] [--out DIR]`."""
    from jdl.diagnostics import report as report_lib

    dirs = [Path(d) for d in args.run_dirs]
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"{d} is not a jdl train run directory (with summary.json or metrics.csv)")
    if len(dirs) > 1:
        out = Path(args.out) if args.out else dirs[0].parent / ("compare_" + "_vs_".join(d.name for d in dirs))
        page, _ = report_lib.compare_report(dirs).save(out)
    else:
        try:
            restored = _restored_run(dirs[0]) if not args.no_model else None
        except (ValueError, TypeError, KeyError, OSError) as err:  # the report still renders, without predictions
            print(f"jdl report: note: the model could not be restored ({' '.join(str(err).split())[:200]}); "
                  "examples are shown without predictions", file=sys.stderr)
            restored = None
        trainer, state, data = restored or (None, None, None)
        page, _ = report_lib.training_report(dirs[0], trainer=trainer, state=state, data=data).save(args.out or dirs[0])
    print(f"wrote {page}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    """Write explain.html: attributions of a run's model on test examples: `jdl explain RUN_DIR [--examples N]`."""
    from jdl.diagnostics import report as report_lib

    run_dir = Path(args.run_dir)
    restored = _restored_run(run_dir) if run_dir.is_dir() else None
    if restored is None:
        raise FileNotFoundError(f"{run_dir} must be a jdl train run directory with config.json and a checkpoint")
    trainer, state, data = restored
    from jdl.nn.mode import mode_kwargs

    kwargs = mode_kwargs(state.model, False)
    fn = lambda x: state.model.apply(state.variables, x, **kwargs)  # noqa: E731
    n = min(args.examples, len(data.x_test))
    report = report_lib.explain_report(fn, data.x_test[:n], data.y_test[:n], info=data.info,
                                       title=f"Attributions: {run_dir.name}")
    page, _ = report.save(args.out or run_dir, name="explain")
    print(f"wrote {page}")
    return 0


def _data(args: argparse.Namespace) -> int:
    """`jdl data pack OUT (--idx IMAGES LABELS | --npz FILE | --dataset NAME)`: write a packed data set."""
    import numpy as np

    from jdl.data import packed

    chosen = [name for name in ("idx", "npz", "dataset") if getattr(args, name) is not None]
    if len(chosen) != 1:
        return _error("data pack", ValueError(f"give exactly one of --idx, --npz and --dataset, got {len(chosen)}"))
    try:
        if args.dataset is not None:
            from jdl import config as config_lib
            from jdl.data import datasets

            options = {}
            for item in args.option:
                path, value = config_lib.parse_override(item)
                options[".".join(path)] = value
            loaded = datasets.load(args.dataset, **options)
            x, y = (loaded.x_train, loaded.y_train) if args.split == "train" else (loaded.x_test, loaded.y_test)
        else:
            x, y = packed.read_arrays(idx=args.idx, npz=args.npz, x_key=args.x_key, y_key=args.y_key)
        x = packed.prepared(np.asarray(x), flatten=args.flatten, scale=args.scale,
                            dtype=None if args.dtype is None else np.dtype(args.dtype))
        out = packed.write(args.out, x, np.asarray(y))
    except (ValueError, TypeError) as err:
        return _error("data pack", err)
    manifest = packed.read_manifest(out)
    arrays = ", ".join(f"{k} {v['dtype']} {tuple(v['shape'])}" for k, v in manifest["arrays"].items())
    print(f"wrote {out}/ ({manifest['count']} examples: {arrays})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `jdl` command, one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="jdl",
        description="jdl: a JAX functional deep-learning toolkit.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="subcommands")
    info = commands.add_parser("info", help="print jdl/JAX/Flax/Optax versions and the devices JAX sees")
    info.set_defaults(run=_info)
    train = commands.add_parser("train", help="train from a TOML config and write a run directory")
    train.add_argument("config", help="path to a TOML run config (see examples/configs/)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.learning_rate=0.01 (repeatable)")
    train.add_argument("--out", default=None, help="run directory (default: runs/NAME)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="0 silent, 1 progress bars, 2 a line per epoch")
    train.add_argument("--print-config", action="store_true",
                       help="print the resolved config (file, defaults and --set overrides) as JSON and exit")
    train.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="multi-process run: the address of process 0, which serves it (default: "
                       "$JAX_COORDINATOR_ADDRESS, or SLURM's variables)")
    train.add_argument("--num-processes", type=int, default=None, metavar="N", help="multi-process run: processes in all")
    train.add_argument("--process-id", type=int, default=None, metavar="I", help="multi-process run: this process, 0..N-1")
    train.add_argument("--connect-timeout", type=float, default=60.0, metavar="SECONDS",
                       help="multi-process run: how long to wait for the coordinator and the other processes (default 60)")
    train.set_defaults(run=_train)
    study = commands.add_parser("study", help="run a vanishing/exploding-gradient study and write an HTML + JSON report")
    study.add_argument("name", choices=sorted(STUDY_SIZES), metavar="NAME",
                       help="; ".join(f"{name}: {text}" for name, text in sorted(STUDY_HELP.items())))
    study.add_argument("--out", default=None, help="report directory (default: runs/study_NAME)")
    study.add_argument("--quick", action="store_true", help="a small grid that runs in well under a minute")
    study.add_argument("--seeds", type=int, default=None, metavar="K",
                       help="repeat each configuration with K seeds; curves show mean ± std over seeds")
    study.add_argument("--mnist", default=None, metavar="DIR", help="noise-scale: MNIST files in DIR instead of digits")
    study.set_defaults(run=_study)
    sweep = commands.add_parser("sweep", help="run a hyperparameter sweep (grid, random or optuna) of jdl train runs")
    sweep.add_argument("sweep_file", help="a sweep TOML file: base config, [space], method, objective "
                       "(see examples/configs/digits_sweep.toml)")
    sweep.add_argument("--out", default=None, help="sweep directory (default: sweeps/NAME)")
    sweep.add_argument("--workers", type=int, default=1, help="run trials in this many local processes")
    sweep.add_argument("--trial", type=_trial_number, default=None, metavar="K",
                       help="run only trial K of a grid/random sweep (job arrays: --trial $SLURM_ARRAY_TASK_ID)")
    sweep.add_argument("--resume", action="store_true",
                       help="continue an interrupted sweep, or join one from another host (finished trials are kept)")
    sweep.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    sweep.add_argument("--verbose", type=int, choices=(0, 1), default=1, help="0 silent, 1 a line per trial")
    sweep.set_defaults(run=_sweep)
    report = commands.add_parser("report", help="(re)write report.html and report.json of a run directory; "
                                 "with several, a side-by-side comparison")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by jdl train")
    report.add_argument("--out", default=None, help="where to write (default: the run directory; for a comparison "
                        "compare_A_vs_B next to the first run)")
    report.add_argument("--no-model", action="store_true", help="do not load the model (no example predictions)")
    report.set_defaults(run=_report)
    explain = commands.add_parser("explain", help="write explain.html: saliency maps of a run's model on test examples")
    explain.add_argument("run_dir", help="a run directory written by jdl train")
    explain.add_argument("--examples", type=int, default=8, help="test examples to explain (default 8)")
    explain.add_argument("--out", default=None, help="directory for explain.html (default: the run directory)")
    explain.set_defaults(run=_explain)
    data = commands.add_parser("data", help="data tools: `jdl data pack` writes a packed data set for Grain")
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    pack = data_commands.add_parser("pack", help="write arrays as a packed data set (.npy memmaps + manifest.json) "
                                    "that jdl train reads by index (data.packed = OUT)")
    pack.add_argument("out", help="the directory to write (must not hold a packed data set already)")
    pack.add_argument("--idx", nargs=2, metavar=("IMAGES", "LABELS"), default=None,
                      help="an IDX images file and its labels file (plain or .gz), e.g. MNIST's")
    pack.add_argument("--npz", default=None, metavar="FILE", help="an .npz archive (keys --x-key and --y-key)")
    pack.add_argument("--x-key", default="x_train", help="the inputs' key in --npz (default x_train)")
    pack.add_argument("--y-key", default="y_train", help="the targets' key in --npz (default y_train)")
    pack.add_argument("--dataset", default=None, metavar="NAME", help="a jdl data set by name, e.g. digits")
    pack.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="an option of --dataset, e.g. --option path=DIR (repeatable)")
    pack.add_argument("--split", choices=("train", "test"), default="train", help="--dataset's split (default train)")
    pack.add_argument("--flatten", action="store_true", help="store each example as one row of features")
    pack.add_argument("--scale", type=float, default=None, help="multiply the inputs by this (e.g. 0.00392156862745098"
                      " = 1/255), as float32 unless --dtype")
    pack.add_argument("--dtype", default=None, help="store the inputs with this NumPy dtype, e.g. float32")
    pack.set_defaults(run=_data, command="data pack")
    return parser


# A user's mistake (a bad config, a run directory in the way, a missing file): one line on stderr, exit 2.
USER_ERRORS = (FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def _error(command: str, err: BaseException) -> int:
    print(f"jdl {command}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jdl` console script.

    A user's mistake prints `jdl COMMAND: error: <one line>` and returns 2; Ctrl-C prints one line
    and returns 130. Anything else is a bug in jdl and raises.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        from jdl.config import ConfigError

        try:
            return args.run(args)
        except (ConfigError, *USER_ERRORS) as err:
            return _error(args.command, err)
    except KeyboardInterrupt:
        hint = " (--resume continues from the last completed epoch)" if args.command == "train" else ""
        print(f"jdl {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
