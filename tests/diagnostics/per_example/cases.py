"""The models the per-example tests share, each case built once per process (params in float64 under x64)."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl.diagnostics import layer_names, per_example_grad_norms, per_example_grads
from jdl.models import CNN, MLP, SequenceClassifier, TransformerClassifier
from jdl.nn import Embedding


def cross_entropy(model):
    def loss_fn(params, x, y):
        logits = model.apply({"params": params}, x[None])[0]
        return -jax.nn.log_softmax(logits)[y]

    return loss_fn


class SmallCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), padding="SAME")(x))
        x = nn.avg_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.Conv(6, (3, 3), strides=2, padding=((1, 0), (0, 1)))(x))
        return nn.Dense(3)(x.reshape(x.shape[0], -1))


class EmbeddingBag(nn.Module):
    """jdl Embedding and flax Embed of the same tokens (repeats in a sequence share rows) -> mean -> Dense."""

    @nn.compact
    def __call__(self, tokens):
        both = jnp.concatenate([Embedding(7, 5)(tokens), nn.Embed(7, 4)(tokens)], axis=-1)
        return nn.Dense(3)(both.mean(axis=1))


class TinyTransformer(nn.Module):
    """Embed + learned positions + a pre-LN self-attention block (DenseGeneral inside) + MLP + mean-pool head."""

    @nn.compact
    def __call__(self, tokens):
        h = nn.Embed(9, 8)(tokens) + self.param("position", nn.initializers.normal(0.1), (tokens.shape[1], 8))
        h = h + nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=8)(nn.LayerNorm()(h))
        h = h + nn.Dense(8)(nn.gelu(nn.Dense(16)(nn.LayerNorm()(h))))
        return nn.Dense(3)(h.mean(axis=1))


def case(name):
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, 6)
    if name == "mlp":
        return MLP(hidden=(8, 7), outputs=3), rng.randn(6, 5), y
    if name == "cnn":
        return SmallCNN(), rng.randn(6, 8, 8, 2), y
    if name == "cnn_gray":
        return SmallCNN(), rng.randn(6, 8, 8, 1), y
    if name == "embedding":
        return EmbeddingBag(), rng.randint(0, 7, (6, 6)), y
    if name == "transformer":
        return TinyTransformer(), rng.randint(0, 9, (6, 5)), y
    if name == "jdl_transformer":
        model = TransformerClassifier(vocab_size=9, max_length=5, embed_dim=8, num_heads=2, ff_dim=16, num_layers=1, outputs=3)
        return model, rng.randint(0, 9, (6, 5)), y
    if name == "jdl_cnn":
        return CNN(conv=((3, 3), (4, 3)), dense=(5,), outputs=3), rng.randn(6, 12, 12, 2), y
    if name == "bigru":
        return SequenceClassifier(cell="gru", units=5, layers=2, bidirectional=True, outputs=3), rng.randn(6, 7, 3), y
    if name == "token_bilstm":  # Embedding(mask_zero) -> Bidirectional LSTM: reversed and masked scans, padded rows
        tokens = rng.randint(1, 9, (6, 7)) * (np.arange(7)[None, :] < np.array([7, 4, 2, 5, 1, 3])[:, None])
        return SequenceClassifier(cell="lstm", units=3, bidirectional=True, outputs=3, vocab_size=9, embed_dim=2,
                                  mask_zero=True), tokens, y
    cell = {"lstm": "lstm", "gru": "gru", "rnn": "simple_rnn"}[name]
    return SequenceClassifier(cell=cell, units=6, outputs=3), rng.randn(6, 7, 3), y


def init_params(model, seed, x, dtype=None):
    """model's initial params for inputs like x, from one compiled init (not op by op), optionally cast on the host."""
    params = jax.jit(model.init)(jax.random.PRNGKey(seed), jnp.asarray(x))["params"]
    if dtype is None:
        return params
    return jax.tree_util.tree_map(lambda p: jnp.asarray(np.asarray(p, dtype)), params)


@functools.lru_cache(maxsize=None)
def float64_setup(name):
    """(model, float64 params, x, y, loss_fn) of a case, under x64; one loss_fn per case, so tests share compiled code."""
    assert jax.config.jax_enable_x64, "float64_setup needs the x64 fixture"
    model, x, y = case(name)
    params = init_params(model, 1, x[:1], np.float64)
    return model, params, jnp.asarray(x), jnp.asarray(y), cross_entropy(model)


def loop_grads(loss_fn, params, x, y):
    """The reference: jax.grad of one example at a time, in a Python loop (one compiled grad), as NumPy trees."""
    grad = jax.jit(jax.grad(loss_fn))
    return [jax.device_get(grad(params, x[i], y[i])) for i in range(x.shape[0])]


def weighted_cost(model, x, y, w):
    """Σ w_i ℓ_i / Σ w + an L2 penalty (which does not pass through the layer outputs), with an aux output."""

    def cost_fn(params):
        logits = model.apply({"params": params}, x)
        losses = -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1)[:, 0]
        penalty = 1e-2 * sum(jnp.sum(p**2) for p in jax.tree_util.tree_leaves(params))
        return jnp.sum(w * losses) / jnp.sum(w) + penalty, {"logits": logits}

    return cost_fn


def _layer_of(path):
    return "/".join(str(k.key) for k in path[:-1]) or str(path[0].key)


def check_against_the_loop(name):
    """per_example_grads equal the loop; the norms (total and by layer; fast, and vmap for the MLP) equal the loop's."""
    model, params, x, y, loss_fn = float64_setup(name)
    loop = loop_grads(loss_fn, params, x, y)
    stacked = jax.device_get(per_example_grads(loss_fn, params, (x, y)))
    for i, reference in enumerate(loop):
        for got, want in zip(jax.tree_util.tree_leaves(stacked), jax.tree_util.tree_leaves(reference)):
            np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-12)

    want_global = np.sqrt([sum(float(np.sum(g**2)) for g in jax.tree_util.tree_leaves(r)) for r in loop])
    want_layers = {}
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = [str(k.key) for k in path]
        want_layers.setdefault("/".join(keys[:-1]) or keys[0], None)
    for layer in want_layers:
        want_layers[layer] = np.sqrt([
            sum(float(np.sum(g**2)) for p, g in jax.tree_util.tree_flatten_with_path(r)[0] if _layer_of(p) == layer)
            for r in loop
        ])
    assert sorted(want_layers) == sorted(layer_names(params))
    for method in ("vmap", "fast") if name == "mlp" else ("fast",):
        np.testing.assert_allclose(per_example_grad_norms(loss_fn, params, (x, y), method=method), want_global, rtol=1e-5)
        by_layer = per_example_grad_norms(loss_fn, params, (x, y), method=method, by_layer=True)
        assert list(by_layer) == list(want_layers)
        for layer, want in want_layers.items():
            np.testing.assert_allclose(by_layer[layer], want, rtol=1e-5, atol=1e-12, err_msg=f"{method} {layer}")
