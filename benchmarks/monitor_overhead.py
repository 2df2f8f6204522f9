#!/usr/bin/env python
"""Cost of `GradientMonitor` during `Trainer.fit`: fit with the monitor (every=1, every=10) vs without.

The model is the MLP 784-512-512-10 (relu), batch 128, Adam(1e-3), on n = 10 112 random inputs
(79 full batches) for one epoch per call. Variants, alternating in one process after a warm-up:
- plain fit (the reference),
- GradientMonitor(every=1): per-layer norms, exact per-example norms and activation statistics
  at every step (moments off); the per-example norms come from the step's own backward pass,
- the same with share_backward=False: the per-example norms by a second, separate pass (what a
  model with dropout or batch norm pays),
- GradientMonitor(every=10, moments=True): the default of `jdl train`'s runs, adding GSNR and the
  noise scale, which form every per-example gradient (n copies of the weights, one chunk at a time).
Goal: every=1 under 1.3× the plain fit.

    python benchmarks/monitor_overhead.py [--quick] [--repeats 7]

A program, not a test: it prints a table, writes results/monitor_overhead.json, and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_info, versions, write_json  # noqa: E402

GOAL = 1.3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller MLP (784-128-10) and 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)

    import jax
    import numpy as np

    import jdl
    from jdl.callbacks import GradientMonitor

    load_before = os.getloadavg()
    hidden = (128,) if args.quick else (512, 512)
    rng = np.random.default_rng(0)
    n = 79 * 128
    x = rng.normal(size=(n, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=n).astype(np.int32)
    trainer = jdl.Trainer(jdl.models.MLP(hidden=hidden, outputs=10), loss="sparse_categorical_crossentropy",
                          optimizer=jdl.optim.adam(1e-3))
    state = trainer.init(x, 0, steps_per_epoch=79)

    def fit(monitor_options):
        callbacks = [GradientMonitor(**monitor_options)] if monitor_options is not None else []

        def run():
            out, _ = trainer.fit(x, y, epochs=1, batch_size=128, verbose=0, state=state, callbacks=callbacks)
            jax.block_until_ready(out.params)

        return run

    variants = {
        "plain fit": fit(None),
        "monitor every=1": fit({"every": 1}),
        "monitor every=1, separate pass": fit({"every": 1, "share_backward": False}),
        "monitor every=10, moments": fit({"every": 10, "moments": True}),
    }
    timings = compare(variants, repeats)
    ref = timings["plain fit"]["median_ms"]
    report = {
        "config": {"model": f"MLP 784-{'-'.join(map(str, hidden))}-10", "batch_size": 128, "steps": 79, "n": n},
        "goal_every_1_over_plain": GOAL,
        "results": {k: {**v, "ms_per_step": v["median_ms"] / 79, "ratio_to_plain": v["median_ms"] / ref}
                    for k, v in timings.items()},
        "machine": machine_info(jax, load_before, os.getloadavg()),
        "versions": versions(jax, __import__("flax"), jdl),
    }
    print(f"\n{'variant':<34}{'median ms/epoch':>16}{'ms/step':>9}{'x plain':>9}")
    for name, r in report["results"].items():
        print(f"{name:<34}{r['median_ms']:>16.1f}{r['ms_per_step']:>9.2f}{r['ratio_to_plain']:>9.2f}")
    ratio = report["results"]["monitor every=1"]["ratio_to_plain"]
    print(f"\nmonitor every=1: {ratio:.2f}x the plain fit ({'meets' if ratio <= GOAL else 'MISSES'} the {GOAL}x goal)")
    path = write_json("monitor_overhead_quick" if args.quick else "monitor_overhead", report)
    print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
