#!/usr/bin/env python
"""bfloat16 and float16 compute against float32 on the CNN, on real MNIST: test accuracy and time per epoch.

The data are local MNIST IDX files (--mnist DIR; the MNIST test split, 10 000 images, is enough):
the first --train images train, the rest test, the same for every precision. The model is jdl's CNN
(conv3×3 32, maxpool, conv3×3 64, maxpool, dense 128, 10 outputs), Adam(1e-3), batch 128, the same
seed; "float32" computes in float32, "bfloat16"/"float16" run the forward and backward pass in that
dtype with float32 parameters, optimizer state and loss (float16 with dynamic loss scaling). It
reports each precision's test accuracy, its difference from float32 in points (goal for bfloat16:
within 0.5), the median seconds per epoch after the first, and float16's skipped steps.

    python benchmarks/precision_mnist.py --mnist /path/to/mnist          # results/precision_mnist.json

A program, not a test: it prints a table, writes JSON, and exits 0 whatever the differences.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", required=True, metavar="DIR", help="directory with the MNIST test-split IDX files")
    parser.add_argument("--train", type=int, default=8000, help="images that train; the rest test (default 8000)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16", "float16"],
                        choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import jax

    import jdl
    from jdl import data, models, optim

    load_before = os.getloadavg()
    mnist = data.load("mnist", path=args.mnist, split="test")
    x, y = mnist.x_test, mnist.y_test
    x_train, y_train, x_test, y_test = x[:args.train], y[:args.train], x[args.train:], y[args.train:]
    print(f"precision_mnist: CNN on MNIST, {len(x_train)} training and {len(x_test)} test images, "
          f"{args.epochs} epochs, batch 128, Adam(1e-3), seed {args.seed}; jax {jax.__version__} on "
          f"{jax.devices()[0].platform}")
    results = {}
    for precision in args.precisions:
        trainer = jdl.Trainer(models.get("cnn")(outputs=10), "sparse_categorical_crossentropy", optim.adam(1e-3),
                              metrics=["accuracy"], precision=precision)
        epoch_seconds = []

        class Clock(jdl.callbacks.Callback):
            def on_epoch_begin(self, epoch, state, logs):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, state, logs):
                epoch_seconds.append(time.perf_counter() - self.start)

        state, history = trainer.fit(x_train, y_train, epochs=args.epochs, batch_size=128, verbose=0, seed=args.seed,
                                     callbacks=[Clock()])
        scores = trainer.evaluate(state, x_test, y_test)
        results[precision] = {
            "test_accuracy": float(scores["accuracy"]), "test_loss": float(scores["loss"]),
            "train_loss": history.history["loss"], "first_epoch_s": epoch_seconds[0],
            "median_epoch_s": statistics.median(epoch_seconds[1:]) if len(epoch_seconds) > 1 else None,
            "skipped_steps": sum(history.history.get("skipped_steps", [])),
            "loss_scale": history.history.get("loss_scale", [None])[-1],
        }
        print(f"  {precision:9s} test accuracy {results[precision]['test_accuracy']:.4f}, "
              f"{results[precision]['median_epoch_s']:.2f} s per epoch", flush=True)
    reference = results.get("float32", {}).get("test_accuracy")
    print(f"\n{'precision':10s} {'test acc':>9s} {'vs f32 pts':>10s} {'s/epoch':>8s} {'epoch 1 s':>11s} {'skipped':>7s}")
    for precision, r in results.items():
        points = None if reference is None else 100 * (r["test_accuracy"] - reference)
        r["points_vs_float32"] = points
        print(f"{precision:10s} {r['test_accuracy']:9.4f} {'' if points is None else f'{points:+10.2f}':>10s} "
              f"{r['median_epoch_s'] or float('nan'):8.2f} {r['first_epoch_s']:11.2f} {r['skipped_steps']:7.0f}")
    report = {
        "benchmark": "precision_mnist",
        "machine": common.machine_info(jax, load_before, os.getloadavg()),
        "versions": common.versions(jax, jdl),
        "config": {"train": len(x_train), "test": len(x_test), "epochs": args.epochs, "batch_size": 128,
                   "optimizer": "adam(1e-3)", "model": "jdl cnn (c32-p2-c64-p2-d128-10)", "seed": args.seed,
                   "data": f"MNIST IDX files from {args.mnist}: the first {args.train} images train, the rest test"},
        "results": results,
    }
    print(f"\nwrote {common.write_json('precision_mnist', report)}")
    return report


if __name__ == "__main__":
    main()
