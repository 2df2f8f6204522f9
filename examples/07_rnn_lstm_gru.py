"""SimpleRNN, LSTM and GRU in jdl: a sine forecast with each cell, then the adding problem with an LSTM.

1. Sine forecast (`jdl.data.load("sine")`): windows of 20 noisy samples -> the next value, a
   many-to-one regressor (SequenceClassifier with outputs=1 and mse) per cell, against the naive
   forecast "the next value equals the last one".
2. The adding problem (Hochreiter & Schmidhuber 1997): x (n, T, 2), channel 0 uniform in [0, 1],
   channel 1 marks one step in each half of the sequence; the target is the sum of the two marked
   values. Predicting the mean (1) scores MSE 1/6 ≈ 0.167; the task is solved below 0.01. It needs
   the memory of T = 50 steps back, which a SimpleRNN lacks and an LSTM has.

Run: python examples/07_rnn_lstm_gru.py [--epochs 12] [--steps 1500] [--length 50] [--quick]
"""

import argparse
import sys
import time

import numpy as np

import jdl
from jdl.data import adding_problem
from jdl.models.rnn import SequenceClassifier


def sine_forecast(epochs, units, seed):
    """Train each cell on the sine windows; return {cell: (test MSE, seconds)} and the naive MSE."""
    data = jdl.data.load("sine", seed=seed)
    naive = float(np.mean((data.x_test[:, -1, :] - data.y_test) ** 2))
    results = {}
    for cell in ("simple_rnn", "lstm", "gru"):
        trainer = jdl.Trainer(SequenceClassifier(cell=cell, units=units, outputs=1), loss="mse",
                              optimizer=jdl.optim.adam(1e-2))
        start = time.perf_counter()
        state, _ = trainer.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0, seed=seed)
        seconds = time.perf_counter() - start
        results[cell] = (float(trainer.evaluate(state, data.x_test, data.y_test)["loss"]), seconds)
    return results, naive, len(data.x_train)


def adding(steps, length, units, seed, batch_size=64):
    """Train an LSTM on the adding problem for about `steps` Adam steps; return test MSE, steps, ms/step."""
    n_train = 8192
    epochs = max(1, round(steps * batch_size / n_train))
    x, y = adding_problem(n_train, length, seed)
    x_test, y_test = adding_problem(1000, length, seed + 1)
    trainer = jdl.Trainer(SequenceClassifier(cell="lstm", units=units, outputs=1), loss="mse",
                          optimizer=jdl.optim.adam(1e-2, clipnorm=1.0))
    start = time.perf_counter()
    state, history = trainer.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, seed=seed)
    seconds = time.perf_counter() - start
    done = epochs * (n_train // batch_size)
    mse = float(trainer.evaluate(state, x_test, y_test)["loss"])
    return mse, done, 1e3 * seconds / done, history.history["loss"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="epochs of the sine forecast")
    parser.add_argument("--steps", type=int, default=1500, help="Adam steps (batch 64) of the adding problem")
    parser.add_argument("--length", type=int, default=50, help="sequence length T of the adding problem")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny run (a few epochs and steps) to check it works")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.steps, args.length, args.units = 3, 128, 10, 8

    results, naive, n = sine_forecast(args.epochs, args.units, args.seed)
    print(f"sine forecast: {n} training windows of 20 steps, {args.epochs} epochs, {args.units} units")
    print(f"  naive (last value) test MSE: {naive:.4f}")
    for cell, (mse, seconds) in results.items():
        print(f"  {cell:<10} test MSE: {mse:.4f}   ({seconds:.1f} s)")

    mse, done, ms, losses = adding(args.steps, args.length, 64 if not args.quick else args.units, args.seed)
    print(f"adding problem, T={args.length}, LSTM: {done} steps of batch 64, {ms:.1f} ms/step")
    print(f"  train loss first epoch: {losses[0]:.4f}, last epoch: {losses[-1]:.4f}")
    print(f"  test MSE: {mse:.4f}   (baseline 1/6 = {1 / 6:.4f}; solved below 0.01: {mse < 0.01})")


if __name__ == "__main__":
    sys.exit(main())
