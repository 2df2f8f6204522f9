"""Multi-label classification: each 8×8 digit gets three yes/no labels at once, {even, ≥ 5, round}.

One sigmoid per label and binary cross-entropy (the notes' multi-label recipe), so the targets are
multi-hot rows such as 8 -> [1, 1, 1] and 7 -> [0, 1, 0]. `binary_accuracy` scores each label
element-wise; `"accuracy"` would take an argmax over the three outputs, as Keras does (jdl warns),
which answers the wrong question. Reported on the test set: per-label accuracy, subset (exact-match)
accuracy, Jaccard and sample-averaged precision/recall/F1, against always predicting each label's
training-set majority. "round" digits are 0, 6, 8 and 9.

Run: python examples/19_multi_label.py [--epochs 30] [--quick]
"""

import argparse
import sys
import warnings

import numpy as np

import jdl

LABELS = ("even", ">=5", "round")
ROUND = (0, 6, 8, 9)


def multi_hot(digits):
    """(n,) digits -> (n, 3) float targets [even, ≥ 5, round]."""
    digits = np.asarray(digits)
    return np.stack([digits % 2 == 0, digits >= 5, np.isin(digits, ROUND)], axis=1).astype(np.float32)


def run(epochs=30, seed=0):
    """Fit an MLP with three sigmoid outputs; return the test scores and the majority baseline's."""
    data = jdl.data.load("digits", test_size=0.25, seed=seed)
    y_train, y_test = multi_hot(data.y_train), multi_hot(data.y_test)
    trainer = jdl.Trainer(jdl.models.MLP(hidden=(64,), outputs=3, activation="relu"), loss="binary_crossentropy",
                          optimizer=jdl.optim.adam(3e-3), metrics=["binary_accuracy"])
    state, history = trainer.fit(data.x_train, y_train, epochs=epochs, batch_size=32, validation_split=0.2,
                                 verbose=0, seed=seed)
    p = trainer.predict(state, data.x_test)
    majority = np.broadcast_to(y_train.mean(axis=0) > 0.5, y_test.shape).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        argmax_accuracy = float(jdl.metrics.accuracy(y_test, p))

    def scores(pred):
        m = jdl.metrics
        return {
            "binary_accuracy": float(m.binary_accuracy(y_test, pred)),
            "subset_accuracy": float(m.subset_accuracy(y_test, pred)),
            "jaccard": float(m.jaccard_score(y_test, pred)),
            "precision": float(m.multilabel_precision(y_test, pred, average="samples")),
            "recall": float(m.multilabel_recall(y_test, pred, average="samples")),
            "f1": float(m.multilabel_f1(y_test, pred, average="samples")),
        }

    per_label = ((p > 0.5) == (y_test > 0.5)).mean(axis=0)
    return {"n_train": len(y_train), "n_test": len(y_test), "history": history.history, "model": scores(p),
            "majority": scores(majority), "per_label": dict(zip(LABELS, per_label.tolist())),
            "argmax_accuracy": argmax_accuracy, "warned": any("binary_accuracy" in str(w.message) for w in caught)}


def report(result):
    print(f"digits: {result['n_train']} training, {result['n_test']} test examples; labels {', '.join(LABELS)}")
    print("targets: 0 -> [1, 0, 1], 7 -> [0, 1, 0], 8 -> [1, 1, 1]")
    print(f"last epoch: binary_accuracy {result['history']['binary_accuracy'][-1]:.4f}, "
          f"val_binary_accuracy {result['history']['val_binary_accuracy'][-1]:.4f}")
    print(f"\n{'test':<16} {'model':>8} {'majority':>9}")
    for key in result["model"]:
        print(f"{key:<16} {result['model'][key]:8.4f} {result['majority'][key]:9.4f}")
    print("(an example with no true label, a 1 or a 3, scores 0 in jaccard/precision/recall/f1: scikit-learn's "
          "zero_division=0)")
    print("\nper-label test accuracy: " + ", ".join(f"{k} {v:.4f}" for k, v in result["per_label"].items()))
    print(f"'accuracy' (argmax over the 3 outputs, as Keras) {result['argmax_accuracy']:.4f}"
          f"{' - jdl warned: use binary_accuracy' if result['warned'] else ''}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a short run (5 epochs)")
    args = parser.parse_args(argv)
    report(run(epochs=5 if args.quick else args.epochs, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
