import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from jdl.nn import activations as A
from tests.compiler import users_jit
from tests.numeric import jax_central_difference


def test_golden_neuron_sigmoid_and_bipolar():
    y_in = 0.35 + 0.8 * 0.1 + 0.6 * 0.3 + 0.4 * (-0.2)
    assert y_in == pytest.approx(0.53)
    assert float(A.sigmoid(y_in)) == pytest.approx(0.62948, abs=5e-6)
    assert float(A.bipolar_sigmoid(y_in)) == pytest.approx(0.25897, abs=5e-6)
    assert float(A.get("sigmoid")(y_in)) == pytest.approx(1 / (1 + math.exp(-0.53)), rel=1e-6)


def test_golden_chain_of_two_sigmoid_neurons():
    first = float(A.sigmoid(1.151))
    assert first == pytest.approx(0.75969, abs=5e-6)
    assert float(A.sigmoid(round(first, 5) * 0.02 + 0.03)) == pytest.approx(0.51130, abs=5e-6)


def test_golden_softmax():
    p = A.softmax(jnp.array([-1.0, 0.0, 3.0, 5.0]))
    np.testing.assert_allclose(p, [0.00217, 0.00589, 0.11824, 0.87370], atol=5e-6)


def test_golden_step():
    s = 1 * 0.8 + 7 * 0.1 + 5 * 0
    assert s == pytest.approx(1.5)
    assert float(A.step(s)) == 1.0
    np.testing.assert_array_equal(A.step(jnp.array([0.0, 0.7, 0.7, 1.4]), threshold=1.0), [0, 0, 0, 1])
    np.testing.assert_array_equal(A.step(jnp.array([0.0, 1.2, 1.2, 2.4]), threshold=1.0), [0, 1, 1, 1])


def test_closed_forms_against_numpy():
    x = np.linspace(-4, 4, 41)
    np.testing.assert_allclose(A.sigmoid(x, steepness=2.0), 1 / (1 + np.exp(-2 * x)), rtol=1e-6)
    np.testing.assert_allclose(A.bipolar_sigmoid(x, 0.5), 2 / (1 + np.exp(-0.5 * x)) - 1, atol=1e-6)
    np.testing.assert_allclose(A.relu(x), np.maximum(0, x))
    np.testing.assert_allclose(A.leaky_relu(x), np.where(x > 0, x, 0.01 * x), rtol=1e-6)
    np.testing.assert_allclose(A.leaky_relu(x, alpha=0.2), np.maximum(0.2 * x, x), rtol=1e-6)
    np.testing.assert_allclose(A.elu(x, alpha=0.5), np.where(x > 0, x, 0.5 * (np.exp(x) - 1)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(A.swish(x), x / (1 + np.exp(-x)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(A.tanh(x), np.tanh(x), rtol=1e-6)
    np.testing.assert_allclose(A.linear(x), x)
    np.testing.assert_allclose(A.softplus(x), np.log1p(np.exp(x)), rtol=1e-5)


def test_extreme_inputs_stay_finite():
    x = jnp.array([-1e4, -100.0, 100.0, 1e4])

    @jax.jit
    def values_and_gradients(v):  # every activation in one compilation
        return {name: (A.get(name)(v), jax.grad(lambda u, name=name: A.get(name)(u).sum())(v)) for name in A.names()}

    results = values_and_gradients(x)
    assert sorted(results) == sorted(A.names())
    for name, (y, g) in results.items():
        assert np.all(np.isfinite(y)), name
        assert np.all(np.isfinite(g)), name


SMOOTH_POINTS = np.array([-2.3, -0.7, -0.15, 0.2, 0.9, 2.6])


@pytest.mark.parametrize("name", A.names())
def test_derivative_matches_float64_central_differences(name, x64):
    fn = A.get(name)
    weights = np.linspace(0.3, 1.7, SMOOTH_POINTS.size)
    if name == "softmax":
        def scalar(v):
            return jnp.sum(jnp.asarray(weights) * fn(v))
    else:
        def scalar(v):
            return jnp.sum(fn(v))
    analytic = jax.jit(jax.grad(scalar))(jnp.asarray(SMOOTH_POINTS))
    assert analytic.dtype == jnp.float64
    numeric = jax_central_difference(scalar, SMOOTH_POINTS)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, options", [("sigmoid", {"steepness": 3.0}), ("bipolar_sigmoid", {"steepness": 0.5}),
                                           ("leaky_relu", {"alpha": 0.3}), ("elu", {"alpha": 2.0})])
def test_parametrised_derivatives_match_central_differences(name, options, x64):
    fn = A.get(name, **options)
    analytic = jax.jit(jax.grad(lambda v: fn(v).sum()))(jnp.asarray(SMOOTH_POINTS))
    numeric = jax_central_difference(lambda v: fn(v).sum(), SMOOTH_POINTS)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_derivative_ranges_taught_in_the_notes():
    x = jnp.linspace(-30.0, 30.0, 2001)
    x_moderate = jnp.linspace(-5.0, 5.0, 101)

    @jax.jit
    def derivatives(x, x_moderate, x_nonzero):  # one compilation for every derivative below
        d = {name: jax.vmap(jax.grad(getattr(A, name))) for name in ("sigmoid", "tanh", "relu", "step")}
        return (d["sigmoid"](x), d["tanh"](x), d["sigmoid"](x_moderate), d["tanh"](x_moderate), d["relu"](x_nonzero),
                d["step"](x))

    d_sigmoid, d_tanh, d_sigmoid_moderate, d_tanh_moderate, d_relu, d_step = derivatives(x, x_moderate, x[x != 0])
    assert float(d_sigmoid.max()) == pytest.approx(0.25, abs=1e-6)
    assert float(d_sigmoid.min()) >= 0.0 and float(d_sigmoid[1000]) == pytest.approx(0.25)
    assert float(d_tanh.max()) == pytest.approx(1.0, abs=1e-6)
    assert float(d_tanh.min()) >= 0.0
    assert np.all(d_sigmoid_moderate > 0)
    assert np.all(d_tanh_moderate > 0)
    assert set(np.unique(np.asarray(d_relu)).tolist()) == {0.0, 1.0}
    assert np.all(d_step == 0)


@jax.jit
def _softmax_by_rows_and_by_columns(logits):
    return A.softmax(logits), A.softmax(logits.T, axis=0)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.sampled_from([(1, 1), (1, 12), (6, 1), (3, 5), (6, 12)]),  # a few shapes: one compile each
              elements=st.floats(-80, 80, width=32)))
