"""Trainer trains as Keras does: class and sample weights, weighted metrics, multi-label accuracy.

The expected numbers were produced by Keras 3.15.1 (JAX backend) with
`tests/keras_reference/record_keras.py` on the problems of `tests/keras_reference/cases.py`, from
the same initial weights; jdl trains the same problems here and must land on them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl import optim
from jdl.models import MLP
from tests.keras_reference import cases

KERAS_VERSION = "3.15.1"
KERAS = {  # record_keras.py's output under keras 3.15.1, backend jax
    "class_weighted_validation": {
        "history": {"accuracy": [0.466666669, 0.466666669, 0.466666669], "loss": [1.70192385, 1.34484649, 1.19901431],
                    "val_accuracy": [0.699999988, 0.699999988, 0.699999988],
                    "val_loss": [1.08543003, 0.977591157, 0.902412117]},
        "evaluate_validation_rows": {"accuracy": 0.699999988, "loss": 0.902412117},
    },
    "weighted_metrics": {
        "history": {"accuracy": [0.400000006, 0.466666669, 0.466666669], "loss": [1.77962446, 1.41377008, 1.2347914],
                    "val_accuracy": [0.5, 0.699999988, 0.5],
                    "val_loss": [0.984313667, 0.933870316, 0.90106231],
                    "val_weighted_accuracy": [0.553269565, 0.618293941, 0.403180897],
                    "weighted_accuracy": [0.368899137, 0.455235362, 0.481269747]},
    },
    "multi_label": {"evaluate": {"accuracy": 0.433333337, "binary_accuracy": 0.622222245, "loss": 0.790739298},
                    "weighted_binary_accuracy": 0.640037119},
}


def classifier_trainer(**kw):
    return jdl.Trainer(MLP(hidden=(5,), outputs=3, activation="relu"), loss="sparse_categorical_crossentropy",
                       optimizer=optim.sgd(cases.LEARNING_RATE), **kw)


def with_keras_weights(state, weights):
    params = {"Dense_0": {"kernel": weights["kernel_1"], "bias": weights["bias_1"]},
              "Dense_1": {"kernel": weights["kernel_2"], "bias": weights["bias_2"]}}
    return state.replace(params=jax.tree_util.tree_map(jnp.asarray, params))


def assert_history(history, expected):
    assert set(history.history) - {"lr"} == set(expected)
    for key, values in expected.items():
        assert history.history[key] == pytest.approx(values, rel=2e-6, abs=2e-7), key


def test_class_weight_weights_the_training_loss_only_and_matches_keras_with_its_reduction():
    x, y, _, weights = cases.classification()
    trainer = classifier_trainer(metrics=["accuracy"], loss_reduction="sum_over_batch_size")
    state = with_keras_weights(trainer.init(x), weights)
    state, history = trainer.fit(x, y, epochs=cases.EPOCHS, batch_size=cases.BATCH_SIZE, shuffle=False,
                                 validation_split=0.25, class_weight=cases.CLASS_WEIGHT, verbose=0, state=state)
    assert_history(history, KERAS["class_weighted_validation"]["history"])
    rows = trainer.evaluate(state, x[30:], y[30:])
    assert rows == pytest.approx(KERAS["class_weighted_validation"]["evaluate_validation_rows"], rel=2e-6)


def test_validation_loss_is_unweighted_under_jdls_normalisation_too():
    """Default reduction Σw·L/Σw: val_loss is the plain loss of the held-out rows, not the class-weighted one."""
    x, y, _, weights = cases.classification()
    trainer = classifier_trainer(metrics=["accuracy"])
    state, history = trainer.fit(x, y, epochs=1, batch_size=None, shuffle=False, validation_split=0.25,
                                 class_weight=cases.CLASS_WEIGHT, verbose=0,
                                 state=with_keras_weights(trainer.init(x), weights))
    plain = trainer.evaluate(state, x[30:], y[30:])
    class_weighted = trainer.evaluate(state, x[30:], y[30:],
                                      sample_weight=np.array([cases.CLASS_WEIGHT[c] for c in y[30:]]))
    assert history.history["val_loss"][-1] == pytest.approx(plain["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == pytest.approx(plain["accuracy"], rel=1e-6)
    assert abs(class_weighted["loss"] - plain["loss"]) > 1e-3


def test_metrics_are_unweighted_and_weighted_metrics_see_the_weights_as_keras():
    x, y, w, weights = cases.classification()
    trainer = classifier_trainer(metrics=["accuracy"], weighted_metrics=["accuracy"],
                                 loss_reduction="sum_over_batch_size")
    _, history = trainer.fit(x[:30], y[:30], sample_weight=w[:30], epochs=cases.EPOCHS, batch_size=cases.BATCH_SIZE,
                             shuffle=False, validation_data=(x[30:], y[30:], w[30:]), verbose=0,
                             state=with_keras_weights(trainer.init(x), weights))
    assert_history(history, KERAS["weighted_metrics"]["history"])


def test_binary_accuracy_on_multi_hot_targets_and_accuracy_as_keras_chooses_it():
    x, y, w, weights = cases.multi_label()
    trainer = jdl.Trainer(MLP(hidden=(), outputs=3), loss="binary_crossentropy",
                          metrics=["binary_accuracy", "accuracy"])
    state = trainer.init(x).replace(params={"Dense_0": {"kernel": jnp.asarray(weights["kernel"]),
                                                        "bias": jnp.asarray(weights["bias"])}})
    with pytest.warns(UserWarning, match="multi-hot.*binary_accuracy"):
        scores = trainer.evaluate(state, x, y)
    assert scores == pytest.approx(KERAS["multi_label"]["evaluate"], rel=2e-6)
    p = trainer.predict(state, x)
    assert float(jdl.metrics.binary_accuracy(y, p, sample_weight=w)) == pytest.approx(
        KERAS["multi_label"]["weighted_binary_accuracy"], rel=2e-6)


def test_binary_accuracy_refuses_integer_class_labels():
    with pytest.raises(ValueError, match="binary_accuracy.*multi-hot.*sparse_categorical_crossentropy"):
        classifier_trainer(metrics=["binary_accuracy"])


def test_an_unknown_class_weight_key_is_named():
    x, y, _, _ = cases.classification()
    with pytest.raises(ValueError, match=r"class_weight names class\(es\) \[7\].*3 classes"):
        classifier_trainer().fit(x, y, class_weight={0: 1.0, 7: 2.0}, verbose=0)


def test_bad_reduction_and_weighted_metrics_heads_are_named():
    with pytest.raises(ValueError, match=r"loss_reduction must be one of \['mean', 'sum_over_batch_size'\], got 'sum'"):
        classifier_trainer(loss_reduction="sum")
    with pytest.raises(ValueError, match=r"weighted_metrics names unknown heads \['value'\]"):
        classifier_trainer(weighted_metrics={"value": ["mae"]})
