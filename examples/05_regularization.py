"""Regularization against over-fitting: L2, dropout, batch normalization and early stopping.

A setup built to over-fit: 100 noisy two-moons points (noise 0.3) and a wide MLP (2-256-256-2,
~67k weights, 670 per example), Adam at 1e-2 for a fixed number of epochs; 1000 more points from
the same distribution are the validation (dev) set. The same model and seed are
trained plain, with L2 (the notes' penalty λ/(2m)·Σ‖W‖², `jdl.optim.adam(l2=λ)`), with inverted
dropout, with batch normalization, and with early stopping on the validation loss (best weights
restored). For each it prints the bias/variance reading: training vs validation loss and accuracy
at the end, measured in inference mode on the data alone (no penalty), and their gap.

Run: python examples/05_regularization.py [--epochs 100] [--quick] [--plot curves.png]
"""

import argparse
import sys

import numpy as np

import jdl

HIDDEN = (256, 256)
LEARNING_RATE = 1e-2


def variants(l2=0.3, dropout=0.5, patience=10):
    """name -> (model, optimizer, callbacks); everything else is shared."""
    plain = jdl.models.MLP(hidden=HIDDEN, outputs=2, activation="relu", kernel_init="he_normal")
    adam = jdl.optim.adam(LEARNING_RATE)
    return {
        "plain": (plain, adam, []),
        f"L2 (lambda={l2:g})": (plain, jdl.optim.adam(LEARNING_RATE, l2=l2), []),
        f"dropout {dropout:g}": (plain.clone(dropout=dropout), adam, []),
        "batch norm": (plain.clone(batch_norm=True), adam, []),
        "early stopping": (plain, adam, [jdl.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True)]),
    }


def load(n_train, n_val=1000, seed=0):
    """n_train noisy moons to train on and n_val more from the same distribution to validate on."""
    data = jdl.data.load("moons", n=n_train + n_val, noise=0.3, test_size=n_val, seed=seed)
    scaler = jdl.data.Standardizer.fit(data.x_train)  # the training set's statistics, for both
    return scaler(data.x_train), data.y_train, scaler(data.x_test), data.y_test


def scores(trainer, state, x, y):
    """Data loss (mean cross-entropy, no L2 term) and accuracy in inference mode."""
    probabilities = trainer.predict(state, x)
    loss = jdl.losses.sparse_categorical_crossentropy(y, probabilities, from_logits=False)
    return float(loss), float(jdl.metrics.accuracy(y, probabilities))


def compare(epochs, n_train=100, seed=0):
    x_train, y_train, x_val, y_val = load(n_train, seed=seed)
    rows = []
    for name, (model, optimizer, callbacks) in variants().items():
        trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=optimizer,
                              metrics=["accuracy"])
        state, history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=20,
                                     validation_data=(x_val, y_val), callbacks=callbacks, verbose=0, seed=seed)
        train_loss, train_acc = scores(trainer, state, x_train, y_train)
        val_loss, val_acc = scores(trainer, state, x_val, y_val)
        best = int(np.argmin(history.history["val_loss"])) + 1
        rows.append({"name": name, "epochs": len(history.epoch), "best": best,
                     "train_loss": train_loss, "val_loss": val_loss, "train_acc": train_acc, "val_acc": val_acc,
                     "history": history.history})
    return len(x_train), len(x_val), rows


def report(n_train, n_val, epochs, rows, seed=0):
    print(f"two moons (noise 0.3): {n_train} training points, {n_val} validation; MLP 2-{'-'.join(map(str, HIDDEN))}-2 "
          f"relu; adam({LEARNING_RATE:g}), batch 20, up to {epochs} epochs, seed {seed}")
    print("losses: the data cross-entropy at the final weights, in inference mode (dropout off, batch-norm"
          "\nrunning statistics, no L2 term); gap = validation - training; best = epoch of lowest val_loss\n")
    header = (f"{'variant':<17}{'epochs':>7}{'best':>6}{'train loss':>12}{'val loss':>10}{'loss gap':>10}"
              f"{'train acc':>11}{'val acc':>9}{'acc gap':>9}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['name']:<17}{r['epochs']:>7}{r['best']:>6}{r['train_loss']:>12.4f}{r['val_loss']:>10.4f}"
              f"{r['val_loss'] - r['train_loss']:>10.4f}{r['train_acc']:>11.4f}{r['val_acc']:>9.4f}"
              f"{r['train_acc'] - r['val_acc']:>9.4f}")
    print("\nreading: training error ~ bias (avoidable error), the validation-training gap ~ variance."
          "\nThe plain net fits the noise of its 100 points: a low training loss, a validation loss far"
          "\nabove it (over-fitting). Each regularizer gives up some training fit for a much smaller gap.")


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in rows:  # validation losses only: with l2 the training "loss" is the cost J + λ/(2m)·Σ‖W‖²
        ax.plot(range(1, len(r["history"]["val_loss"]) + 1), r["history"]["val_loss"], label=r["name"])
    ax.set(xlabel="epoch", ylabel="validation loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    print(f"\nwrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs per variant (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny, fast run (40 epochs)")
    parser.add_argument("--plot", metavar="PATH", help="write the loss curves to this PNG")
    args = parser.parse_args(argv)
    epochs = 40 if args.quick else args.epochs
    n_train, n_val, rows = compare(epochs, seed=args.seed)
    report(n_train, n_val, epochs, rows, args.seed)
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    sys.exit(main())