def test_softmax_rows_sum_to_one(logits):
    rows, columns = _softmax_by_rows_and_by_columns(jnp.asarray(logits))
    p = np.asarray(rows, dtype=np.float64)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(columns).sum(axis=0), 1.0, atol=1e-6)


def test_get_resolves_names_callables_and_none():
    assert A.get("relu") is A.relu
    assert A.get("silu") is A.swish
    assert A.get("RELU") is A.relu
    assert A.get(None) is A.linear
    custom = lambda x: 2 * x  # noqa: E731
    assert A.get(custom) is custom
    assert float(A.get("leaky_relu", alpha=0.5)(-2.0)) == -1.0


def test_get_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'rellu'.*'relu'.*Valid names: .*sigmoid"):
        A.get("rellu")


def test_get_rejects_bad_options_and_types():
    with pytest.raises(TypeError, match=r"'relu' got unknown option\(s\) \['alpha'\]"):
        A.get("relu", alpha=0.1)
    with pytest.raises(TypeError, match=r"leaky_relu alpha must be a real number"):
        A.get("leaky_relu", alpha="big")
    with pytest.raises(TypeError, match="activation must be a name"):
        A.get(3)


@pytest.mark.parametrize("depth", [1, 3, 10])
def test_golden_vanishing_product_of_sigmoid_derivatives(depth):
    def chain(x):
        for _ in range(depth):
            x = A.sigmoid(x)
        return x

    for x0 in (-2.0, 0.0, 0.5, 3.0):
        assert 0 < float(jax.grad(chain)(x0)) <= 0.25**depth
    assert float(jax.grad(A.sigmoid)(0.0)) == 0.25


@pytest.mark.parametrize("weight, steps, factor", [(0.5, 3, 0.125), (50.0, 3, 50.0**3), (50.0, 5, 50.0**5)])
def test_golden_recurrent_weight_scales_the_signal_by_weight_to_the_t(weight, steps, factor, x64):
    def unrolled(h0):
        h, _ = jax.lax.scan(lambda h, _: (weight * A.linear(h), None), h0, length=steps)
        return h

    assert float(jax.grad(unrolled)(1.0)) == pytest.approx(factor, rel=1e-12)


