"""The `jdl` command: `jdl info` (versions and devices), `jdl train CONFIG` (batch runs), `jdl study NAME` (gradient studies).

The subcommands live in `jdl.commands`; this module builds the argument parser and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from jdl.commands.errors import USER_ERRORS, user_error
from jdl.commands.reports import STUDIES, STUDY_HELP, STUDY_SIZES, run_explain, run_report, run_study  # noqa: F401  (re-exported)
from jdl.commands.tools import run_data_pack, run_info
from jdl.commands.training import run_sweep, run_train, trial_number


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `jdl` command, one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="jdl",
        description="jdl: a JAX functional deep-learning toolkit.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="subcommands")
    info = commands.add_parser("info", help="print jdl/JAX/Flax/Optax versions and the devices JAX sees")
    info.set_defaults(run=run_info)
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
    train.set_defaults(run=run_train)
    study = commands.add_parser("study", help="run a vanishing/exploding-gradient study and write an HTML + JSON report")
    study.add_argument("name", choices=sorted(STUDY_SIZES), metavar="NAME",
                       help="; ".join(f"{name}: {text}" for name, text in sorted(STUDY_HELP.items())))
    study.add_argument("--out", default=None, help="report directory (default: runs/study_NAME)")
    study.add_argument("--quick", action="store_true", help="a small grid that runs in well under a minute")
    study.add_argument("--seeds", type=int, default=None, metavar="K",
                       help="repeat each configuration with K seeds; curves show mean ± std over seeds")
    study.add_argument("--mnist", default=None, metavar="DIR", help="noise-scale: MNIST files in DIR instead of digits")
    study.set_defaults(run=run_study)
    sweep = commands.add_parser("sweep", help="run a hyperparameter sweep (grid, random or optuna) of jdl train runs")
    sweep.add_argument("sweep_file", help="a sweep TOML file: base config, [space], method, objective "
                       "(see examples/configs/digits_sweep.toml)")
    sweep.add_argument("--out", default=None, help="sweep directory (default: sweeps/NAME)")
    sweep.add_argument("--workers", type=int, default=1, help="run trials in this many local processes")
    sweep.add_argument("--trial", type=trial_number, default=None, metavar="K",
                       help="run only trial K of a grid/random sweep (job arrays: --trial $SLURM_ARRAY_TASK_ID)")
    sweep.add_argument("--resume", action="store_true",
                       help="continue an interrupted sweep, or join one from another host (finished trials are kept)")
    sweep.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    sweep.add_argument("--verbose", type=int, choices=(0, 1), default=1, help="0 silent, 1 a line per trial")
    sweep.set_defaults(run=run_sweep)
    report = commands.add_parser("report", help="(re)write report.html and report.json of a run directory; "
                                 "with several, a side-by-side comparison")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by jdl train")
    report.add_argument("--out", default=None, help="where to write (default: the run directory; for a comparison "
                        "compare_A_vs_B next to the first run)")
    report.add_argument("--no-model", action="store_true", help="do not load the model (no example predictions)")
    report.set_defaults(run=run_report)
    explain = commands.add_parser("explain", help="write explain.html: saliency maps of a run's model on test examples")
    explain.add_argument("run_dir", help="a run directory written by jdl train")
    explain.add_argument("--examples", type=int, default=8, help="test examples to explain (default 8)")
    explain.add_argument("--out", default=None, help="directory for explain.html (default: the run directory)")
    explain.set_defaults(run=run_explain)
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
    pack.set_defaults(run=run_data_pack, command="data pack")
    return parser


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
        from jdl.config_schema import ConfigError  # not jdl.config: a multi-process supervisor never imports JAX

        try:
            return args.run(args)
        except (ConfigError, *USER_ERRORS) as err:
            return user_error(args.command, err)
    except KeyboardInterrupt:
        hint = " (--resume continues from the last completed epoch)" if args.command == "train" else ""
        print(f"jdl {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
