"""The Keras-spelled layers: each against NumPy or the jdl/Flax layer it wraps, their parameter names, and their errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import constraints, regularizers
from jdl.nn import GRU, LSTM, Activation, BatchNormalization, Dense, Dropout, MaxPooling2D
from jdl.nn.recurrent import GRUCell, LSTMCell, Recurrent
from tests.numeric import random_variables

RNG = np.random.default_rng(0)


def test_dense_is_activation_of_x_w_plus_b_with_kernel_and_bias_params():
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    layer = Dense(2, activation="relu")
    variables = random_variables(layer, x)
    kernel, bias = (np.asarray(variables["params"][k]) for k in ("kernel", "bias"))
    assert kernel.shape == (4, 2) and bias.shape == (2,)
    np.testing.assert_allclose(np.asarray(layer.apply(variables, x)), np.maximum(x @ kernel + bias, 0), rtol=1e-6)
    linear = Dense(2, use_bias=False)
    assert set(random_variables(linear, x)["params"]) == {"kernel"}
    prelu = Dense(2, activation="prelu")
    variables = random_variables(prelu, x)
    z = x @ np.asarray(variables["params"]["kernel"]) + np.asarray(variables["params"]["bias"])
    alpha = np.asarray(variables["params"]["p_re_lu"]["alpha"])
    np.testing.assert_allclose(np.asarray(prelu.apply(variables, x)), np.where(z > 0, z, alpha * z), rtol=1e-6)


def test_dense_declares_its_regularizers_and_constraints():
    layer = Dense(3, kernel_regularizer=regularizers.l2(0.1), bias_regularizer="l1", kernel_constraint="max_norm",
                  bias_constraint=constraints.non_neg())
    assert layer.declared_regularizers() == ((("kernel",), regularizers.Regularizer(l2=0.1)),
                                             (("bias",), regularizers.Regularizer(l1=0.01)))
    assert layer.declared_constraints() == ((("kernel",), constraints.MaxNorm(2.0, 0)), (("bias",), constraints.NonNeg()))
    assert Dense(3).declared_regularizers() == () and Dense(3).declared_constraints() == ()


def test_dropout_is_inverted_in_training_and_the_identity_at_inference():
    x = np.ones((4, 1000), np.float32)
    layer = Dropout(0.3)
    kept = np.asarray(layer.apply({}, x, train=True, rngs={"dropout": jax.random.PRNGKey(0)}))
    np.testing.assert_allclose(np.unique(kept), [0.0, 1 / 0.7], rtol=1e-6)  # survivors scaled by 1/(1 - rate)
    assert abs((kept == 0).mean() - 0.3) < 0.02
    np.testing.assert_array_equal(np.asarray(layer.apply({}, x)), x)


def test_batch_normalization_uses_batch_statistics_in_training_and_running_ones_after():
    x = (RNG.normal(size=(64, 3)) * [1.0, 2.0, 3.0] + [0.0, 5.0, -1.0]).astype(np.float32)
    layer = BatchNormalization()
    assert jax.tree_util.tree_map(jnp.shape, jax.eval_shape(layer.init, jax.random.PRNGKey(0), x)) == {
        "params": {"scale": (3,), "bias": (3,)}, "batch_stats": {"mean": (3,), "var": (3,)}}
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)  # the initial values: γ = 1, β = 0, μ = 0, σ² = 1
    variables = {"params": {"scale": ones, "bias": zeros}, "batch_stats": {"mean": zeros, "var": ones}}
    y, updates = layer.apply(variables, x, train=True, mutable=["batch_stats"])
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)  # Keras ε = 1e-3, γ = 1, β = 0 at init
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(updates["batch_stats"]["mean"]), 0.01 * x.mean(0), rtol=1e-5)  # momentum 0.99
    inference = layer.apply({**variables, **updates}, x)
    stats = updates["batch_stats"]
    np.testing.assert_allclose(np.asarray(inference), (x - stats["mean"]) / np.sqrt(stats["var"] + 1e-3), rtol=1e-4,
                               atol=1e-5)


def test_activation_and_max_pooling_2d():
    x = RNG.normal(size=(2, 4, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(Activation("tanh").apply({}, x)), np.tanh(x), rtol=1e-6)
    pooled = np.asarray(MaxPooling2D().apply({}, x))
    np.testing.assert_array_equal(pooled, x.reshape(2, 2, 2, 3, 2, 3).max(axis=(2, 4)))
    with pytest.raises(ValueError, match="MaxPooling2D must have 4 dimensions"):
        MaxPooling2D().apply({}, x[0])


def test_lstm_and_gru_are_jdl_recurrent_layers_with_keras_defaults():
    x = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    layer, reference = LSTM(4, return_sequences=True), Recurrent(LSTMCell(4), return_sequences=True)
    variables = random_variables(layer, x)
    assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(random_variables(reference, x))
    np.testing.assert_array_equal(np.asarray(layer.apply(variables, x)), np.asarray(reference.apply(variables, x)))
    gru = jax.eval_shape(GRU(4).init, jax.random.PRNGKey(0), x)
    assert jax.tree_util.tree_map(jnp.shape, gru) == jax.tree_util.tree_map(
        jnp.shape, jax.eval_shape(Recurrent(GRUCell(4)).init, jax.random.PRNGKey(0), x))
    assert jax.eval_shape(GRU(4).apply, gru, x).shape == (2, 4)
    assert jax.eval_shape(LSTM(4, return_state=True).apply, variables, x)[1][0].shape == (2, 4)  # (outputs, (c, h))


def test_bad_arguments_are_refused_before_tracing():
    with pytest.raises(ValueError, match="units must be > 0"):
        Dense(0)
    with pytest.raises(TypeError, match="units must be an integer"):
        Dense("3")
    with pytest.raises(ValueError, match="unknown activation 'rleu'"):
        Dense(3, activation="rleu")
    with pytest.raises(ValueError, match="unknown regularizer 'l3'"):
        Dense(3, kernel_regularizer="l3")
    with pytest.raises(TypeError, match="constraint must be None, a name"):
        Dense(3, kernel_constraint=2.0)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="momentum must be in"):
        BatchNormalization(momentum=1.0)
    with pytest.raises(TypeError, match="return_sequences must be a bool"):
        LSTM(3, return_sequences="yes")
    with pytest.raises(ValueError, match=r"x of LSTM must have shape \(batch, time, features\)"):
        LSTM(3).init(jax.random.PRNGKey(0), np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="x of Dense must be a numeric array"):
        Dense(2).init(jax.random.PRNGKey(0), "x")
