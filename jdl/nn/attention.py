"""Attention and Transformer blocks (Flax Linen): scaled dot-product and multi-head attention,
padding and causal masks, sinusoidal and learned positional encodings, encoder and decoder blocks.

Masks are booleans, True where a query may attend to a key. A mask of shape (Tq, Tk) or
(batch, Tq, Tk) (any axis may be 1) is broadcast over the heads; a 4-D mask is
(batch, heads, Tq, Tk). A query row with no allowed key attends to nothing and gives zeros.

Every `MultiHeadAttention` sows its weights (batch, heads, Tq, Tk) into the "intermediates"
collection under the name "attention": `model.apply(variables, x, mutable=["intermediates"])`
returns them alongside the outputs (nothing is stored when the collection is not mutable).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl.nn import activations, initializers


# -- masks ----------------------------------------------------------------------------------------


def causal_mask(length: int) -> jax.Array:
    """(length, length) booleans, True on and below the diagonal: position t sees positions ≤ t."""
    _checks.check_number(length, "length", integer=True, positive=True)
    return jnp.tril(jnp.ones((length, length), dtype=bool))


def padding_mask(x: Any, pad_id: int = 0, *, max_length: int | None = None) -> jax.Array:
    """Key mask (batch, 1, T) True at real tokens, from tokens (batch, T) or lengths (batch,).

    tokens: position t is real where tokens[:, t] != pad_id. lengths: positions t < lengths[b]
    are real, T = max_length (default: the largest length, which needs concrete lengths).
    The singleton axis broadcasts the mask over the queries.
    """
    x = _checks.as_array(x, "x")
    if np.dtype(x.dtype).kind not in "biu":
        raise TypeError(f"x must hold integer tokens (batch, T) or lengths (batch,), got {_checks.describe(x)}")
    _checks.check_ndim(x, "x (tokens (batch, T) or lengths (batch,))", (1, 2))
    if x.ndim == 2:
        _checks.check_number(pad_id, "pad_id", integer=True)
        if max_length is not None:
            raise ValueError("max_length is only used with lengths (batch,); tokens (batch, T) set T themselves")
        return (x != pad_id)[:, None, :]
    if max_length is None:
        if not _checks.is_concrete(x):
            raise ValueError("max_length must be given when lengths are traced (inside jit)")
        max_length = int(np.max(np.asarray(x))) if x.size else 0
        if max_length < 1:
            raise ValueError(f"lengths must include one of at least 1 when max_length is not given, got {x}")
    _checks.check_number(max_length, "max_length", integer=True, positive=True)
    if _checks.is_concrete(x) and x.size:
        values = np.asarray(x)
        if values.min() < 0 or values.max() > max_length:
            raise ValueError(
                f"lengths must lie in [0, {max_length}] (max_length), got values from {values.min()} to {values.max()}"
            )
    return (jnp.arange(max_length)[None, :] < x[:, None])[:, None, :]


def _broadcast_mask(mask: Any, target: tuple[int, ...], name: str = "mask") -> jax.Array:
    """A boolean mask broadcast to `target` (batch, [heads,] Tq, Tk); 2-D and 3-D masks skip the heads axis."""
    if isinstance(mask, (bool, int, float)):
        raise TypeError(f"{name} must be a boolean array, got {_checks.describe(mask)}")
    mask = _checks.as_array(mask, name)
    kind = np.dtype(mask.dtype).kind
    if kind not in "biu":
        raise TypeError(
            f"{name} must hold booleans (True = attend) or 0/1 integers, got {_checks.describe(mask)}; "
            "additive float masks are not accepted"
        )
    mask = mask.astype(bool) if kind != "b" else mask
    four = len(target) == 4
    allowed = (2, 3, 4) if four else (2, 3)
    if mask.ndim not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} dimensions ((Tq, Tk), (batch, Tq, Tk)"
            f"{', (batch, heads, Tq, Tk)' if four else ''}), got shape {tuple(mask.shape)}"
        )
    given = tuple(mask.shape)
    if four and mask.ndim == 3:
        mask = mask[:, None]
    wanted = target[-mask.ndim:]
    if any(m not in (1, t) for m, t in zip(mask.shape, wanted)):
        names = ("batch", "heads", "Tq", "Tk")[-len(wanted):] if four else ("batch", "Tq", "Tk")[-len(wanted):]
        shown = ", ".join(f"{n}={t}" for n, t in zip(names, wanted))
        without_heads = f" or {wanted[:1] + wanted[2:]} without the heads axis" if len(given) == 3 and four else ""
        raise ValueError(
            f"{name} must broadcast to {wanted}{without_heads} ({shown}; each axis that size or 1), got shape {given}"
        )
    return jnp.broadcast_to(mask, target)


# -- scaled dot-product attention ---------------------------------------------------------------


def _attention_weights(q: jax.Array, k: jax.Array, mask: jax.Array | None) -> jax.Array:
    """softmax(q kᵀ/√d + mask) over the keys; rows without an allowed key are zeros."""
    logits = jnp.einsum("...qd,...kd->...qk", q, k) / jnp.sqrt(jnp.asarray(q.shape[-1], q.dtype))
    if mask is None:
        return jax.nn.softmax(logits, axis=-1)
    logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
    return jnp.where(mask, jax.nn.softmax(logits, axis=-1), 0.0)


def scaled_dot_product_attention(q: Any, k: Any, v: Any, mask: Any = None, return_weights: bool = False):
    """Attention(q, k, v) = softmax(q kᵀ/√d + mask) v, the mask adding -∞ where it is False.

    q (batch, [heads,] Tq, d), k (batch, [heads,] Tk, d), v (batch, [heads,] Tk, dv) ->
    (batch, [heads,] Tq, dv), and the weights (batch, [heads,] Tq, Tk) when return_weights.
    mask: booleans (Tq, Tk), (batch, Tq, Tk) or, with heads, (batch, heads, Tq, Tk); any axis 1.
    """
    q = _checks.as_array(q, "q", dtype_kind="float")
    k = _checks.as_array(k, "k", dtype_kind="float")
    v = _checks.as_array(v, "v", dtype_kind="float")
    _checks.check_ndim(q, "q (batch, [heads,] Tq, d)", (3, 4))
    for name, a in (("k", k), ("v", v)):
        if a.ndim != q.ndim:
            raise ValueError(f"{name} must have {q.ndim} dimensions like q {tuple(q.shape)}, got shape {tuple(a.shape)}")
        if a.shape[:-2] != q.shape[:-2]:
            raise ValueError(
                f"{name} must have q's leading (batch{', heads' if q.ndim == 4 else ''}) axes "
                f"{tuple(q.shape[:-2])}, got shape {tuple(a.shape)}"
            )
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k must have q's feature size d={q.shape[-1]} in its last axis, got shape {tuple(k.shape)}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"v must have k's sequence length Tk={k.shape[-2]}, got shape {tuple(v.shape)}")
    if not isinstance(return_weights, bool):
        raise TypeError(f"return_weights must be a bool, got {_checks.describe(return_weights)}")
    dtype = jnp.result_type(q, k, v)
    q, k, v = q.astype(dtype), k.astype(dtype), v.astype(dtype)
    if mask is not None:
        mask = _broadcast_mask(mask, q.shape[:-1] + (k.shape[-2],))
    weights = _attention_weights(q, k, mask)
    out = jnp.einsum("...qk,...kd->...qd", weights, v)
    return (out, weights) if return_weights else out


# -- multi-head attention -----------------------------------------------------------------------


def _check_positive_int(value: Any, name: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    _checks.check_number(value, name, integer=True, positive=True)


def _check_rate(value: Any, name: str) -> None:
    _checks.check_number(value, name, nonnegative=True)
    if not value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def _check_sequence(x: Any, name: str) -> jax.Array:
    x = _checks.as_array(x, name, dtype_kind="float")
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape (batch, time, features), got shape {tuple(x.shape)}")
    return x


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Keras spelling): concat_h(Attention(Q W_h^Q, K W_h^K, V W_h^V)) W^O.

    query (batch, Tq, Dq), value (batch, Tk, Dv), key (batch, Tk, Dk; default value) ->
    (batch, Tq, output_dim or Dq); with return_attention_scores also the weights
    (batch, num_heads, Tq, Tk) before dropout. Each head projects to key_dim (queries, keys)
    and value_dim (default key_dim); dropout is applied to the weights during training.
    Parameters: Dense "query" (Dq, H·key_dim), "key", "value", "output" (H·value_dim, out);
    head h uses columns h·key_dim … (h+1)·key_dim - 1.
    """

    num_heads: int
    key_dim: int
    value_dim: int | None = None
    output_dim: int | None = None
    dropout: float = 0.0
    use_bias: bool = True
    kernel_init: str | Callable[..., jax.Array] = "xavier_uniform"

    def __post_init__(self) -> None:
        _check_positive_int(self.num_heads, "num_heads")
        _check_positive_int(self.key_dim, "key_dim")
        _check_positive_int(self.value_dim, "value_dim", optional=True)
        _check_positive_int(self.output_dim, "output_dim", optional=True)
        _check_rate(self.dropout, "dropout")
        if not isinstance(self.use_bias, bool):
            raise TypeError(f"use_bias must be a bool, got {_checks.describe(self.use_bias)}")
        initializers.get(self.kernel_init)
        super().__post_init__()

    @nn.compact
    def __call__(self, query: Any, value: Any, key: Any = None, mask: Any = None,
                 return_attention_scores: bool = False, train: bool = False):
        query = _check_sequence(query, "query")
        value = _check_sequence(value, "value")
        key = value if key is None else _check_sequence(key, "key")
        if value.shape[0] != query.shape[0] or key.shape[0] != query.shape[0]:
            raise ValueError(
                f"query, key and value must have the same batch size, got {query.shape[0]}, {key.shape[0]} and {value.shape[0]}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"key and value must have the same length Tk, got {key.shape[1]} and {value.shape[1]}")
        if not isinstance(return_attention_scores, bool):
            raise TypeError(f"return_attention_scores must be a bool, got {_checks.describe(return_attention_scores)}")
        batch, tq, tk, heads = query.shape[0], query.shape[1], key.shape[1], self.num_heads
        if mask is not None:
            mask = _broadcast_mask(mask, (batch, heads, tq, tk))
        value_dim = self.value_dim or self.key_dim
        init = initializers.get(self.kernel_init)

        def project(x, width, name):
            y = nn.Dense(heads * width, use_bias=self.use_bias, kernel_init=init, name=name)(x)
            return y.reshape(x.shape[0], x.shape[1], heads, width).transpose(0, 2, 1, 3)

        q = project(query, self.key_dim, "query")
        k = project(key, self.key_dim, "key")
        v = project(value, value_dim, "value")
        weights = _attention_weights(q, k, mask)
        self.sow("intermediates", "attention", weights)
        dropped = nn.Dropout(self.dropout, deterministic=not train)(weights) if self.dropout else weights
        heads_out = jnp.einsum("bhqk,bhkd->bqhd", dropped, v).reshape(batch, tq, heads * value_dim)
        out = nn.Dense(self.output_dim or query.shape[-1], use_bias=self.use_bias, kernel_init=init,
                       name="output")(heads_out)
        return (out, weights) if return_attention_scores else out


# -- positional encodings -----------------------------------------------------------------------


def sinusoidal_positional_encoding(length: int, dim: int, base: float = 10000.0) -> jax.Array:
    """PE (length, dim): PE[pos, 2i] = sin(pos / base^(2i/dim)), PE[pos, 2i+1] = cos(pos / base^(2i/dim))."""
    _checks.check_number(length, "length", integer=True, positive=True)
    _checks.check_number(dim, "dim", integer=True, positive=True)
    _checks.check_number(base, "base", positive=True)
    pos = np.arange(length, dtype=np.float64)[:, None]
    even = np.arange(0, dim, 2, dtype=np.float64)
    angle = pos / np.power(float(base), even / dim)[None, :]
    pe = np.zeros((length, dim), np.float64)
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : dim // 2])
    return jnp.asarray(pe, dtype=jnp.result_type(float))


class SinusoidalPositionalEncoding(nn.Module):
    """x + PE[:T] with Vaswani et al.'s fixed sinusoids (see `sinusoidal_positional_encoding`).

    x (batch, T, d) -> (batch, T, d); no parameters; any T up to max_length (None: unbounded).
    """

    max_length: int | None = None
    base: float = 10000.0

    def __post_init__(self) -> None:
        _check_positive_int(self.max_length, "max_length", optional=True)
        _checks.check_number(self.base, "base", positive=True)
        super().__post_init__()

    def __call__(self, x: Any) -> jax.Array:
        x = _check_sequence(x, "x")
        if self.max_length is not None and x.shape[1] > self.max_length:
            raise ValueError(f"x has {x.shape[1]} time steps, more than max_length={self.max_length}")
        return x + sinusoidal_positional_encoding(x.shape[1], x.shape[2], self.base).astype(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """x + P[:T] with a learned table P (max_length, d), initialised N(0, init_stddev²).

    x (batch, T, d) -> (batch, T, d); T must not exceed max_length.
    """

    max_length: int
    init_stddev: float = 0.02

    def __post_init__(self) -> None:
        _check_positive_int(self.max_length, "max_length")
        _checks.check_number(self.init_stddev, "init_stddev", nonnegative=True)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Any) -> jax.Array:
        x = _check_sequence(x, "x")
        if x.shape[1] > self.max_length:
            raise ValueError(f"x has {x.shape[1]} time steps, more than max_length={self.max_length}")
        table = self.param("embedding", initializers.random_normal(self.init_stddev), (self.max_length, x.shape[2]),
                           x.dtype)
        return x + table[: x.shape[1]]


# -- Transformer blocks -------------------------------------------------------------------------


class _BlockOptions(nn.Module):
    """Fields and checks shared by the encoder and decoder blocks."""

    num_heads: int
    key_dim: int
    ff_dim: int
    dropout: float = 0.0
    norm_first: bool = True
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    epsilon: float = 1e-5
    kernel_init: str | Callable[..., jax.Array] = "xavier_uniform"

    def __post_init__(self) -> None:
        _check_positive_int(self.num_heads, "num_heads")
        _check_positive_int(self.key_dim, "key_dim")
        _check_positive_int(self.ff_dim, "ff_dim")
        _check_rate(self.dropout, "dropout")
        if not isinstance(self.norm_first, bool):
            raise TypeError(f"norm_first must be a bool, got {_checks.describe(self.norm_first)}")
        activations.get(self.activation)
        _checks.check_number(self.epsilon, "epsilon", positive=True)
        initializers.get(self.kernel_init)
        super().__post_init__()

    def _attention(self, name: str) -> MultiHeadAttention:
        return MultiHeadAttention(self.num_heads, self.key_dim, dropout=self.dropout, kernel_init=self.kernel_init,
                                  name=name)

    def _sublayer(self, x, norm_name, train, fn):
        """Residual sub-layer: pre-LN x + Drop(fn(LN(x))), post-LN LN(x + Drop(fn(x)))."""
        norm = nn.LayerNorm(epsilon=self.epsilon, name=norm_name)
        drop = nn.Dropout(self.dropout, deterministic=not train)
        if self.norm_first:
            return x + drop(fn(norm(x)))
        return norm(x + drop(fn(x)))

    def _feed_forward(self, x):
        init = initializers.get(self.kernel_init)
        h = activations.get(self.activation)(nn.Dense(self.ff_dim, kernel_init=init, name="ff1")(x))
        return nn.Dense(x.shape[-1], kernel_init=init, name="ff2")(h)


class TransformerEncoderBlock(_BlockOptions):
    """Encoder block: self-attention then a position-wise feed-forward net, each residual with LayerNorm.

    pre-LN (norm_first=True): x ← x + MHA(LN₁(x)); x ← x + FF(LN₂(x)).
    post-LN (Vaswani): x ← LN₁(x + MHA(x)); x ← LN₂(x + FF(x)). FF(x) = act(x W₁ + b₁) W₂ + b₂.
    x (batch, T, d) -> (batch, T, d); mask as in `MultiHeadAttention` (e.g. `padding_mask`).
    Dropout (rate `dropout`) on the attention weights and on each sub-layer's output.
    """

    @nn.compact
    def __call__(self, x: Any, mask: Any = None, train: bool = False) -> jax.Array:
        x = _check_sequence(x, "x")
        attention = self._attention("attention")
        x = self._sublayer(x, "norm1", train, lambda h: attention(h, h, mask=mask, train=train))
        return self._sublayer(x, "norm2", train, self._feed_forward)


class TransformerDecoderBlock(_BlockOptions):
    """Decoder block: causal self-attention, optional cross-attention to the encoder, feed-forward.

    Each sub-layer is residual with LayerNorm, pre-LN or post-LN as in `TransformerEncoderBlock`:
    x ← x + SelfMHA(LN₁(x), causal ∧ mask); [x ← x + CrossMHA(LN₂(x), enc, encoder_mask)];
    x ← x + FF(LN₃(x)). x (batch, T, d), encoder_outputs (batch, S, d_enc) -> (batch, T, d).
    Position t sees only positions ≤ t. mask: extra self-attention mask (e.g. padding);
    encoder_mask: which encoder positions may be attended ((batch, 1, S) from `padding_mask`).
    The cross-attention parameters exist when the block is initialised with encoder_outputs.
    """

    @nn.compact
    def __call__(self, x: Any, encoder_outputs: Any = None, mask: Any = None, encoder_mask: Any = None,
                 train: bool = False) -> jax.Array:
        x = _check_sequence(x, "x")
        if encoder_mask is not None and encoder_outputs is None:
            raise ValueError("encoder_mask was given without encoder_outputs")
        batch, length = x.shape[0], x.shape[1]
        if encoder_outputs is not None:
            encoder_outputs = _check_sequence(encoder_outputs, "encoder_outputs")
            if encoder_outputs.shape[0] != batch:
                raise ValueError(
                    f"encoder_outputs must have x's batch size {batch}, got shape {tuple(encoder_outputs.shape)}"
                )
            if encoder_mask is not None:
                encoder_mask = _broadcast_mask(encoder_mask, (batch, self.num_heads, length, encoder_outputs.shape[1]),
                                               "encoder_mask")
        self_mask = causal_mask(length)[None, None]
        if mask is not None:
            self_mask = self_mask & _broadcast_mask(mask, (batch, self.num_heads, length, length))
        attention = self._attention("self_attention")
        x = self._sublayer(x, "norm1", train, lambda h: attention(h, h, mask=self_mask, train=train))
        if encoder_outputs is not None:
            cross = self._attention("cross_attention")
            x = self._sublayer(x, "norm2", train,
                               lambda h: cross(h, encoder_outputs, mask=encoder_mask, train=train))
        return self._sublayer(x, "norm3", train, self._feed_forward)


def heads_from_dim(embed_dim: int, num_heads: int) -> int:
    """key_dim = embed_dim / num_heads; ValueError unless num_heads divides embed_dim."""
    _check_positive_int(embed_dim, "embed_dim")
    _check_positive_int(num_heads, "num_heads")
    if embed_dim % num_heads:
        raise ValueError(f"embed_dim must be divisible by num_heads ({num_heads}), got embed_dim={embed_dim}")
    return embed_dim // num_heads


__all__ = [
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "SinusoidalPositionalEncoding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "causal_mask",
    "heads_from_dim",
    "padding_mask",
    "scaled_dot_product_attention",
    "sinusoidal_positional_encoding",
]
