"""Long memory: the adding problem at T = 100 with a SimpleRNN and an LSTM, and what the gradients say about it.

The adding problem (Hochreiter & Schmidhuber 1997): x (n, T, 2) holds T values in [0, 1] and
marks one step in each half; the target is the sum of the two marked values. A model that
remembers nothing predicts the mean and scores MSE 1/6; below 0.01 the task is solved.

1. At initialization, how much of the loss's gradient reaches h_t, t steps into the sequence
   (mean ‖∂L/∂h_t‖ over examples): it shrinks geometrically going back in time for every cell.
2. Both cells trained for the same Adam step budget (batch 64, clipnorm 1): the test MSE every
   100 steps, against the baseline.
3. The same gradient profile after training: the LSTM has learned to carry gradient back to the
   first marker; the SimpleRNN has not, so it never learns which values to keep.

Run: python examples/15_rnn_long_memory.py [--length 100] [--steps 1200] [--report DIR] [--quick]
"""

import argparse
import sys

import numpy as np

from jdl.data import ADDING_BASELINE_MSE
from jdl.diagnostics import report, rnn_studies


def profile_row(label: str, profile: list[float]) -> str:
    values = np.asarray(profile)
    picks = np.linspace(0, len(values) - 1, 5).round().astype(int)
    return f"  {label:<24}" + "".join(f"{values[t]:>11.2e}" for t in picks)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=100, help="sequence length T")
    parser.add_argument("--steps", type=int, default=1200, help="Adam steps of batch 64 per cell")
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--cells", nargs="+", default=["simple_rnn", "lstm"], choices=rnn_studies.CELLS)
    parser.add_argument("--report", default=None, help="also write report.html + report.json to this directory")
    parser.add_argument("--quick", action="store_true", help="T = 10, 300 steps, 16 units: checks that it works")
    args = parser.parse_args(argv)
    if args.quick:
        args.length, args.steps, args.units = 10, 300, 16
    cells = tuple(args.cells)

    at_init = rnn_studies.rnn_study(cells, length=args.length, units=args.units, examples=128, scales=(),
                                    sweep_activations=())
    picks = np.linspace(0, args.length - 1, 5).round().astype(int)
    header = f"  {'mean ‖∂L/∂h_t‖ at t =':<24}" + "".join(f"{t:>11d}" for t in picks)
    print(f"1. at initialization, T = {args.length}, {args.units} units")
    print(header)
    for record in at_init["cells"]:
        print(profile_row(record["cell"], record["profile"]))

    study = rnn_studies.adding_study(cells, lengths=(args.length,), clipnorms=(1.0,), steps=args.steps,
                                     units=args.units, eval_every=100)
    records = study["records"]
    print(f"\n2. training: {args.steps} Adam steps of batch 64, test MSE on 1000 sequences "
          f"(baseline 1/6 = {ADDING_BASELINE_MSE:.4f}, solved below 0.01)")
    print(f"  {'step':>6}" + "".join(f"{r['cell']:>12}" for r in records))
    for i, step in enumerate(records[0]["steps"]):
        print(f"  {step:>6}" + "".join(f"{r['test_loss'][i]:>12.4f}" for r in records))
    for r in records:
        verdict = "solved" if r["final_test_loss"] < 0.01 else (
            "near the baseline" if r["final_test_loss"] > 0.8 * ADDING_BASELINE_MSE else "partly learned")
        print(f"  {r['cell']}: final test MSE {r['final_test_loss']:.4f} ({verdict}), {r['ms_per_step']:.1f} ms/step")

    print("\n3. after training")
    print(header)
    for r in records:
        print(profile_row(r["cell"], r["trained_profile"]["profile"]))

    if args.report:
        page, _ = report.memory_report(study).save(args.report)
        print(f"\nwrote {page}")


if __name__ == "__main__":
    sys.exit(main())
