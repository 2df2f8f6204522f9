import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl.nn import initializers as I

FORMULA_VARIANCE = {
    "uniform": lambda fi, fo: (1 / math.sqrt(fi)) ** 2 / 3,
    "xavier_normal": lambda fi, fo: 2 / (fi + fo),
    "xavier_uniform": lambda fi, fo: 6 / (fi + fo) / 3,
    "he_normal": lambda fi, fo: 2 / fi,
    "he_uniform": lambda fi, fo: 6 / fi / 3,
    "lecun_normal": lambda fi, fo: 1 / fi,
    "lecun_uniform": lambda fi, fo: 3 / fi / 3,
}
UNIFORM_LIMIT = {
    "uniform": lambda fi, fo: 1 / math.sqrt(fi),
    "xavier_uniform": lambda fi, fo: math.sqrt(6 / (fi + fo)),
    "he_uniform": lambda fi, fo: math.sqrt(6 / fi),
    "lecun_uniform": lambda fi, fo: math.sqrt(3 / fi),
}


@pytest.mark.parametrize("name", sorted(FORMULA_VARIANCE))
@pytest.mark.parametrize("shape", [(1000, 1000), (800, 1250)])
def test_empirical_variance_within_two_percent_of_formula(name, shape):
    w = np.asarray(I.get(name)(jax.random.PRNGKey(0), shape), dtype=np.float64)
    expected = FORMULA_VARIANCE[name](*shape)
    assert w.var() == pytest.approx(expected, rel=0.02)
    assert abs(w.mean()) < 0.01 * math.sqrt(expected)


@pytest.mark.parametrize("name", sorted(UNIFORM_LIMIT))
def test_uniform_initializers_fill_their_interval(name):
    fi, fo = 300, 200
    w = np.asarray(I.get(name)(jax.random.PRNGKey(1), (fi, fo)))
    limit = UNIFORM_LIMIT[name](fi, fo)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit


@pytest.mark.parametrize("name", ["xavier_normal", "he_normal", "lecun_normal"])
def test_normal_initializers_are_plain_not_truncated(name):
    w = np.asarray(I.get(name)(jax.random.PRNGKey(2), (1000, 1000)))
    sigma = math.sqrt(FORMULA_VARIANCE[name](1000, 1000))
    tail = np.mean(np.abs(w) > 2 * sigma)
    assert tail == pytest.approx(0.0455, abs=0.002)  # P(|Z| > 2) of a normal; truncation at 2σ would give 0


def test_convolution_fans_include_the_receptive_field():
    assert I.fans((3, 3, 16, 32)) == (144, 288)
    w = np.asarray(I.he_normal()(jax.random.PRNGKey(3), (5, 5, 40, 64)), dtype=np.float64)
    assert w.var() == pytest.approx(2 / (5 * 5 * 40), rel=0.02)


def test_orthogonal_has_orthonormal_columns():
    w = np.asarray(I.orthogonal()(jax.random.PRNGKey(4), (64, 32)), dtype=np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(32), atol=1e-5)
    w = np.asarray(I.orthogonal(gain=2.0)(jax.random.PRNGKey(4), (32, 32)), dtype=np.float64)
    np.testing.assert_allclose(w @ w.T, 4 * np.eye(32), atol=1e-4)


def test_constant_family_and_fixed_scale_draws():
    key = jax.random.PRNGKey(5)
    np.testing.assert_array_equal(I.zeros()(key, (3, 4)), np.zeros((3, 4)))
    np.testing.assert_array_equal(I.ones()(key, (2,)), np.ones(2))
    np.testing.assert_array_equal(I.constant(0.5)(key, (2, 2)), np.full((2, 2), 0.5))
    w = np.asarray(I.random_normal(stddev=1.0, mean=2.0)(key, (500, 500)), dtype=np.float64)
    assert w.std() == pytest.approx(1.0, rel=0.02) and w.mean() == pytest.approx(2.0, abs=0.01)
    u = np.asarray(I.random_uniform(-2.0, 3.0)(key, (10000,)))
    assert u.min() >= -2.0 and u.max() <= 3.0 and u.mean() == pytest.approx(0.5, abs=0.05)


def test_same_key_same_draw_and_dtype_respected():
    key = jax.random.PRNGKey(7)
    a = I.he_uniform()(key, (20, 30))
    b = I.he_uniform()(key, (20, 30))
    np.testing.assert_array_equal(a, b)
    assert I.xavier_normal()(key, (4, 4), jnp.bfloat16).dtype == jnp.bfloat16


def test_usable_as_flax_kernel_init():
    layer = nn.Dense(256, kernel_init=I.get("he_normal"))
    params = layer.init(jax.random.PRNGKey(0), jnp.ones((1, 512)))["params"]
    assert params["kernel"].shape == (512, 256)
    assert float(jnp.var(params["kernel"])) == pytest.approx(2 / 512, rel=0.02)


class TwoLayer(nn.Module):
    kernel_init: I.Initializer

    @nn.compact
    def __call__(self, x):
        h = nn.sigmoid(nn.Dense(4, kernel_init=self.kernel_init, name="hidden")(x))
        return nn.Dense(1, kernel_init=self.kernel_init, name="out")(h)


def _train(kernel_init, steps=5):
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 3))
    y = jnp.sin(x.sum(axis=1, keepdims=True))
    model = TwoLayer(kernel_init)
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    tx = optax.sgd(0.5)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
        grads = jax.grad(lambda p: jnp.mean((model.apply(p, x) - y) ** 2))(params)
        updates, opt_state = tx.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state

    for _ in range(steps):
        params, opt_state = step(params, opt_state)
    return np.asarray(params["params"]["hidden"]["kernel"])


def test_zeros_init_keeps_hidden_units_identical_after_gradient_steps():
    kernel = _train(I.zeros())
    assert np.abs(kernel).max() > 0, "the hidden weights did move"
    for unit in range(1, kernel.shape[1]):
        np.testing.assert_array_equal(kernel[:, unit], kernel[:, 0])
    random_kernel = _train(I.xavier_normal())
    assert np.abs(random_kernel[:, 1] - random_kernel[:, 0]).max() > 1e-2


def test_bad_names_shapes_and_options():
    with pytest.raises(ValueError, match=r"unknown initializer 'he_normall'.*Valid names: .*xavier_uniform"):
        I.get("he_normall")
    with pytest.raises(ValueError, match=r"shape must have at least 2 dimensions .* got \(5,\)"):
        I.he_normal()(jax.random.PRNGKey(0), (5,))
    with pytest.raises(ValueError, match="non-zero fans"):
        I.xavier_uniform()(jax.random.PRNGKey(0), (0, 5))
    with pytest.raises(TypeError, match=r"'he_normal' got unknown option\(s\) \['stddev'\]"):
        I.get("he_normal", stddev=2.0)
    with pytest.raises(ValueError, match="stddev must be >= 0"):
        I.random_normal(stddev=-1.0)
    with pytest.raises(ValueError, match="minval must be < maxval"):
        I.random_uniform(1.0, 0.0)
    with pytest.raises(TypeError, match="shape entries must be an integer"):
        I.zeros()(jax.random.PRNGKey(0), (2.5, 3))
