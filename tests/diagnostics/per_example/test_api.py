"""The public functions: gradients and norms against a loop of jax.grad (dense, conv, embedding), coverage, chunks, errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.diagnostics import fast_path_coverage, per_example_grad_norms, per_example_grads
from tests.diagnostics.per_example.cases import case, check_against_the_loop, cross_entropy, float64_setup, init_params


@pytest.mark.parametrize("name", ["mlp", "cnn", "cnn_gray", "jdl_cnn", "embedding"])
def test_per_example_grads_and_norms_equal_a_python_loop_of_grad(x64, name):
    check_against_the_loop(name)


def test_the_fast_path_covers_dense_conv_embedding_and_layer_norm_and_leaves_the_rest_to_vmap(x64):
    coverage = {}
    for name in ("mlp", "cnn", "embedding", "transformer", "lstm", "bigru"):
        model, params, x, y, loss_fn = float64_setup(name)
        coverage[name] = fast_path_coverage(loss_fn, params, (x, y))
    assert coverage["mlp"]["vmap"] == [] and coverage["cnn"]["vmap"] == [] and coverage["embedding"]["vmap"] == []
    assert coverage["transformer"]["vmap"] == ["position"]
    assert "LayerNorm_0" in coverage["transformer"]["fast"]
    assert "MultiHeadDotProductAttention_0/query" in coverage["transformer"]["fast"]
    assert coverage["lstm"] == {"fast": ["recurrent/layer_0/cell", "recurrent/layer_0/cell/input", "head"], "vmap": []}, \
        "the input projection is one Dense before the scan; the recurrent kernel by the recurrent rule"
    assert coverage["bigru"]["vmap"] == [], "a reversed layer (the backward half) is covered by the recurrent rule"
    assert coverage["embedding"]["fast"] == ["Embedding_0", "Embed_0", "Dense_0"], "in call order"


def test_chunked_per_example_gradients_equal_the_unchunked_ones():
    model, x, y = case("mlp")
    params = init_params(model, 0, x[:1])
    loss_fn = cross_entropy(model)
    whole = per_example_grads(loss_fn, params, (x, y))
    chunked = per_example_grads(loss_fn, params, (x, y), chunk_size=3)
    for a, b in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(chunked)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(per_example_grad_norms(loss_fn, params, (x, y), chunk_size=4),
                               per_example_grad_norms(loss_fn, params, (x, y), method="vmap"), rtol=1e-5)


def test_bad_arguments_are_named():
    model, x, y = case("mlp")
    params = init_params(model, 0, x[:1])
    loss_fn = cross_entropy(model)
    with pytest.raises(TypeError, match="loss_fn"):
        per_example_grads("ce", params, (x, y))
    with pytest.raises(TypeError, match="batch must be a tuple"):
        per_example_grads(loss_fn, params, x)
    with pytest.raises(ValueError, match="same number of examples"):
        per_example_grads(loss_fn, params, (x, y[:4]))
    with pytest.raises(ValueError, match="chunk_size"):
        per_example_grads(loss_fn, params, (x, y), chunk_size=0)
    with pytest.raises(ValueError, match="method must be one of"):
        per_example_grad_norms(loss_fn, params, (x, y), method="backpack")
    with pytest.raises(TypeError, match="by_layer"):
        per_example_grad_norms(loss_fn, params, (x, y), by_layer="yes")
    with pytest.raises(ValueError, match="params"):
        per_example_grads(loss_fn, {}, (x, y))


def test_a_subclass_of_recurrent_is_not_mistaken_for_the_plain_layer(x64):
    from jdl.nn.recurrent import Recurrent, SimpleRNNCell

    class Scaled(Recurrent):
        def __call__(self, x, seq_lengths=None, initial_state=None):
            return super().__call__(2.0 * x[:, ::-1], seq_lengths, initial_state)

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = Scaled(SimpleRNNCell(4), return_sequences=True)(x)
            return nn.Dense(3)(h[:, -1] * h[:, 0])

    model = Model()
    rng = np.random.RandomState(0)
    x, y = jnp.asarray(rng.randn(5, 6, 3)), jnp.asarray(rng.randint(0, 3, 5))
    params = init_params(model, 0, x[:1], np.float64)
    loss_fn = cross_entropy(model)
    np.testing.assert_allclose(per_example_grad_norms(loss_fn, params, (x, y), method="fast"),
                               per_example_grad_norms(loss_fn, params, (x, y), method="vmap"), rtol=1e-10)
    assert fast_path_coverage(loss_fn, params, (x, y))["vmap"] == ["SimpleRNNCell_0"], "its recurrent kernel by vmap"
