"""Transformer models: a small BERT-style encoder classifier and a decoder-only causal language model.

Both take integer tokens (batch, T) with T ≤ max_length and output logits. Their attention
weights are sown into the "intermediates" collection; `attention_maps(model, params, tokens)`
returns them per layer, (batch, heads, Tq, Tk) each.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl.nn import activations, initializers
from jdl.nn.attention import (
    LearnedPositionalEmbedding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    heads_from_dim,
)


def _check_tokens(tokens: Any, vocab_size: int, max_length: int, name: str = "tokens") -> jax.Array:
    """Integer tokens (batch, T), 1 ≤ T ≤ max_length, values in [0, vocab_size) when concrete."""
    if isinstance(tokens, (str, bytes)) or tokens is None:
        raise TypeError(f"{name} must be an integer array (batch, T), got {_checks.describe(tokens)}")
    tokens = _checks.as_array(tokens, name, dtype_kind="int")
    if np.dtype(tokens.dtype).kind not in "biu":
        raise TypeError(f"{name} must hold integer token ids, got {_checks.describe(tokens)}")
    if tokens.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, T), got shape {tuple(tokens.shape)}")
    if not 1 <= tokens.shape[1] <= max_length:
        raise ValueError(
            f"{name} must have between 1 and max_length={max_length} time steps, got shape {tuple(tokens.shape)}"
        )
    _checks.check_int_range(tokens, name, vocab_size)
    return tokens.astype(jnp.int32)


class _TransformerOptions(nn.Module):
    """Fields and checks shared by the Transformer models."""

    vocab_size: int
    max_length: int
    embed_dim: int = 64
    num_heads: int = 4
    ff_dim: int = 128
    num_layers: int = 2
    dropout: float = 0.0
    norm_first: bool = True
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    kernel_init: str | Callable[..., jax.Array] = "xavier_uniform"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_length", "embed_dim", "num_heads", "ff_dim", "num_layers"):
            _checks.check_number(getattr(self, name), name, integer=True, positive=True)
        heads_from_dim(self.embed_dim, self.num_heads)
        _checks.check_number(self.dropout, "dropout", nonnegative=True)
        if not self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.norm_first, bool):
            raise TypeError(f"norm_first must be a bool, got {_checks.describe(self.norm_first)}")
        activations.get(self.activation)
        initializers.get(self.kernel_init)
        super().__post_init__()

    def _block_options(self) -> dict[str, Any]:
        return dict(num_heads=self.num_heads, key_dim=heads_from_dim(self.embed_dim, self.num_heads),
                    ff_dim=self.ff_dim, dropout=self.dropout, norm_first=self.norm_first,
                    activation=self.activation, kernel_init=self.kernel_init)

    def _embed(self, tokens: jax.Array) -> jax.Array:
        init = initializers.random_normal(0.02)
        return nn.Embed(self.vocab_size, self.embed_dim, embedding_init=init, name="token_embedding")(tokens)

    def _finish(self, x: jax.Array) -> jax.Array:
        """The final LayerNorm of a pre-LN stack (post-LN blocks end normalised already)."""
        return nn.LayerNorm(epsilon=1e-5, name="final_norm")(x) if self.norm_first else x


class TransformerClassifier(_TransformerOptions):
    """BERT-style encoder classifier: [CLS] + tokens -> encoder blocks -> Dense on the [CLS] vector.

    tokens (batch, T) ints, T ≤ max_length -> logits (batch, outputs). A learned [CLS] vector is
    prepended, learned positional embeddings (max_length + 1 positions) are added, and keys equal
    to pad_id are masked out of every attention (the [CLS] position is always attended).
    Attention maps cover T + 1 positions, [CLS] first.
    """

    outputs: int = 2
    pad_id: int = 0
    output_activation: str | Callable[[jax.Array], jax.Array] | None = None

    def __post_init__(self) -> None:
        _checks.check_number(self.outputs, "outputs", integer=True, positive=True)
        _checks.check_number(self.pad_id, "pad_id", integer=True)
        if self.output_activation is not None:
            activations.get(self.output_activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: Any, train: bool = False) -> jax.Array:
        tokens = _check_tokens(tokens, self.vocab_size, self.max_length)
        batch = tokens.shape[0]
        x = self._embed(tokens)
        cls = self.param("cls", initializers.random_normal(0.02), (self.embed_dim,), x.dtype)
        x = jnp.concatenate([jnp.broadcast_to(cls, (batch, 1, self.embed_dim)), x], axis=1)
        x = LearnedPositionalEmbedding(self.max_length + 1, name="position_embedding")(x)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        keys = jnp.concatenate([jnp.ones((batch, 1), bool), tokens != self.pad_id], axis=1)
        mask = keys[:, None, :]
        for i in range(self.num_layers):
            x = TransformerEncoderBlock(**self._block_options(), name=f"block_{i}")(x, mask=mask, train=train)
        x = self._finish(x)
        init = initializers.get(self.kernel_init)
        return nn.Dense(self.outputs, kernel_init=init, name="head")(x[:, 0])


class CausalLM(_TransformerOptions):
    """Decoder-only language model: next-token logits, position t seeing tokens ≤ t only.

    tokens (batch, T) ints, T ≤ max_length -> logits (batch, T, vocab_size), logits[:, t]
    predicting tokens[:, t + 1]. Token and learned positional embeddings, decoder blocks with
    causal self-attention (no cross-attention), a final LayerNorm (pre-LN) and a Dense head.
    Train with sparse_categorical_crossentropy on targets (batch, T) = tokens shifted by one.
    """

    @nn.compact
    def __call__(self, tokens: Any, train: bool = False) -> jax.Array:
        tokens = _check_tokens(tokens, self.vocab_size, self.max_length)
        x = LearnedPositionalEmbedding(self.max_length, name="position_embedding")(self._embed(tokens))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        for i in range(self.num_layers):
            x = TransformerDecoderBlock(**self._block_options(), name=f"block_{i}")(x, train=train)
        x = self._finish(x)
        init = initializers.get(self.kernel_init)
        return nn.Dense(self.vocab_size, kernel_init=init, name="head")(x)

    def generate(self, params: Any, prompt: Any, num_tokens: int, *, temperature: float = 0.0,
                 seed: int = 0) -> jax.Array:
        """prompt (batch, P) continued by num_tokens tokens: (batch, P + num_tokens); see `generate`."""
        return generate(self, params, prompt, num_tokens, temperature=temperature, seed=seed)


def _variables(params: Any) -> dict[str, Any]:
    """Flax variables from a params tree or from variables {"params": ...}."""
    if not isinstance(params, dict) and not hasattr(params, "keys"):
        raise TypeError(f"params must be the model's parameter tree (e.g. state.params), got {_checks.describe(params)}")
    return dict(params) if "params" in params else {"params": params}


@functools.lru_cache(maxsize=16)
def _generator(model: CausalLM, num_tokens: int, sample: bool) -> Callable:
    def run(variables, buffer, start, temperature, key):
        def body(t, carry):
            buffer, key = carry
            logits = model.apply(variables, buffer)[:, t - 1]
            if sample:
                key, draw = jax.random.split(key)
                token = jax.random.categorical(draw, logits / temperature, axis=-1)
            else:
                token = jnp.argmax(logits, axis=-1)
            return buffer.at[:, t].set(token.astype(buffer.dtype)), key

        buffer, _ = jax.lax.fori_loop(start, start + num_tokens, body, (buffer, key))
        return buffer

    return jax.jit(run)


def generate(model: CausalLM, params: Any, prompt: Any, num_tokens: int, *, temperature: float = 0.0,
             seed: int = 0) -> jax.Array:
    """Autoregressive continuation: greedy (argmax) at temperature 0, else sampling softmax(logits/temperature).

    prompt (batch, P) ints, P ≥ 1, P + num_tokens ≤ model.max_length -> (batch, P + num_tokens).
    Each step runs the model on a max_length buffer (later positions cannot influence earlier
    ones under the causal mask) and appends the prediction at the last filled position.
    """
    if not isinstance(model, CausalLM):
        raise TypeError(f"model must be a CausalLM, got {_checks.describe(model)}")
    prompt = _check_tokens(prompt, model.vocab_size, model.max_length, "prompt")
    _checks.check_number(num_tokens, "num_tokens", integer=True, nonnegative=True)
    _checks.check_number(temperature, "temperature", nonnegative=True)
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)
    batch, length = prompt.shape
    if length + num_tokens > model.max_length:
        raise ValueError(
            f"prompt length ({length}) + num_tokens ({num_tokens}) must be <= max_length={model.max_length}"
        )
    if num_tokens == 0:
        return prompt
    buffer = jnp.zeros((batch, model.max_length), jnp.int32).at[:, :length].set(prompt)
    sample = temperature > 0
    run = _generator(model, int(num_tokens), sample)
    out = run(_variables(params), buffer, length, jnp.asarray(temperature if sample else 1.0, jnp.float32),
              jax.random.PRNGKey(seed))
    return out[:, : length + num_tokens]


@functools.lru_cache(maxsize=16)
def _intermediates(model: nn.Module) -> Callable:
    return jax.jit(lambda variables, tokens: model.apply(variables, tokens, mutable=["intermediates"])[1])


def attention_maps(model: nn.Module, params: Any, tokens: Any) -> list[jax.Array]:
    """Attention weights of every attention layer, in call order: a list of (batch, heads, Tq, Tk).

    Inference mode (no dropout), jit-compiled once per model. For TransformerClassifier,
    Tq = Tk = T + 1 with [CLS] first.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a flax.linen.Module, got {_checks.describe(model)}")
    if isinstance(model, _TransformerOptions):
        tokens = _check_tokens(tokens, model.vocab_size, model.max_length)
    variables = _variables(params)
    try:
        state = _intermediates(model)(variables, tokens)
    except TypeError:  # an unhashable model: compile without the cache
        state = _intermediates.__wrapped__(model)(variables, tokens)
    found: list[jax.Array] = []

    def collect(tree):
        for name, value in tree.items():
            if name == "attention" and isinstance(value, tuple):
                found.extend(value)
            elif hasattr(value, "items"):
                collect(value)

    collect(state.get("intermediates", {}))
    return found


__all__ = ["CausalLM", "TransformerClassifier", "attention_maps", "generate"]
