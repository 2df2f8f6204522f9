"""`jdl study NAME`, `jdl report RUN_DIR ...` and `jdl explain RUN_DIR`: the commands that write reports."""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

from jdl.commands.errors import user_error

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
    "adding": "SimpleRNN vs LSTM vs GRU on the adding problem (about 8 min)",
    "copy": "SimpleRNN vs LSTM vs GRU on the copy-memory task (about 12 min)",
    "depth": "activation x init x depth x batch-norm grid of per-layer gradients, 200 SGD steps (8-16 min)",
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


def run_study(args: argparse.Namespace) -> int:
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
            return user_error("study", ValueError(f"--seeds applies to the {with_seeds} studies, not {args.name}"))
        if args.seeds < 1:
            return user_error("study", ValueError(f"--seeds must be a positive integer, got {args.seeds}"))
        options["seeds"] = args.seeds
    if args.mnist is not None:
        if "mnist" not in parameters:
            return user_error("study", ValueError(f"--mnist applies to the noise-scale study, not {args.name}"))
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


def run_report(args: argparse.Namespace) -> int:
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


def run_explain(args: argparse.Namespace) -> int:
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
