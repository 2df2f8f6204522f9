"""Mapping a function over the examples of a batch: all at once, or chunk by chunk for bounded memory."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def chunked(batch: Any, n: int, size: int) -> tuple[Any, int]:
    """(batch as (chunks, size, ...) arrays, pad): the last chunk padded with copies of the first example."""
    chunks = math.ceil(n / size)
    pad = chunks * size - n

    def split(a):
        a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]) if pad else a
        return a.reshape((chunks, size) + a.shape[1:])

    return jax.tree_util.tree_map(split, batch), pad


def map_examples(fn: Callable[..., Any], batch: tuple[Any, ...], n: int, chunk_size: int | None) -> Any:
    """vmap(fn) over the examples of batch; with chunk_size, `lax.map` over chunks of that many (bounded memory)."""
    if chunk_size is None or chunk_size >= n:
        return jax.vmap(fn)(*batch)
    chunks, _ = chunked(batch, n, chunk_size)
    out = jax.lax.map(lambda b: jax.vmap(fn)(*b), chunks)
    return jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], out)


def batch_size(batch: Any) -> int:
    """n: the leading axis of batch's first array."""
    return jax.tree_util.tree_leaves(batch)[0].shape[0]
