"""The `jdl` command: `jdl info` (versions and devices), `jdl train CONFIG` (batch runs), `jdl study NAME` (gradient studies)."""

from __future__ import annotations

import argparse
import inspect
import platform
import sys
from collections.abc import Sequence
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
    """Run a TOML config: `jdl train CONFIG [--set k=v ...] [--out DIR] [--resume]`."""
    from jdl import config as config_lib

    try:
        config = config_lib.load(args.config, args.set)
    except (ValueError, TypeError) as err:  # ConfigError, or a check that escaped it: the user's config
        return _error(args.command, err)
    from jdl import runs as run_lib

    out = Path(args.out) if args.out is not None else Path("runs") / config.name
    summary = run_lib.run(config, out, resume=args.resume, verbose=args.verbose)
    test = ", ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
    print(f"{summary['name']}: {summary['epochs_run']} epochs, best epoch {summary['best_epoch']}; test {test}")
    if summary["stop_reason"]:
        print(summary["stop_reason"], file=sys.stderr)
    print(f"wrote {out}/ (report: {out / 'report.html'})")
    return 0


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


def _report(args: argparse.Namespace) -> int:
    """Write report.html + report.json for a run directory: `jdl report RUN_DIR`."""
    from jdl.diagnostics import report as report_lib

    page, _ = report_lib.training_report(args.run_dir).save(args.run_dir)
    print(f"wrote {page}")
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
    report = commands.add_parser("report", help="(re)write report.html and report.json of a jdl train run directory")
    report.add_argument("run_dir", help="a run directory written by jdl train")
    report.set_defaults(run=_report)
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
