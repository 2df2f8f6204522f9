"""Attention layers against independent references: NumPy loops, einsums written here, closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn.attention import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
)
from tests.numeric import jax_central_difference, random_variables


def softmax_rows(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=-1, keepdims=True)


def reference_attention(q, k, v, mask):
    """Loop over (batch, query): softmax over the allowed keys of q·k/√d, zeros when none is allowed."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    out = np.zeros(q.shape[:-1] + (v.shape[-1],))
    weights = np.zeros(q.shape[:-1] + (k.shape[-2],))
    for index in np.ndindex(q.shape[:-1]):
        lead = index[:-1]
        allowed = np.asarray(mask[index], bool) if mask is not None else np.ones(k.shape[-2], bool)
        if not allowed.any():
            continue
        scores = np.array([q[index] @ k[lead + (j,)] / math.sqrt(q.shape[-1]) for j in range(k.shape[-2])])
        w = np.zeros(k.shape[-2])
        w[allowed] = softmax_rows(scores[allowed])
        weights[index] = w
        out[index] = w @ v[lead]
    return out, weights


def normal(seed, shape):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("heads", [None, 2])
def test_scaled_dot_product_attention_matches_a_loop(heads):
    lead = (3,) if heads is None else (3, heads)
    q, k, v = normal(0, lead + (4, 5)), normal(1, lead + (6, 5)), normal(2, lead + (6, 3))
    rng = np.random.default_rng(3)
    mask = rng.random((3, 4, 6)) > 0.4
    mask[0, 1] = False  # a query that may attend to nothing
    attend = jax.jit(lambda q, k, v, m: scaled_dot_product_attention(q, k, v, mask=m, return_weights=True))
    out, weights = attend(q, k, v, mask)
    full_mask = np.broadcast_to(mask[:, None] if heads else mask, lead + (4, 6))
    ref_out, ref_weights = reference_attention(q, k, v, full_mask)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-6)
    assert not np.any(np.isnan(np.asarray(out)))
    np.testing.assert_array_equal(np.asarray(out)[0, ..., 1, :] if heads is None else np.asarray(out)[0, :, 1], 0.0)
    unmasked = jax.jit(scaled_dot_product_attention)(q, k, v)
    np.testing.assert_allclose(unmasked, reference_attention(q, k, v, None)[0], atol=1e-5)


def test_fully_masked_row_has_finite_gradients_matching_finite_differences(x64):
    q, k, v = (np.random.default_rng(s).normal(size=(1, 3, 2)) for s in (0, 1, 2))
    mask = np.array([[[True, False, True], [False, False, False], [True, True, False]]])

    @jax.jit
    def loss(flat_q):
        out = scaled_dot_product_attention(jnp.asarray(flat_q).reshape(q.shape), k, v, mask=mask)
        return jnp.sum(jnp.sin(out))

    grad = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(q.ravel())))
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, jax_central_difference(loss, q.ravel()), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(grad.reshape(q.shape)[0, 1], 0.0)


def test_causal_and_padding_masks():
    np.testing.assert_array_equal(causal_mask(4), np.tril(np.ones((4, 4), bool)))
    tokens = np.array([[5, 3, 0, 0], [1, 0, 2, 7]])
    np.testing.assert_array_equal(padding_mask(tokens), (tokens != 0)[:, None, :])
    np.testing.assert_array_equal(padding_mask(tokens, pad_id=7)[1, 0], [True, True, True, False])
    expected = np.array([[[True, True, False, False, False]], [[True, True, True, True, False]]])
    np.testing.assert_array_equal(padding_mask(np.array([2, 4]), max_length=5), expected)
    assert padding_mask(np.array([2, 4])).shape == (2, 1, 4)


