"""The notes' Keras ANN tuned with Optuna through jdl: learning rate x hidden width x dropout.

The search is examples/configs/breast_cancer_ann_sweep.toml: TPE sampling with median pruning,
each trial an ordinary `jdl train` run of examples/configs/breast_cancer_ann.toml with its
overrides (a run directory under OUT/trial-K/, reproducible alone with the command sweep.json
records). Prints the trials best first and the winner's test scores; OUT/report.html shows the
objective against each hyperparameter and the best trials' learning curves.

Run: python examples/16_hyperparameter_search.py [--trials 30] [--epochs 40] [--workers 1] [--out DIR] [--quick]
The same search from the command line: jdl sweep examples/configs/breast_cancer_ann_sweep.toml
"""

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import jdl.sweeps

SWEEP = Path(__file__).resolve().parent / "configs" / "breast_cancer_ann_sweep.toml"


def search(out, trials, epochs, workers=1, learning_rate_only=False):
    """Run the sweep with `trials` trials of at most `epochs` epochs; returns (sweep, sweep.json's content).

    learning_rate_only: search the learning rate alone (the notes' 11-7 widths, no dropout), so that
    every trial reuses one compiled program.
    """
    sweep = jdl.sweeps.load(SWEEP)
    kept = tuple(o for o in sweep.overrides if not o.startswith("train.epochs="))
    sweep = dataclasses.replace(sweep, trials=trials, overrides=(*kept, f"train.epochs={epochs}"))
    if learning_rate_only:
        sweep = dataclasses.replace(sweep, dimensions=tuple(d for d in sweep.dimensions if d.key == "train.learning_rate"))
    return sweep, jdl.sweeps.run(sweep, out, workers=workers, verbose=0)


def report(sweep, body, out):
    trials = body["trials"]
    done = sorted((t for t in trials if t["state"] == "complete"), key=lambda t: t["value"])
    pruned = sum(t["state"] == "pruned" for t in trials)
    print(f"{len(trials)} trials: {len(done)} complete, {pruned} pruned early by the median rule, "
          f"{len(trials) - len(done) - pruned} failed")
    print(f"\n{'trial':>5}  {'val_loss':>8}  {'learning rate':>13}  {'hidden':>8}  {'dropout':>7}  best epoch")
    for t in done[:10]:
        p = {"model.hidden": [11, 7], "model.dropout": 0.0, **t["params"]}
        print(f"{t['number']:>5}  {t['value']:8.4f}  {p['train.learning_rate']:13.2e}  {str(p['model.hidden']):>8}  "
              f"{p['model.dropout']:7.2f}  {t['best_epoch']}")
    if done:
        best = done[0]
        summary = json.loads((Path(out) / best["run_dir"] / "summary.json").read_text())
        test = ", ".join(f"{k} {v:.4f}" for k, v in summary["test"].items())
        print(f"\nbest: trial {best['number']} (val_loss {best['value']:.4f}); its test set: {test}")
        print(f"rerun it alone: {best['command']}")
    print(f"\nwrote {out}/sweep.json, sweep.csv and report.html")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="number of Optuna trials (default 30)")
    parser.add_argument("--epochs", type=int, default=40, help="at most this many epochs per trial (default 40)")
    parser.add_argument("--workers", type=int, default=1, help="local processes running trials (default 1)")
    parser.add_argument("--out", default=None, help="sweep directory (default: a temporary directory)")
    parser.add_argument("--quick", action="store_true", help="3 trials of 4 epochs over the learning rate only (a smoke run)")
    args = parser.parse_args(argv)
    trials, epochs = (3, 4) if args.quick else (args.trials, args.epochs)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out) if args.out else Path(scratch) / "sweep"
        sweep, body = search(out, trials, epochs, args.workers, learning_rate_only=args.quick)
        report(sweep, body, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
