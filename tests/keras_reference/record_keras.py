"""Print the Keras numbers that tests/train/test_keras_parity.py and the metric/activation/loss tests record.

Run only where keras is installed, with the JAX backend:
    KERAS_BACKEND=jax PYTHONPATH=. python tests/keras_reference/record_keras.py
It prints one Python dict literal (values to 9 significant digits) to paste into the tests, with
the Keras version it came from. The problems (data, initial weights) are in `cases.py`.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

try:
    import keras
except ImportError:
    sys.exit("keras is not installed: nothing to record (the tests use the numbers recorded in them)")

import numpy as np

from tests.keras_reference import cases


def rounded(value):
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return float(f"{float(value):.9g}")


def classifier(weights):
    """Dense(5, relu) → Dense(3) logits on 4 inputs, with the cases' initial weights."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)])
    model.set_weights([weights["kernel_1"], weights["bias_1"], weights["kernel_2"], weights["bias_2"]])
    return model


def compiled_classifier(weights, **compile_args):
    model = classifier(weights)
    model.compile(optimizer=keras.optimizers.SGD(cases.LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), **compile_args)
    return model


def class_weighted_validation():
    """fit with class_weight and validation_split: Keras weights the training loss only."""
    x, y, _, weights = cases.classification()
    model = compiled_classifier(weights, metrics=["accuracy"])
    history = model.fit(x, y, epochs=cases.EPOCHS, batch_size=cases.BATCH_SIZE, shuffle=False,
                        validation_split=0.25, class_weight=cases.CLASS_WEIGHT, verbose=0).history
    evaluated = model.evaluate(x[30:], y[30:], verbose=0, return_dict=True)
    return {"history": history, "evaluate_validation_rows": evaluated}


def weighted_metrics():
    """fit with sample_weight, metrics=["accuracy"] and weighted_metrics=["accuracy"], validation_data with weights."""
    x, y, w, weights = cases.classification()
    model = compiled_classifier(weights, metrics=["accuracy"], weighted_metrics=["accuracy"])
    history = model.fit(x[:30], y[:30], sample_weight=w[:30], epochs=cases.EPOCHS, batch_size=cases.BATCH_SIZE,
                        shuffle=False, validation_data=(x[30:], y[30:], w[30:]), verbose=0).history
    return {"history": history}


def multi_label():
    """Sigmoid outputs on multi-hot targets: binary_accuracy element-wise, "accuracy" as Keras resolves it."""
    x, y, w, weights = cases.multi_label()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="sigmoid")])
    model.set_weights([weights["kernel"], weights["bias"]])
    model.compile(loss="binary_crossentropy", metrics=["binary_accuracy", "accuracy"])
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True)
    p = np.asarray(model.predict(x, verbose=0))
    weighted = keras.metrics.BinaryAccuracy()
    weighted.update_state(y, p, sample_weight=w)
    return {"evaluate": evaluated, "weighted_binary_accuracy": weighted.result()}


def activations():
    points = np.asarray(cases.GELU_POINTS, np.float32)
    return {
        "gelu_approximate": np.asarray(keras.activations.gelu(points, approximate=True)).tolist(),
        "gelu_exact": np.asarray(keras.activations.gelu(points, approximate=False)).tolist(),
        "leaky_relu_negative_slope_0.2": np.asarray(keras.activations.leaky_relu(points, negative_slope=0.2)).tolist(),
    }


def sum_over_batch_size():
    """Keras' default loss reduction with sample weights: Σ w·L / n (not Σ w·L / Σ w)."""
    _, y, w, _ = cases.multi_label()
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, size=y.shape).astype(np.float32)
    return {
        "binary_crossentropy": keras.losses.BinaryCrossentropy()(y, p, sample_weight=w),
        "mean_squared_error": keras.losses.MeanSquaredError()(y, p, sample_weight=w),
    }


def main():
    numbers = {
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "class_weighted_validation": class_weighted_validation(),
        "weighted_metrics": weighted_metrics(),
        "multi_label": multi_label(),
        "activations": activations(),
        "sum_over_batch_size": sum_over_batch_size(),
    }
    version = numbers.pop("keras_version")
    backend = numbers.pop("backend")
    print({"keras_version": version, "backend": backend, **rounded(numbers)})


if __name__ == "__main__":
    main()
