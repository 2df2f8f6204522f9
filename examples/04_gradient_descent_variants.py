"""Gradient descent and its variants on one problem: batch size, momentum and adaptive rates.

Same data (two moons, 800 training and 200 test points), same model (2-32-32-2 relu MLP), same
number of epochs, same seed; only the optimizer and the batch size change:
full-batch gradient descent (batch_size=None: one update per epoch), SGD (batch_size=1: one
update per example), mini-batch SGD (32), momentum 0.9, Adagrad, RMSprop and Adam. It prints the
epochs-vs-iterations arithmetic (the notes' 100000/1000 = 100, 34000/500 = 68, 1000/500 = 2),
then per variant: iterations per epoch, total updates, final training loss, test accuracy, the
wall time of the run, and that of a warm-up one-epoch fit before it, which jit-compiles the steps.

Run: python examples/04_gradient_descent_variants.py [--epochs 40] [--quick] [--plot curves.png]
"""

import argparse
import math
import sys
import time

import jdl

# name: (optimizer, batch size); learning rates are each method's usual starting point.
VARIANTS = {
    "GD (full batch)": (lambda: jdl.optim.gd(0.5), None),
    "SGD (batch 1)": (lambda: jdl.optim.sgd(0.01), 1),
    "mini-batch SGD (32)": (lambda: jdl.optim.sgd(0.1), 32),
    "momentum 0.9 (32)": (lambda: jdl.optim.sgd(0.01, momentum=0.9), 32),
    "Adagrad (32)": (lambda: jdl.optim.adagrad(0.05), 32),
    "RMSprop (32)": (lambda: jdl.optim.rmsprop(1e-3), 32),
    "Adam (32)": (lambda: jdl.optim.adam(1e-3), 32),
}
GOLDENS = [(100_000, 1000), (34_000, 500), (1000, 500)]


def epochs_and_iterations():
    """Iterations per epoch = ceil(n / batch_size): the notes' examples."""
    print("epochs vs iterations: iterations per epoch = ceil(n / batch size)")
    for n, batch in GOLDENS:
        print(f"  n = {n:>6}, batch = {batch:>4} -> {jdl.optim.steps_per_epoch(n, batch):>3} iterations per epoch")


def compare(epochs, n=1000, seed=0, variants=VARIANTS):
    """Train every variant from the same initial weights; return one row of results per variant."""
    data = jdl.data.load("moons", n=n, noise=0.2, seed=seed)
    scaler = jdl.data.Standardizer.fit(data.x_train)
    x_train, x_test = scaler(data.x_train), scaler(data.x_test)
    model = jdl.models.MLP(hidden=(32, 32), outputs=2, activation="relu", kernel_init="he_normal")
    rows = []
    for name, (make_optimizer, batch_size) in variants.items():
        optimizer = make_optimizer()
        trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=optimizer,
                              metrics=["accuracy"])
        fit = dict(batch_size=batch_size, verbose=0, seed=seed, state=trainer.init(x_train, seed))
        start = time.perf_counter()
        trainer.fit(x_train, data.y_train, epochs=1, **fit)  # compiles the steps (once per shape)
        compile_seconds = time.perf_counter() - start
        # The timed run starts again from the same initial state, and so reuses the compiled steps
        # (fit without state= builds a fresh optimizer transformation, and that recompiles).
        start = time.perf_counter()
        state, history = trainer.fit(x_train, data.y_train, epochs=epochs, **fit)
        seconds = time.perf_counter() - start
        train = trainer.evaluate(state, x_train, data.y_train)  # the loss at the final weights
        test = trainer.evaluate(state, x_test, data.y_test)
        steps = jdl.optim.steps_per_epoch(len(x_train), batch_size)
        rows.append({"name": name, "lr": optimizer.learning_rate, "batch": batch_size or len(x_train),
                     "steps": steps, "updates": int(state.step), "loss": train["loss"],
                     "train_accuracy": train["accuracy"], "test_accuracy": test["accuracy"],
                     "seconds": seconds, "first": compile_seconds, "curve": history.history["loss"]})
    return len(x_train), rows


def report(n_train, epochs, rows, seed=0):
    print(f"\ntwo moons (noise 0.2): {n_train} training points, standardized; MLP 2-32-32-2 relu; "
          f"{epochs} epochs; seed {seed} for every variant")
    header = (f"{'variant':<21}{'lr':>7}{'batch':>7}{'iter/epoch':>12}{'updates':>9}"
              f"{'train loss':>12}{'train acc':>11}{'test acc':>10}{'time s':>8}{'warm-up s':>11}")
    print(header)
    print("-" * len(header))
    for r in rows:
        loss = f"{r['loss']:.4f}" if math.isfinite(r["loss"]) else "nan"
        print(f"{r['name']:<21}{r['lr']:>7g}{r['batch']:>7}{r['steps']:>12}{r['updates']:>9}"
              f"{loss:>12}{r['train_accuracy']:>11.4f}{r['test_accuracy']:>10.4f}{r['seconds']:>8.2f}{r['first']:>11.2f}")
    print("\nreading: in the same epochs full-batch GD makes one update per epoch and lags behind;"
          "\nSGD (batch 1) makes n updates per epoch, the most progress per epoch but the slowest epochs"
          "\n(nothing to vectorize); mini-batches get most of that progress at a fraction of the time."
          "\nMomentum 0.9 at lr 0.01 steps like SGD at lr 0.01/(1-0.9) = 0.1, smoothed; the adaptive"
          "\nmethods scale each weight's step themselves: RMSprop and Adam get there at their default 1e-3.")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:
        ax.plot(range(1, len(r["curve"]) + 1), r["curve"], label=r["name"])
    ax.set(xlabel="epoch", ylabel="training loss (epoch mean)", yscale="log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    print(f"\nwrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="epochs for every variant (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny, fast run (3 epochs, 320 points)")
    parser.add_argument("--plot", metavar="PATH", help="write the training-loss curves to this PNG")
    args = parser.parse_args(argv)
    epochs, n = (3, 320) if args.quick else (args.epochs, 1000)
    epochs_and_iterations()
    n_train, rows = compare(epochs, n=n, seed=args.seed)
    report(n_train, epochs, rows, args.seed)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    sys.exit(main())
