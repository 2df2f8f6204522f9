"""Keras' parameter counts of the Sequential models tests/models/test_sequential.py pins (run only where keras is installed).

    KERAS_BACKEND=jax python -m tests.keras_reference.sequential_params

Prints, one JSON object a line, Keras' version and for each model its layers (name, output shape, count_params)
and the trainable / non-trainable totals. The numbers in the test were produced by this script
with keras 3.15.1 (JAX backend). Not part of the test run: importing Keras takes seconds.
"""

from __future__ import annotations

import json
import os
import sys


def models(keras):
    """The models, as the notes write them (an Input layer gives Keras the shapes jdl reads from a sample input)."""
    layers = keras.layers
    return {
        "notes_ann": lambda: [
            keras.Input((11,)), layers.Dense(units=11, activation="relu"), layers.Dense(units=7, activation="relu"),
            layers.Dense(units=1, activation="sigmoid")],
        "lecture_cnn": lambda: [
            keras.Input((32, 32, 3)), layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
            layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(10)],
        "batch_norm_mlp": lambda: [
            keras.Input((6,)), layers.Dense(8), layers.BatchNormalization(), layers.Activation("relu"),
            layers.Dropout(0.3), layers.Dense(1)],
        "token_rnn": lambda: [
            keras.Input((12,), dtype="int32"), layers.Embedding(50, 8), layers.LSTM(16, return_sequences=True),
            layers.GRU(5), layers.Dense(3)],
    }


def build(keras, layers):
    """A Sequential model in a fresh Keras session, so its layers get the names a new script gives them."""
    keras.backend.clear_session()
    return keras.Sequential(layers())


def counts(model) -> dict:
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    non_trainable = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    return {
        "layers": [[layer.name, [None if d is None else int(d) for d in layer.output.shape], layer.count_params()]
                   for layer in model.layers],
        "trainable": trainable,
        "non_trainable": non_trainable,
        "total": model.count_params(),
    }


def main() -> int:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        print("keras is not installed: nothing to compute", file=sys.stderr)
        return 1
    print(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend()}))
    for name, layers in models(keras).items():
        print(json.dumps({name: counts(build(keras, layers))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
