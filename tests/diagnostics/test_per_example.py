"""Per-example gradients against a Python loop of jax.grad, and the fast norms against vmap, model by model."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.diagnostics import (
    fast_path_coverage,
    layer_names,
    per_example_grad_norms,
    per_example_grads,
    per_example_moments,
)
from jdl.models import CNN, MLP, SequenceClassifier, TransformerClassifier
from jdl.nn import Embedding


def _cross_entropy(model):
    def loss_fn(params, x, y):
        logits = model.apply({"params": params}, x[None])[0]
        return -jax.nn.log_softmax(logits)[y]

    return loss_fn


class _SmallCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), padding="SAME")(x))
        x = nn.avg_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Conv(6, (3, 3), strides=2, padding=((1, 0), (0, 1)))(x))
        return nn.Dense(3)(x.reshape(x.shape[0], -1))


class _EmbeddingBag(nn.Module):
    """jdl Embedding and flax Embed of the same tokens (repeats in a sequence share rows) -> mean -> Dense."""

    @nn.compact
    def __call__(self, tokens):
        both = jnp.concatenate([Embedding(7, 5)(tokens), nn.Embed(7, 4)(tokens)], axis=-1)
        return nn.Dense(3)(both.mean(axis=1))


class _TinyTransformer(nn.Module):
    """Embed + learned positions + a pre-LN self-attention block (DenseGeneral inside) + MLP + mean-pool head."""

    @nn.compact
    def __call__(self, tokens):
        h = nn.Embed(9, 8)(tokens) + self.param("position", nn.initializers.normal(0.1), (tokens.shape[1], 8))
        h = h + nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=8)(nn.LayerNorm()(h))
        h = h + nn.Dense(8)(nn.gelu(nn.Dense(16)(nn.LayerNorm()(h))))
        return nn.Dense(3)(h.mean(axis=1))


def _case(name):
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, 6)
    if name == "mlp":
        return MLP(hidden=(8, 7), outputs=3), rng.randn(6, 5), y
    if name == "cnn":
        return _SmallCNN(), rng.randn(6, 8, 8, 2), y
    if name == "cnn_gray":
        return _SmallCNN(), rng.randn(6, 8, 8, 1), y
    if name == "embedding":
        return _EmbeddingBag(), rng.randint(0, 7, (6, 6)), y
    if name == "transformer":
        return _TinyTransformer(), rng.randint(0, 9, (6, 5)), y
    if name == "jdl_transformer":
        model = TransformerClassifier(vocab_size=9, max_length=5, embed_dim=8, num_heads=2, ff_dim=16, num_layers=1, outputs=3)
        return model, rng.randint(0, 9, (6, 5)), y
    if name == "jdl_cnn":
        return CNN(conv=((3, 3), (4, 3)), dense=(5,), outputs=3), rng.randn(6, 12, 12, 2), y
    if name == "bigru":
        return SequenceClassifier(cell="gru", units=5, layers=2, bidirectional=True, outputs=3), rng.randn(6, 7, 3), y
    cell = {"lstm": "lstm", "gru": "gru", "rnn": "simple_rnn"}[name]
    return SequenceClassifier(cell=cell, units=6, outputs=3), rng.randn(6, 7, 3), y


def _float64_setup(name):
    model, x, y = _case(name)
    params = model.init(jax.random.PRNGKey(1), jnp.asarray(x[:1]))["params"]
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float64), params)
    return model, params, jnp.asarray(x), jnp.asarray(y)


def _loop_grads(loss_fn, params, x, y):
    """The reference: jax.grad of one example at a time, in a Python loop."""
    grad = jax.jit(jax.grad(loss_fn))
    return [grad(params, x[i], y[i]) for i in range(x.shape[0])]


@pytest.mark.parametrize("name", ["mlp", "cnn", "cnn_gray", "jdl_cnn", "embedding", "transformer", "jdl_transformer",
                                  "lstm", "gru", "rnn", "bigru"])
def test_per_example_grads_and_norms_equal_a_python_loop_of_grad(x64, name):
    model, params, x, y = _float64_setup(name)
    loss_fn = _cross_entropy(model)
    loop = _loop_grads(loss_fn, params, x, y)
    stacked = per_example_grads(loss_fn, params, (x, y))
    for i, reference in enumerate(loop):
        for got, want in zip(jax.tree_util.tree_leaves(stacked), jax.tree_util.tree_leaves(reference)):
            np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-12)

    want_global = np.sqrt([sum(float(jnp.sum(g**2)) for g in jax.tree_util.tree_leaves(r)) for r in loop])
    want_layers = {}
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = [str(k.key) for k in path]
        want_layers.setdefault("/".join(keys[:-1]) or keys[0], None)
    for layer in want_layers:
        want_layers[layer] = np.sqrt([
            sum(float(jnp.sum(g**2)) for p, g in jax.tree_util.tree_flatten_with_path(r)[0]
                if ("/".join(str(k.key) for k in p[:-1]) or str(p[0].key)) == layer)
            for r in loop
        ])
    assert list(want_layers) == layer_names(params)
    for method in ("vmap", "fast") if name == "mlp" else ("fast",):
        np.testing.assert_allclose(per_example_grad_norms(loss_fn, params, (x, y), method=method), want_global, rtol=1e-5)
        by_layer = per_example_grad_norms(loss_fn, params, (x, y), method=method, by_layer=True)
        assert list(by_layer) == list(want_layers)
        for layer, want in want_layers.items():
            np.testing.assert_allclose(by_layer[layer], want, rtol=1e-5, atol=1e-12, err_msg=f"{method} {layer}")


@pytest.mark.parametrize("name", ["mlp", "cnn", "embedding", "transformer", "lstm", "gru"])
def test_sums_of_per_example_gradients_and_of_their_squares(x64, name):
    """Against per_example_grads, itself checked against the loop above."""
    model, params, x, y = _float64_setup(name)
    loss_fn = _cross_entropy(model)
    loop = [jax.tree_util.tree_map(lambda g: g[i], per_example_grads(loss_fn, params, (x, y))) for i in range(len(x))]
    total, squares = per_example_moments(loss_fn, params, (x, y), chunk_size=4)
    want_total = jax.tree_util.tree_map(lambda *g: sum(g), *loop)
    want_squares = jax.tree_util.tree_map(lambda *g: sum(gi**2 for gi in g), *loop)
    for got, want in zip(jax.tree_util.tree_leaves((total, squares)), jax.tree_util.tree_leaves((want_total, want_squares))):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_the_fast_path_covers_dense_conv_embedding_and_layer_norm_and_leaves_the_rest_to_vmap(x64):
    coverage = {}
    for name in ("mlp", "cnn", "embedding", "transformer", "lstm", "bigru"):
        model, params, x, y = _float64_setup(name)
        coverage[name] = fast_path_coverage(_cross_entropy(model), params, (x, y))
    assert coverage["mlp"]["vmap"] == [] and coverage["cnn"]["vmap"] == [] and coverage["embedding"]["vmap"] == []
    assert coverage["transformer"]["vmap"] == ["position"]
    assert "LayerNorm_0" in coverage["transformer"]["fast"]
    assert "MultiHeadDotProductAttention_0/query" in coverage["transformer"]["fast"]
    assert coverage["lstm"] == {"fast": ["head", "recurrent/layer_0/cell/input", "recurrent/layer_0/cell"], "vmap": []}, \
        "the input projection is one Dense before the scan; the recurrent kernel by the recurrent rule"
    assert coverage["bigru"]["vmap"] == ["recurrent/layer_0/backward/cell", "recurrent/layer_1/backward/cell"], \
        "a reversed layer (the backward half) falls back to vmap"
    assert coverage["embedding"]["fast"] == ["Dense_0", "Embed_0", "Embedding_0"]


def test_chunked_per_example_gradients_equal_the_unchunked_ones():
    model, x, y = _case("mlp")
    params = model.init(jax.random.PRNGKey(0), x[:1])["params"]
    loss_fn = _cross_entropy(model)
    whole = per_example_grads(loss_fn, params, (x, y))
    chunked = per_example_grads(loss_fn, params, (x, y), chunk_size=3)
    for a, b in zip(jax.tree_util.tree_leaves(whole), jax.tree_util.tree_leaves(chunked)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(per_example_grad_norms(loss_fn, params, (x, y), chunk_size=4),
                               per_example_grad_norms(loss_fn, params, (x, y), method="vmap"), rtol=1e-5)


def test_bad_arguments_are_named():
    model, x, y = _case("mlp")
    params = model.init(jax.random.PRNGKey(0), x[:1])["params"]
    loss_fn = _cross_entropy(model)
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


def _weighted_cost(model, x, y, w):
    """Σ w_i ℓ_i / Σ w + an L2 penalty (which does not pass through the layer outputs), with an aux output."""

    def cost_fn(params):
        logits = model.apply({"params": params}, x)
        losses = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]
        penalty = 1e-2 * sum(jnp.sum(p**2) for p in jax.tree_util.tree_leaves(params))
        return jnp.sum(w * losses) / jnp.sum(w) + penalty, {"logits": logits}

    return cost_fn


@pytest.mark.parametrize("name", ["mlp", "cnn", "jdl_cnn", "embedding"])
def test_shared_pass_gives_the_batch_gradient_and_exact_per_example_norms(x64, name):
    from jdl.diagnostics import per_example

    model, params, x, y = _float64_setup(name)
    w = jnp.asarray([1.0, 0.0, 2.5, 1.0, 0.5, 3.0])
    loss_fn = _cross_entropy(model)
    cost_fn = _weighted_cost(model, x, y, w)
    plan = per_example._new_plan(loss_fn, params, (x, y), "auto")
    shared = per_example.shared_pass(cost_fn, params, plan, len(x))
    assert shared is not None
    (cost, aux), grads, captures = shared.value_and_grad(cost_fn, params)
    (want_cost, want_aux), want_grads = jax.value_and_grad(cost_fn, has_aux=True)(params)
    assert float(cost) == pytest.approx(float(want_cost), rel=1e-12)
    np.testing.assert_allclose(aux["logits"], want_aux["logits"], rtol=1e-12)
    for got, want in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(want_grads)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    want_norms = np.where(np.asarray(w) > 0, per_example_grad_norms(loss_fn, params, (x, y), method="vmap"), 0.0)
    np.testing.assert_allclose(shared.example_norms(captures, w), want_norms, rtol=1e-9)


class _PositionsByEmbed(nn.Module):
    """Token and position embeddings; the positions' Embed sees (T,), not one row per example."""

    @nn.compact
    def __call__(self, tokens):
        h = nn.Embed(9, 4)(tokens) + nn.Embed(tokens.shape[1], 4)(jnp.arange(tokens.shape[1]))
        return nn.Dense(3)(h.mean(axis=1))


