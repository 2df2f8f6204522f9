import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn import initializers
from jdl.nn.embedding import Embedding
from tests.numeric import jax_central_difference

TOKENS = np.array([[1, 4, 0, 4], [2, 2, 3, 0]], np.int32)


def test_lookup_equals_numpy_table_indexing():
    layer = Embedding(5, 3)
    variables = layer.init(jax.random.PRNGKey(0), TOKENS)
    table = np.asarray(variables["params"]["embeddings"])
    assert table.shape == (5, 3)
    assert np.all(np.abs(table) <= 0.05), "Keras' default initialisation is U(-0.05, 0.05)"
    out = np.asarray(layer.apply(variables, TOKENS))
    assert out.shape == (2, 4, 3)
    expected = np.array([[table[t] for t in row] for row in TOKENS])
    np.testing.assert_array_equal(out, expected)
    flat = np.asarray(layer.apply(variables, np.array([3, 1])))
    np.testing.assert_array_equal(flat, table[[3, 1]])


def test_gradient_scatters_into_rows_and_matches_central_differences(x64):
    layer = Embedding(5, 2)
    weights = np.random.default_rng(0).normal(size=(2, 4, 2))

    def loss(table):
        out = layer.apply({"params": {"embeddings": jnp.asarray(table)}}, TOKENS)
        return jnp.sum(jnp.tanh(out) * weights)

    table = np.random.default_rng(1).normal(size=(5, 2))
    grad = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(table)))
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, jax_central_difference(loss, table), rtol=1e-6, atol=1e-9)
    # By hand: each position adds its upstream gradient into its token's row.
    upstream = (1 - np.tanh(table[TOKENS]) ** 2) * weights
    expected = np.zeros_like(table)
    for b in range(2):
        for t in range(4):
            expected[TOKENS[b, t]] += upstream[b, t]
    np.testing.assert_allclose(grad, expected, rtol=1e-10)


def test_unused_rows_get_zero_gradient():
    layer = Embedding(6, 2, embeddings_init=initializers.random_normal(1.0))
    variables = layer.init(jax.random.PRNGKey(0), TOKENS)
    grad = jax.grad(lambda p: jnp.sum(layer.apply(p, TOKENS) ** 2))(variables)["params"]["embeddings"]
    assert np.all(np.asarray(grad[5]) == 0), "token 5 never occurs"
    assert np.all(np.abs(np.asarray(grad[4])) > 0)


def test_compute_mask():
    np.testing.assert_array_equal(Embedding(5, 3, mask_zero=True).compute_mask(TOKENS), TOKENS != 0)
    np.testing.assert_array_equal(Embedding(5, 3).compute_mask(TOKENS), np.ones((2, 4), bool))


def test_attend_scores_against_every_row():
    layer = Embedding(5, 3)
    variables = layer.init(jax.random.PRNGKey(0), TOKENS)
    query = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)
    scores = layer.apply(variables, query, method="attend")
    np.testing.assert_allclose(scores, query @ np.asarray(variables["params"]["embeddings"]).T, rtol=1e-5)


def test_bad_inputs():
    layer = Embedding(5, 3)
    variables = layer.init(jax.random.PRNGKey(0), TOKENS)
    with pytest.raises(TypeError, match="tokens must be an integer array.*float32"):
        layer.apply(variables, TOKENS.astype(np.float32))
    with pytest.raises(ValueError, match=r"tokens must hold token ids in \[0, 4\].*from 0 to 5"):
        layer.apply(variables, np.array([[0, 5]]))
    with pytest.raises(ValueError, match=r"from -1 to 2"):
        layer.apply(variables, np.array([[-1, 2]]))
    with pytest.raises(ValueError, match="input_dim must be > 0"):
        Embedding(0, 3)
    with pytest.raises(TypeError, match="output_dim must be an integer"):
        Embedding(5, 2.5)
    with pytest.raises(ValueError, match="unknown initializer"):
        Embedding(5, 3, embeddings_init="nope")


def test_out_of_range_is_not_checked_on_tracers_but_shapes_compile():
    layer = Embedding(5, 3)
    variables = layer.init(jax.random.PRNGKey(0), TOKENS)
    out = jax.jit(layer.apply)(variables, jnp.asarray(TOKENS))
    np.testing.assert_array_equal(out, layer.apply(variables, TOKENS))
