"""The fixed-seed fits of test_equivalence, run in a fresh interpreter: `python -m tests.train.equivalence_fit NAME...`.

Prints one JSON object, {name: summary}, each summary holding the digest of the parameters, their sum, absolute sum and first entries,
and the per-epoch training losses.
"""

import hashlib
import json
import sys

import jax
import numpy as np

import jdl


def digest(params):
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        h.update(jax.tree_util.keystr(path).encode())
        h.update(np.asarray(leaf).tobytes())
    return h.hexdigest()


def cases():
    """name: (trainer, fit options) of the three recorded fits."""
    data = jdl.data.load("digits")
    x, y = data.x_train[:600], data.y_train[:600]
    mlp = jdl.Trainer(jdl.models.MLP(hidden=(32, 16), outputs=10, dropout=0.1), loss="sparse_categorical_crossentropy",
                      optimizer=jdl.optim.adam(3e-3, l2=0.01), metrics=["accuracy"])
    cnn = jdl.Trainer(jdl.models.CNN(conv=((8, 3), (16, 3)), pool=(None, 2), dense=(32,), outputs=10),
                      loss="sparse_categorical_crossentropy", optimizer=jdl.optim.sgd(0.05, momentum=0.9),
                      metrics=["accuracy"])
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(256, 12, 4)).astype(np.float32)
    target = (seq[:, :, 0].sum(1) > 0).astype(np.int32)
    lstm = jdl.Trainer(jdl.models.SequenceClassifier(cell="lstm", units=16, outputs=2),
                       loss="sparse_categorical_crossentropy", optimizer=jdl.optim.rmsprop(1e-2), metrics=["accuracy"])
    return {
        "mlp": (mlp, dict(x=x, y=y, epochs=3, batch_size=47, validation_split=0.1, seed=3)),
        "cnn": (cnn, dict(x=x.reshape(-1, 8, 8, 1), y=y, epochs=2, batch_size=64, seed=1)),
        "lstm": (lstm, dict(x=seq, y=target, epochs=2, batch_size=40, seed=2)),
    }



def summary(name: str) -> dict:
    """The fit's digest, sums, first entries and losses."""
    trainer, options = cases()[name]
    state, history = trainer.fit(options.pop("x"), options.pop("y"), verbose=0, **options)
    leaves = [np.asarray(leaf, np.float64) for leaf in jax.tree_util.tree_leaves(state.params)]
    return {
        "digest": digest(state.params),
        "sum": float(sum(leaf.sum() for leaf in leaves)),
        "abs_sum": float(sum(np.abs(leaf).sum() for leaf in leaves)),
        "first": [float(leaf.reshape(-1)[0]) for leaf in leaves],
        "loss": history.history["loss"],
    }


if __name__ == "__main__":
    print(json.dumps({name: summary(name) for name in sys.argv[1:]}))