@pytest.mark.parametrize("name", ["transformer", "positions", "lstm"])
def test_no_shared_pass_when_a_parameter_needs_vmap_or_a_layer_does_not_see_one_example(x64, name):
    """The LSTM: the recurrent rule re-runs the scan, which would change the training step in the last bits."""
    from jdl.diagnostics import per_example

    if name == "positions":
        rng = np.random.RandomState(0)
        model, x, y = _PositionsByEmbed(), jnp.asarray(rng.randint(0, 9, (6, 6))), jnp.asarray(rng.randint(0, 3, 6))
        params = model.init(jax.random.PRNGKey(0), x[:1])["params"]
    else:
        model, params, x, y = _float64_setup(name)
    loss_fn = _cross_entropy(model)
    plan = per_example._new_plan(loss_fn, params, (x, y), "auto")
    assert per_example.shared_pass(_weighted_cost(model, x, y, jnp.ones(6)), params, plan, len(x)) is None


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("config", [((3, 2), (2, 1), (1, 2), "SAME"), ((3, 3), (1, 1), (1, 1), "VALID"),
                                    ((2, 3), (2, 2), (2, 1), ((1, 0), (0, 2))), ((3,), (2,), (1,), "SAME")])
def test_conv_patches_equal_xlas_patch_extraction(channels, config):
    from jdl.diagnostics import per_example

    kernel = config[0]
    x = jnp.asarray(np.random.RandomState(0).randn(*((1, 9, 8)[: len(kernel) + 1] + (channels,))), jnp.float32)
    specs = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[len(kernel)]
    want = jax.lax.conv_general_dilated_patches(x, kernel, config[1], config[3], rhs_dilation=config[2],
                                                dimension_numbers=specs)
    want = jnp.moveaxis(want.reshape((-1, channels) + kernel), 1, -1).reshape(-1, channels * int(np.prod(kernel)))
    np.testing.assert_array_equal(per_example._patches(x, config), want)


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
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float64), model.init(jax.random.PRNGKey(0), x[:1])["params"])
    loss_fn = _cross_entropy(model)
    np.testing.assert_allclose(per_example_grad_norms(loss_fn, params, (x, y), method="fast"),
                               per_example_grad_norms(loss_fn, params, (x, y), method="vmap"), rtol=1e-10)
    assert fast_path_coverage(loss_fn, params, (x, y))["vmap"] == ["SimpleRNNCell_0"], "its recurrent kernel by vmap"
