"""The lecture notes' worked numbers that no other test pins (SPEC.md §14), each computed by jdl.

Where the notes' own arithmetic slips, the test pins the right number and its name says what
the notes wrote instead.
"""

import inspect
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import losses as L
from jdl import optim
from jdl.nn import Conv2D, Flatten, output_size
from jdl.nn import activations as A

I1, I2, T1, T2 = 0.05, 0.10, 0.01, 0.99
W1, W2, W3, W4, W5, W6, W7, W8, B1, B2 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55, 0.35, 0.60


def to_digits(value, golden):
    """`value` agrees with the golden string to its printed digits (half a unit of the last one)."""
    return value == pytest.approx(float(golden), abs=0.5 * 10.0 ** -len(golden.split(".")[1]))


def test_the_2_2_2_networks_intermediates(x64):
    @jax.jit
    def intermediates(x, target):
        dense = nn.Dense(2)
        hidden = {"params": {"kernel": jnp.array([[W1, W3], [W2, W4]]), "bias": jnp.array([B1, B1])}}
        output = {"params": {"kernel": jnp.array([[W5, W7], [W6, W8]]), "bias": jnp.array([B2, B2])}}
        net_h = dense.apply(hidden, x)
        net_o = dense.apply(output, A.sigmoid(net_h))[0]

        def errors(out):
            return 0.5 * L.mean_squared_error(target[:, None], out[:, None], reduction="none")

        out = A.sigmoid(net_o)
        return net_h[0, 0], net_o[0], errors(out), jax.grad(lambda o: errors(o).sum())(out), jax.grad(A.sigmoid)(net_o[0])

    net_h1, net_o1, e, de_dout, dout_dnet = intermediates(jnp.array([[I1, I2]]), jnp.array([T1, T2]))
    assert to_digits(float(net_h1), "0.3775")
    assert to_digits(float(net_o1), "1.105905967")
    assert to_digits(float(e[0]), "0.274811083")
    assert to_digits(float(e[1]), "0.023560026")
    assert to_digits(float(de_dout[0]), "0.74136507")
    assert to_digits(float(dout_dnet), "0.186815602")


def test_first_neurons_sum_is_1_16_not_the_notes_1_151():
    z = float(jnp.dot(jnp.array([95.0, 4.0, 4.0, 1.0]), jnp.array([0.01, 0.02, 0.03, 0.01])))
    assert z == pytest.approx(1.16, abs=1e-6) and abs(z - 1.151) > 5e-3
    assert to_digits(float(A.sigmoid(z)), "0.76133")


def test_dropout_0_3_on_100_units_drops_30_on_average_and_scales_survivors_by_1_over_0_7():
    """Flax's inverted Dropout, the one jdl's layers use: each unit dropped with probability 0.3."""
    units = jnp.ones((2000, 100))
    drop = jax.jit(lambda u, key: nn.Dropout(0.3, deterministic=False).apply({}, u, rngs={"dropout": key}))
    out = np.asarray(drop(units, jax.random.key(0)))
    dropped_per_row = (out == 0).sum(axis=1)
    assert dropped_per_row.mean() == pytest.approx(30, abs=4 * math.sqrt(100 * 0.3 * 0.7 / 2000))
    np.testing.assert_allclose(out[out != 0], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(nn.Dropout(0.3, deterministic=True).apply({}, units), units)


def test_softmax_crossentropy_gradient_minus_0_8_is_true_class_0_which_the_notes_call_class_1():
    logits = jnp.log(jnp.array([[0.2, 0.3, 0.5]]))
    gradient = jax.jit(jax.grad(lambda z, label: L.sparse_categorical_crossentropy(label, z, reduction="sum")))
    np.testing.assert_allclose(gradient(logits, jnp.array([0]))[0], [-0.8, 0.3, 0.5], atol=1e-6)
    np.testing.assert_allclose(gradient(logits, jnp.array([1]))[0], [0.2, -0.7, 0.5], atol=1e-6)


def test_padding_a_5x4_grid_by_1_gives_7x6():
    grid = np.arange(1.0, 21.0, dtype=np.float32).reshape(1, 5, 4, 1)
    conv = Conv2D(1, 1, padding=1, use_bias=False)
    out = conv.apply({"params": {"kernel": jnp.ones((1, 1, 1, 1))}}, grid)
    assert out.shape == (1, 7, 6, 1) and (output_size(5, 1, 1), output_size(4, 1, 1)) == (7, 6)
    np.testing.assert_array_equal(out[0, :, :, 0], np.pad(grid[0, :, :, 0], 1))


def test_flattening_the_notes_2x4_map_gives_its_rows_in_order():
    out = Flatten().apply({}, jnp.array([[[1, 6, 3, 2], [4, 2, 1, 5]]]))
    np.testing.assert_array_equal(out, [[1, 6, 3, 2, 4, 2, 1, 5]])


def test_softmax_divides_by_the_sum_of_exponentials_not_the_notes_exp_of_the_sum():
    y = jnp.array([-1.0, 0.0, 3.0, 5.0])
    np.testing.assert_allclose(A.softmax(y), np.exp(y) / np.exp(y).sum(), rtol=1e-6)
    assert abs(float(A.softmax(y)[-1]) - float(np.exp(5.0) / np.exp(y.sum()))) > 0.5


def test_elu_negative_branch_is_alpha_times_expm1_not_the_notes_x_times_expm1():
    assert float(A.elu(-1.0)) == pytest.approx(math.exp(-1) - 1, abs=1e-6)
    assert float(A.elu(-1.0, alpha=0.5)) == pytest.approx(0.5 * (math.exp(-1) - 1), abs=1e-6)
    assert float(A.elu(-1.0)) < 0 < (-1.0) * (math.exp(-1) - 1)


def test_adam_default_learning_rate_is_kerass_0_001_not_the_notes_0_01():
    assert inspect.signature(optim.adam).parameters["learning_rate"].default == 1e-3
