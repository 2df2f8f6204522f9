import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn import PReLU
from jdl.nn import initializers as I
from tests.numeric import jax_central_difference


def test_prelu_values_and_parameter_shapes():
    x = jnp.array([[-2.0, -0.5, 0.0, 3.0]])
    layer = PReLU()
    params = layer.init(jax.random.PRNGKey(0), x)
    assert params["params"]["alpha"].shape == (4,)
    np.testing.assert_allclose(layer.apply(params, x), [[-0.5, -0.125, 0.0, 3.0]])
    images = jnp.ones((2, 5, 5, 3))
    shared = PReLU(alpha_init=I.zeros(), shared_axes=(1, 2)).init(jax.random.PRNGKey(0), images)
    assert shared["params"]["alpha"].shape == (1, 1, 3)


def test_prelu_alpha_gradient_matches_central_differences(x64):
    x = jnp.array([[-1.5, 2.0, -0.3], [0.7, -2.2, -0.1]])
    layer = PReLU(shared_axes=(1,))
    params = layer.init(jax.random.PRNGKey(0), x)

    def loss(alpha):
        return jnp.sum(jnp.sin(layer.apply({"params": {"alpha": jnp.asarray(alpha)}}, x)))

    alpha = np.array([0.3])
    analytic = jax.jit(jax.grad(loss))(jnp.asarray(alpha))
    np.testing.assert_allclose(analytic, jax_central_difference(loss, alpha), rtol=1e-6)
    assert params["params"]["alpha"].shape == (1,)


def test_prelu_bad_shared_axes():
    with pytest.raises(ValueError, match=r"shared_axes must hold axes in \[1, 1\]"):
        PReLU(shared_axes=(0,)).init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