def mha_reference(params, query, key, value, heads, key_dim, value_dim, mask=None):
    """The textbook multi-head attention with the layer's own parameters, as einsums in float64."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)

    def project(x, name, width):
        y = np.einsum("btd,de->bte", x, p[name]["kernel"]) + p[name]["bias"]
        return y.reshape(x.shape[0], x.shape[1], heads, width)

    q, k, v = project(query, "query", key_dim), project(key, "key", key_dim), project(value, "value", value_dim)
    logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(key_dim)
    if mask is not None:
        logits = np.where(mask, logits, -np.inf)
    weights = softmax_rows(logits)
    heads_out = np.einsum("bhqk,bkhd->bqhd", weights, v).reshape(query.shape[0], query.shape[1], heads * value_dim)
    return np.einsum("bqe,eo->bqo", heads_out, p["output"]["kernel"]) + p["output"]["bias"], weights


@pytest.fixture(scope="module")
def cross_attention():
    layer = MultiHeadAttention(num_heads=3, key_dim=4, value_dim=2, output_dim=5)
    query, key, value = normal(0, (2, 3, 6)), normal(1, (2, 5, 7)), normal(2, (2, 5, 8))
    variables = random_variables(layer, query, value, key)  # the references hold for any weights
    return layer, variables, query, key, value


def test_multi_head_attention_matches_an_einsum_reference(cross_attention):
    layer, variables, query, key, value = cross_attention
    params = variables["params"]
    assert params["query"]["kernel"].shape == (6, 12) and params["value"]["kernel"].shape == (8, 6)
    assert params["output"]["kernel"].shape == (6, 5)
    mask = np.random.default_rng(4).random((2, 3, 5)) > 0.3
    mask[:, :, 0] = True
    apply = jax.jit(lambda v, m: layer.apply(v, query, value, key, mask=m, return_attention_scores=True,
                                             mutable=["intermediates"]))
    (out, weights), sown = apply(variables, mask)
    ref_out, ref_weights = mha_reference(params, query, key, value, 3, 4, 2, mask[:, None])
    assert out.shape == (2, 3, 5) and weights.shape == (2, 3, 3, 5)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-5)
    np.testing.assert_array_equal(sown["intermediates"]["attention"][0], weights)


def test_multi_head_self_attention_defaults_key_to_value_and_output_to_query_width():
    layer = MultiHeadAttention(num_heads=2, key_dim=3, use_bias=False)
    x = normal(5, (2, 4, 6))
    variables = random_variables(layer, x, x, seed=1)
    assert set(variables["params"]["query"]) == {"kernel"}
    zero_bias = {name: {"kernel": w["kernel"], "bias": np.zeros(w["kernel"].shape[1])}
                 for name, w in variables["params"].items()}
    np.testing.assert_allclose(jax.jit(layer.apply)(variables, x, x), mha_reference(zero_bias, x, x, x, 2, 3, 3)[0], atol=1e-5)


def test_attention_dropout_only_in_training(cross_attention):
    _, variables, query, key, value = cross_attention
    layer = MultiHeadAttention(num_heads=3, key_dim=4, value_dim=2, output_dim=5, dropout=0.5)
    apply = jax.jit(lambda train, rng: layer.apply(variables, query, value, key, train=train, rngs={"dropout": rng}),
                    static_argnums=0)
    eval_out = apply(False, jax.random.PRNGKey(0))
    np.testing.assert_allclose(eval_out, mha_reference(variables["params"], query, key, value, 3, 4, 2)[0], atol=1e-5)
    train = [apply(True, jax.random.PRNGKey(s)) for s in (0, 0, 1)]
    np.testing.assert_array_equal(train[0], train[1])
    assert not np.allclose(train[0], eval_out) and not np.allclose(train[0], train[2])


def test_sinusoidal_positional_encoding_golden_values():
    pe = np.asarray(sinusoidal_positional_encoding(50, 6))
    for pos in (0, 1, 7, 49):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert pe[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    np.testing.assert_allclose(pe[1, :2], [0.8414709848, 0.5403023059], atol=1e-7)  # sin 1, cos 1
    odd = np.asarray(sinusoidal_positional_encoding(3, 5))
    np.testing.assert_allclose(odd[2, 4], math.sin(2 / 10000 ** (4 / 5)), atol=1e-7)
    x = normal(7, (2, 4, 6))
    np.testing.assert_allclose(SinusoidalPositionalEncoding().apply({}, x), x + pe[:4], atol=1e-6)


def test_learned_positional_embedding_adds_its_table_and_checks_length():
    layer = LearnedPositionalEmbedding(max_length=5)
    x = normal(8, (2, 3, 4))
    variables = layer.init(jax.random.PRNGKey(0), x)
    table = np.asarray(variables["params"]["embedding"])
    assert table.shape == (5, 4)
    np.testing.assert_allclose(layer.apply(variables, x), x + table[:3], atol=1e-7)
    with pytest.raises(ValueError, match="x has 6 time steps, more than max_length=5"):
        layer.apply(variables, normal(0, (1, 6, 4)))


def layer_norm(x, p, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def feed_forward(x, p):
    h = np.maximum(x @ p["ff1"]["kernel"] + p["ff1"]["bias"], 0.0)
    return h @ p["ff2"]["kernel"] + p["ff2"]["bias"]


@pytest.fixture(scope="module")
def encoder_blocks():
    x = normal(9, (2, 4, 6))
    pre = TransformerEncoderBlock(num_heads=2, key_dim=3, ff_dim=8)
    post = TransformerEncoderBlock(num_heads=2, key_dim=3, ff_dim=8, norm_first=False)
    variables = jax.jit(pre.init)(jax.random.PRNGKey(2), x)
    rng = np.random.default_rng(12)
    params = jax.tree_util.tree_map(lambda a: np.asarray(a) + 0.1 * rng.normal(size=a.shape).astype(np.float32),
                                    variables["params"])  # non-trivial LayerNorm scales and biases
    return jax.jit(pre.apply), jax.jit(post.apply), {"params": params}, x


def test_pre_and_post_layer_norm_blocks_match_their_formulas_and_differ(encoder_blocks):
    pre, post, variables, x = encoder_blocks
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), variables["params"])
    mask = padding_mask(np.array([3, 4]), max_length=4)

    def mha(h):
        return mha_reference(p["attention"], h, h, h, 2, 3, 3, np.asarray(mask)[:, None])[0]

    h = x + mha(layer_norm(x, p["norm1"]))
    expected_pre = h + feed_forward(layer_norm(h, p["norm2"]), p)
    h = layer_norm(x + mha(x), p["norm1"])
    expected_post = layer_norm(h + feed_forward(h, p), p["norm2"])
    got_pre, got_post = pre(variables, x, mask), post(variables, x, mask)
    np.testing.assert_allclose(got_pre, expected_pre, atol=1e-5)
    np.testing.assert_allclose(got_post, expected_post, atol=1e-5)
    assert np.abs(np.asarray(got_pre) - np.asarray(got_post)).max() > 0.1
    np.testing.assert_allclose(np.asarray(got_post).mean(-1), np.broadcast_to(p["norm2"]["bias"].mean(), (2, 4)),
                               atol=0.5)  # post-LN ends normalised: scale/bias set the per-position level


def test_padding_mask_makes_outputs_at_real_positions_independent_of_padded_positions(encoder_blocks):
    pre, _, variables, x = encoder_blocks
    mask = padding_mask(np.array([2, 3]), max_length=4)
    changed = x.copy()
    changed[0, 2:] += 5.0
    changed[1, 3:] -= 3.0
    a, b = pre(variables, x, mask), pre(variables, changed, mask)
    np.testing.assert_allclose(np.asarray(a)[0, :2], np.asarray(b)[0, :2], atol=1e-5)
    np.testing.assert_allclose(np.asarray(a)[1, :3], np.asarray(b)[1, :3], atol=1e-5)
    assert not np.allclose(np.asarray(pre(variables, changed, np.ones((2, 1, 4), bool)))[0, :2], np.asarray(a)[0, :2], atol=1e-3)


def test_decoder_block_is_causal_and_attends_to_the_encoder():
    block = TransformerDecoderBlock(num_heads=2, key_dim=3, ff_dim=8, dropout=0.1)
    x, memory = normal(10, (2, 5, 6)), normal(11, (2, 3, 4))
    variables = random_variables(block, x, memory, seed=3)
    assert {"self_attention", "cross_attention", "norm3"} <= set(variables["params"])
    apply = jax.jit(lambda v, x, memory, memory_mask: block.apply(v, x, memory, encoder_mask=memory_mask,
                                                                  mutable=["intermediates"]))
    no_mask = np.ones((2, 1, 3), bool)
    base, sown = apply(variables, x, memory, no_mask)
    base = np.asarray(base)
    for t in range(4):
        changed = x.copy()
        changed[:, t + 1:] = normal(20 + t, changed[:, t + 1:].shape)
        out = np.asarray(apply(variables, changed, memory, no_mask)[0])
        np.testing.assert_allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-5)
        assert not np.allclose(out[:, t + 1:], base[:, t + 1:], atol=1e-3)
    assert not np.allclose(apply(variables, x, memory + 1.0, no_mask)[0], base, atol=1e-3)
    causal = np.asarray(sown["intermediates"]["self_attention"]["attention"][0])
    assert np.all(causal[..., np.triu_indices(5, 1)[0], np.triu_indices(5, 1)[1]] == 0)
    memory_mask = padding_mask(np.array([1, 3]))
    _, sown = apply(variables, x, memory, memory_mask)
    cross = np.asarray(sown["intermediates"]["cross_attention"]["attention"][0])
    np.testing.assert_array_equal(cross[0, :, :, 1:], 0.0)
    np.testing.assert_allclose(cross.sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: MultiHeadAttention(num_heads=0, key_dim=4), ValueError, "num_heads must be > 0, got 0"),
        (lambda: MultiHeadAttention(num_heads=2, key_dim=2.5), TypeError, "key_dim must be an integer"),
        (lambda: MultiHeadAttention(num_heads=2, key_dim=4, dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
        (lambda: TransformerEncoderBlock(num_heads=2, key_dim=4, ff_dim=-1), ValueError, "ff_dim must be > 0"),
        (lambda: TransformerEncoderBlock(2, 4, 8, activation="nope"), ValueError, "unknown activation"),
        (lambda: causal_mask(0), ValueError, "length must be > 0"),
        (lambda: sinusoidal_positional_encoding(4, 0), ValueError, "dim must be > 0"),
    ],
)
def test_bad_configuration_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_input_errors(cross_attention):
    layer, variables, query, key, value = cross_attention
    expected = r"mask must broadcast to \(2, 3, 3, 5\) or \(2, 3, 5\) without the heads axis.*got shape \(2, 3, 4\)"
    with pytest.raises(ValueError, match=expected):
        layer.apply(variables, query, value, key, mask=np.ones((2, 3, 4), bool))
    with pytest.raises(TypeError, match="mask must hold booleans"):
        layer.apply(variables, query, value, key, mask=np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match="query must have shape \\(batch, time, features\\), got shape \\(3, 6\\)"):
        layer.apply(variables, query[0], value, key)
    with pytest.raises(ValueError, match="key and value must have the same length Tk, got 4 and 5"):
        layer.apply(variables, query, value, key[:, :4])
    with pytest.raises(ValueError, match="same batch size"):
        layer.apply(variables, query[:1], value, key)
    q = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="k must have q's feature size d=4"):
        scaled_dot_product_attention(q, np.ones((2, 5, 3)), np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match="v must have k's sequence length Tk=5"):
        scaled_dot_product_attention(q, np.ones((2, 5, 4)), np.ones((2, 6, 3)))
    with pytest.raises(ValueError, match="k must have 3 dimensions"):
        scaled_dot_product_attention(q, np.ones((2, 1, 5, 4)), np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match="lengths must lie in \\[0, 3\\]"):
        padding_mask(np.array([1, 4]), max_length=3)
    with pytest.raises(TypeError, match="x must hold integer tokens"):
        padding_mask(np.ones((2, 3)))
    block = TransformerDecoderBlock(num_heads=2, key_dim=3, ff_dim=8)
    with pytest.raises(ValueError, match="encoder_mask was given without encoder_outputs"):
        block.init(jax.random.PRNGKey(0), np.ones((1, 3, 6)), encoder_mask=np.ones((1, 1, 3), bool))
