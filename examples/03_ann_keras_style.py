"""The notes' Keras ANN on breast cancer, in jdl: Dense 11 relu -> Dense 7 relu -> Dense 1 sigmoid.

Shows the Keras workflow one to one: standardize with the training set's statistics, compile
(loss, optimizer, metrics), fit with validation_split=0.33, batch 10 and EarlyStopping on
val_loss (restoring the best weights), then evaluate, predict, and read the confusion matrix,
precision, recall and F1 on the held-out test set. The sigmoid output is folded into binary
cross-entropy on logits (numerically stable); `predict` applies the sigmoid.

Run: python examples/03_ann_keras_style.py [--epochs 100] [--patience 10] [--quick] [--plot curves.png]
"""

import argparse
import sys
import time

import numpy as np

import jdl


def build_trainer():
    """The notes' Sequential model, "compiled": adam, binary cross-entropy, accuracy."""
    model = jdl.models.MLP(hidden=(11, 7), outputs=1, activation="relu", kernel_init="he_uniform")
    return jdl.Trainer(model, loss="binary_crossentropy", optimizer=jdl.optim.adam(1e-3), metrics=["accuracy"])


def run(epochs=100, patience=10, seed=0, verbose=0):
    """Fit on the standardized training set; return a dict of everything the report prints."""
    data = jdl.data.load("breast_cancer", test_size=0.2, seed=seed)
    scaler = jdl.data.Standardizer.fit(data.x_train)  # the training set's mean and std only...
    x_train, x_test = scaler(data.x_train), scaler(data.x_test)  # ...applied to train and test alike
    trainer = build_trainer()
    stop = jdl.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    start = time.perf_counter()
    state, history = trainer.fit(x_train, data.y_train, epochs=epochs, batch_size=10, validation_split=0.33,
                                 callbacks=[stop], verbose=verbose, seed=seed)
    seconds = time.perf_counter() - start
    scores = trainer.evaluate(state, x_test, data.y_test)
    probabilities = np.asarray(trainer.predict(state, x_test))[:, 0]
    y_pred = (probabilities > 0.5).astype(np.int32)
    y_test = data.y_test
    return {
        "data": data, "history": history.history, "epochs_run": len(history.epoch),
        "best_epoch": stop.best_epoch + 1, "seconds": seconds, "test": scores,
        "confusion": np.asarray(jdl.metrics.confusion_matrix(y_test, y_pred, num_classes=2)),
        "precision": float(jdl.metrics.precision(y_test, y_pred)),
        "recall": float(jdl.metrics.recall(y_test, y_pred)),
        "f1": float(jdl.metrics.f1_score(y_test, y_pred)),
    }


def report(result):
    data, history = result["data"], result["history"]
    n_train = len(data.x_train)
    n_fit = int(np.floor(n_train * (1 - 0.33)))
    print(f"breast_cancer: {n_train} training examples ({n_fit} fit, {n_train - n_fit} validation "
          f"= the last 33%), {len(data.x_test)} test; {data.x_train.shape[1]} features, standardized")
    print("model: Dense(11, relu) -> Dense(7, relu) -> Dense(1, sigmoid); adam(1e-3), batch 10")
    print(f"epochs run: {result['epochs_run']} (best val_loss at epoch {result['best_epoch']}, "
          f"weights restored from it); {result['seconds']:.1f} s")
    print("\nlast epoch of the history:")
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        print(f"  {key:<13} {history[key][-1]:.4f}")
    print(f"  {'min val_loss':<13} {min(history['val_loss']):.4f}")
    test = result["test"]
    print(f"\ntest loss     {test['loss']:.4f}")
    print(f"test accuracy {test['accuracy']:.4f}")
    names = data.info["class_names"]
    cm = result["confusion"]
    width = max(len(n) for n in names) + 2
    print("\nconfusion matrix (rows: true class, columns: predicted class)")
    print(" " * (width + 6) + "".join(f"{n:>{width}}" for n in names))
    for i, name in enumerate(names):
        print(f"  true {name:<{width}}" + "".join(f"{int(v):>{width}}" for v in cm[i]))
    print(f"\npositive class: {names[1]} (label 1)")
    print(f"precision     {result['precision']:.4f}   TP / (TP + FP)")
    print(f"recall        {result['recall']:.4f}   TP / (TP + FN)")
    print(f"F1            {result['f1']:.4f}   2 / (1/P + 1/R)")


def plot(history, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(history[key], label=f"train {key}")
        ax.plot(history[f"val_{key}"], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"\nwrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="at most this many epochs (default 100)")
    parser.add_argument("--patience", type=int, default=10, help="EarlyStopping patience (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny, fast run (20 epochs, patience 5)")
    parser.add_argument("--plot", metavar="PATH", help="write the learning curves to this PNG")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2))
    args = parser.parse_args(argv)
    epochs, patience = (20, 5) if args.quick else (args.epochs, args.patience)
    result = run(epochs=epochs, patience=patience, seed=args.seed, verbose=args.verbose)
    report(result)
    if args.plot:
        plot(result["history"], args.plot)


if __name__ == "__main__":
    sys.exit(main())
