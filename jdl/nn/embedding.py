"""The Embedding layer (Keras spelling): integer tokens -> rows of a trainable table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl.nn import initializers


def check_tokens(tokens: Any, name: str, input_dim: int, size_name: str = "input_dim") -> jax.Array:
    """`tokens` as an integer array; TypeError for a non-integer dtype, ValueError for ids outside [0, input_dim).

    The range is checked only on concrete values (not inside `jax.jit`); size_name: what the
    error calls input_dim (a model's "vocab_size").
    """
    if isinstance(tokens, (str, bytes)) or tokens is None:
        raise TypeError(f"{name} must be an integer array of token ids, got {_checks.describe(tokens)}")
    if not hasattr(tokens, "dtype"):
        try:
            tokens = np.asarray(tokens)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be an integer array of token ids, got {_checks.describe(tokens)}") from err
    if np.dtype(tokens.dtype).kind not in "iu":
        raise TypeError(f"{name} must be an integer array of token ids, got an array of dtype {tokens.dtype}")
    if _checks.is_concrete(tokens) and np.size(tokens):
        values = np.asarray(tokens)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= input_dim:
            raise ValueError(
                f"{name} must hold token ids in [0, {input_dim - 1}] ({size_name}={input_dim}), "
                f"got values from {low} to {high}"
            )
    return jnp.asarray(tokens)


class Embedding(nn.Module):
    """tokens (batch, T) int -> embeddings[tokens] (batch, T, output_dim); any leading shape works.

    input_dim: the vocabulary size (ids 0 .. input_dim-1); output_dim: the vector size.
    The table is the parameter "embeddings" (input_dim, output_dim), Keras' default
    initialisation U(-0.05, 0.05). mask_zero: id 0 is padding, and `compute_mask` is False there
    (as Keras, input_dim must then count the padding id). The gradient of a lookup adds each
    position's upstream gradient into its token's row; rows of absent tokens get zero.
    """

    input_dim: int
    output_dim: int
    mask_zero: bool = False
    embeddings_init: str | Callable[..., jax.Array] = "random_uniform"

    def __post_init__(self) -> None:
        _checks.check_number(self.input_dim, "input_dim", integer=True, positive=True)
        _checks.check_number(self.output_dim, "output_dim", integer=True, positive=True)
        if not isinstance(self.mask_zero, bool):
            raise TypeError(f"mask_zero must be a bool, got {_checks.describe(self.mask_zero)}")
        if self.mask_zero and self.input_dim < 2:
            raise ValueError(f"input_dim must be >= 2 with mask_zero (id 0 is padding), got {self.input_dim}")
        initializers.get(self.embeddings_init)
        super().__post_init__()

    @nn.compact
    def __call__(self, tokens: Any) -> jax.Array:
        tokens = check_tokens(tokens, "tokens", self.input_dim)
        table = self.param("embeddings", initializers.get(self.embeddings_init), (self.input_dim, self.output_dim))
        return jnp.take(table, tokens, axis=0)

    def compute_mask(self, tokens: Any) -> jax.Array:
        """(batch, T) bool: False where tokens == 0 when mask_zero, else all True."""
        tokens = check_tokens(tokens, "tokens", self.input_dim)
        if self.mask_zero:
            return tokens != 0
        return jnp.ones(tokens.shape, bool)

    def attend(self, query: jax.Array) -> jax.Array:
        """query (..., output_dim) · embeddingsᵀ -> (..., input_dim): scores against every token (tied output layer)."""
        query = _checks.as_array(query, "query", dtype_kind="float")
        if query.ndim < 1 or query.shape[-1] != self.output_dim:
            raise ValueError(f"query must have a last axis of size output_dim={self.output_dim}, got shape {tuple(query.shape)}")
        table = self.variables["params"]["embeddings"]
        return query @ table.T