# -- Keras spellings: gelu(approximate), leaky_relu(negative_slope), activation="prelu" ----------

KERAS_POINTS = (-3.0, -1.5, -0.5, 0.0, 0.3, 1.0, 2.5)  # tests/keras_reference/cases.py GELU_POINTS
KERAS_ACTIVATIONS = {  # keras 3.15.1 (jax backend), tests/keras_reference/record_keras.py
    "gelu_approximate": [-0.00363734365, -0.100428432, -0.154285997, 0.0, 0.185370922, 0.841192007, 2.48491573],
    "gelu_exact": [-0.00404969603, -0.100210831, -0.154268771, 0.0, 0.185373425, 0.841344714, 2.48447585],
    "leaky_relu_negative_slope_0.2": [-0.600000024, -0.300000012, -0.100000001, 0.0, 0.300000012, 1.0, 2.5],
}


def test_gelu_approximate_and_exact_match_keras():
    x = np.asarray(KERAS_POINTS, np.float32)
    np.testing.assert_allclose(users_jit(A.get("gelu", approximate=True))(x), KERAS_ACTIVATIONS["gelu_approximate"],
                               rtol=2e-6, atol=1e-8)
    np.testing.assert_allclose(users_jit(A.get("gelu"))(x), KERAS_ACTIVATIONS["gelu_exact"], rtol=2e-6, atol=1e-8)
    closed_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(A.gelu(x, approximate=True), closed_form, rtol=1e-5, atol=1e-7)


def test_negative_slope_is_keras_name_for_leaky_relu_alpha():
    x = np.asarray(KERAS_POINTS, np.float32)
    np.testing.assert_allclose(A.get("leaky_relu", negative_slope=0.2)(x), KERAS_ACTIVATIONS["leaky_relu_negative_slope_0.2"],
                               rtol=1e-7)
    assert A.get("leaky_relu", negative_slope=0.2) == A.get("leaky_relu", negative_slope=0.2)
    assert float(A.leaky_relu(-1.0)) == pytest.approx(-0.01)
    with pytest.raises(ValueError, match="alpha or its Keras name negative_slope, not both"):
        A.get("leaky_relu", alpha=0.1, negative_slope=0.2)
    with pytest.raises(TypeError, match="gelu approximate must be a bool"):
        A.get("gelu", approximate="tanh")


def test_prelu_is_a_layer_with_its_own_learnable_slope_in_mlp_and_conv():
    import jax

    from jdl.models import MLP
    from jdl.nn import Conv2D

    with pytest.raises(ValueError, match="'prelu' has a learnable slope, so it is a layer"):
        A.get("prelu")
    with pytest.raises(TypeError, match=r"'prelu' got unknown option\(s\) \['slope'\]"):
        A.check("prelu", slope=0.1)
    x = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)
    shapes = jax.eval_shape(MLP(hidden=(3, 2), outputs=1, activation="prelu").init, jax.random.key(0), x)["params"]
    assert shapes["PReLU_0"]["alpha"].shape == (3,) and shapes["PReLU_1"]["alpha"].shape == (2,)
    conv = jax.eval_shape(Conv2D(2, 3, activation="prelu").init, jax.random.key(1), np.ones((1, 5, 5, 1), np.float32))
    assert conv["params"]["PReLU_0"]["alpha"].shape == (3, 3, 2)

    model = MLP(hidden=(3,), outputs=3, activation="prelu")
    params = model.init(jax.random.key(0), x)["params"]
    np.testing.assert_allclose(params["PReLU_0"]["alpha"], 0.25)
    params["Dense_1"] = {"kernel": np.eye(3, dtype=np.float32), "bias": np.zeros(3, np.float32)}
    z = x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]
    out, grads = jax.jit(jax.value_and_grad(lambda p: model.apply({"params": p}, x).sum()))(params)
    assert float(out) == pytest.approx(np.where(z > 0, z, 0.25 * z).sum(), rel=1e-6)
    np.testing.assert_allclose(grads["PReLU_0"]["alpha"], np.where(z > 0, 0.0, z).sum(axis=0), rtol=1e-6)
    assert np.any(z < 0), "the slope's gradient is tested where some units are negative"
