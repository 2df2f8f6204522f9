"""jdl.regularizers: values and float64 gradients against closed forms, the cost the Trainer forms with them, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl import regularizers
from jdl.models import Sequential
from jdl.nn import Dense

W = np.array([[0.5, -1.5, 0.0], [2.0, -0.25, 1.0]])


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("regularizer, value, gradient", [
    (regularizers.l1(0.3), 0.3 * np.abs(W).sum(), 0.3 * np.sign(W)),
    (regularizers.l2(0.2), 0.2 * np.square(W).sum(), 2 * 0.2 * W),
    (regularizers.l1_l2(l1=0.3, l2=0.2), 0.3 * np.abs(W).sum() + 0.2 * np.square(W).sum(),
     0.3 * np.sign(W) + 0.4 * W),
])
def test_penalty_and_its_gradient_equal_the_closed_forms(regularizer, value, gradient):
    w = jnp.asarray(W, jnp.float64)
    np.testing.assert_allclose(float(regularizer(w)), value, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.grad(regularizer)(w)), gradient, rtol=1e-12)  # d|w|/dw = 0 at w = 0


@pytest.mark.usefixtures("x64")
def test_notes_convention_is_lambda_over_2m():
    w, m = jnp.asarray(W, jnp.float64), 50.0
    notes = regularizers.l2(0.2, convention="notes")
    np.testing.assert_allclose(float(notes(w, m)), 0.2 / (2 * m) * np.square(W).sum(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.grad(notes)(w, m)), 0.2 / m * W, rtol=1e-12)  # the notes' dW += (λ/m)·W
    with pytest.raises(ValueError, match="needs m"):
        notes(w)


def test_keras_names_and_defaults():
    assert regularizers.get("l2") == regularizers.l2() == regularizers.Regularizer(l2=0.01)
    assert regularizers.get("l1") == regularizers.Regularizer(l1=0.01)
    assert regularizers.l1_l2() == regularizers.Regularizer()  # Keras 3's L1L2 defaults: 0.0 and 0.0
    assert regularizers.get(None) is None
    assert hash(regularizers.l2(0.1)) == hash(regularizers.l2(0.1))


def test_trainer_step_follows_the_closed_form_gradient_of_the_regularized_cost():
    """Linear regression, one SGD step: W ← W - η(2/n·Xᵀr + (λ/m)·W), b ← b - η(2/n·Σr + μ·sign(b)), r = XW + b - y.

    The kernel carries the notes' λ/(2m)·Σw² (m = the batch's 8 examples outside fit), the bias Keras' μ·Σ|b|.
    """
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=(8, 1)).astype(np.float32)
    lam, mu, lr, m = 0.4, 0.05, 0.1, 8
    model = Sequential([Dense(1, kernel_regularizer=regularizers.l2(lam, convention="notes"),
                              bias_regularizer=regularizers.l1(mu), bias_initializer="ones")])
    trainer = jdl.Trainer(model, loss="mse", optimizer=jdl.optim.sgd(lr))
    assert trainer.objective.regularizers == ((("dense", "kernel"), regularizers.l2(lam, convention="notes")),
                                              (("dense", "bias"), regularizers.l1(mu)))
    state = trainer.init(x)
    new_state, logs = trainer.train_step(state, (x, y))
    w = np.asarray(state.params["dense"]["kernel"], np.float64)
    b = np.asarray(state.params["dense"]["bias"], np.float64)
    r = x @ w + b - y
    cost = np.mean(r ** 2) + lam / (2 * m) * np.sum(w ** 2) + mu * np.sum(np.abs(b))
    assert float(logs["loss"]) == pytest.approx(cost, rel=1e-5)
    np.testing.assert_allclose(np.asarray(new_state.params["dense"]["kernel"]),
                               w - lr * (2 / 8 * x.T @ r + lam / m * w), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(new_state.params["dense"]["bias"]),
                               b - lr * (2 / 8 * r.sum(axis=0) + mu * np.sign(b)), rtol=1e-5)
    assert trainer.evaluate(state, x, y)["loss"] == pytest.approx(cost, rel=1e-5)  # Keras' evaluate counts it too


def test_bad_factors_and_names_are_refused():
    with pytest.raises(ValueError, match=r"l2 must be a finite non-negative number .* got -0.1"):
        regularizers.l2(-0.1)
    with pytest.raises(ValueError, match="l1 must be a finite non-negative number"):
        regularizers.l1_l2(l1=float("nan"))
    with pytest.raises(TypeError, match="l1 must be a non-negative number, got str"):
        regularizers.l1("0.1")
    with pytest.raises(ValueError, match="convention must be one of"):
        regularizers.l2(0.1, convention="ng")
    with pytest.raises(ValueError, match="unknown regularizer 'l3'"):
        regularizers.get("l3")
    with pytest.raises(TypeError, match="regularizer must be None, a name"):
        regularizers.get(0.01)
    with pytest.raises(KeyError, match="dense/kernel"):
        regularizers.total(((("dense", "kernel"), regularizers.l2()),), {"other": {"kernel": jnp.ones(2)}})
