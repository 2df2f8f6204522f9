"""jdl.constraints: Keras' formulas in NumPy, and max_norm(2) holding after every optimizer step of a real fit."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl import constraints
from jdl.callbacks import Callback
from jdl.models import Sequential
from jdl.nn import Dense

W = np.array([[3.0, 0.1, -1.0], [4.0, 0.2, 0.0]], np.float32)  # column norms 5, √0.05, 1


def test_max_norm_unit_norm_and_non_neg_follow_keras_formulas():
    kernel = np.ones((3, 3, 2, 4), np.float32)  # a Conv2D kernel: one norm per filter over (h, w, c)
    projected = jax.jit(lambda w, k: (constraints.max_norm(2)(w), constraints.unit_norm()(w), constraints.non_neg()(w),
                                      constraints.max_norm(1.0, axis=1)(w), constraints.unit_norm(axis=(0, 1, 2))(k)))
    max_norm, unit_norm, non_neg, rows_max_norm, filters_unit = (np.asarray(a) for a in projected(W, kernel))
    norms = np.sqrt((W.astype(np.float64) ** 2).sum(axis=0, keepdims=True))
    rows = np.sqrt((W.astype(np.float64) ** 2).sum(axis=1, keepdims=True))
    eps = 1e-7  # keras.backend.epsilon()
    np.testing.assert_allclose(max_norm, W * np.clip(norms, 0, 2) / (eps + norms), rtol=1e-6)
    np.testing.assert_allclose(unit_norm, W / (eps + norms), rtol=1e-6)
    np.testing.assert_array_equal(non_neg, np.maximum(W, 0))
    np.testing.assert_allclose(rows_max_norm, W * np.clip(rows, 0, 1) / (eps + rows), rtol=1e-6)
    np.testing.assert_allclose(filters_unit, np.full_like(kernel, 1 / np.sqrt(18)), rtol=1e-6)


@dataclasses.dataclass(frozen=True)
class ColumnNorms:
    """A step hook recording, after each optimizer update, the largest column norm of each Dense kernel."""

    def value_and_grad(self, context):
        return None

    def record(self, context, extra):
        params = context.new_state.params
        return {name: jnp.max(jnp.sqrt(jnp.sum(jnp.square(params[name]["kernel"]), axis=0))) for name in params}


class RecordNorms(Callback):
    def __init__(self):
        self.records = []

    def step_hook(self, model):
        return ColumnNorms()

    def on_step_records(self, records):
        self.records.append({name: np.asarray(values) for name, values in records.items()})


def fit_norms(kernel_constraint):
    """Per step, the largest column norm of each kernel while fitting a large-target regression with a large step size."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = (x @ rng.normal(size=(5, 1)) * 10).astype(np.float32)
    model = Sequential([Dense(6, activation="relu", kernel_constraint=kernel_constraint),
                        Dense(1, kernel_constraint=kernel_constraint)])
    recorder = RecordNorms()
    jdl.Trainer(model, loss="mse", optimizer=jdl.optim.adam(0.3)).fit(x, y, epochs=3, batch_size=16, verbose=0,
                                                                    callbacks=[recorder])
    return {name: np.concatenate([r[name].reshape(-1) for r in recorder.records]) for name in ("dense", "dense_1")}


def test_max_norm_keeps_every_column_norm_at_most_2_after_each_step_of_a_fit():
    norms = fit_norms(constraints.max_norm(2))
    for name in ("dense", "dense_1"):
        assert norms[name].shape == (12,)  # 3 epochs × 4 steps, one record per step
        assert np.all(norms[name] <= np.nextafter(np.float32(2.0), np.float32(3.0)))  # 2, or 2 rounded up one float32 step
        assert np.any(norms[name] > 2.0 - 1e-5)  # the constraint binds: updates push columns out of the ball


def test_bad_constraints_are_refused():
    with pytest.raises(ValueError, match="max_value must be > 0"):
        constraints.max_norm(0)
    with pytest.raises(TypeError, match="axis must be an int or a non-empty sequence of ints"):
        constraints.unit_norm(axis="rows")
    with pytest.raises(ValueError, match="out of range"):
        constraints.max_norm(2, axis=3)(W)
    with pytest.raises(ValueError, match="unknown constraint 'maxnorm'"):
        constraints.get("maxnorm")
    with pytest.raises(KeyError, match="dense/kernel"):
        constraints.apply(((("dense", "kernel"), constraints.non_neg()),), {"other": {"kernel": jnp.ones(2)}})
