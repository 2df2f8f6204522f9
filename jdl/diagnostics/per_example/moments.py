"""Σ_i g_i and Σ_i g_i² per parameter entry over the examples of a batch, chunk by chunk (gradient variance, GSNR)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jdl.diagnostics.per_example import plan as plan_lib
from jdl.diagnostics.per_example.mapping import batch_size, chunked
from jdl.diagnostics.per_example.rules import wide

MOMENTS_CHUNK = 128


def moments(loss_fn: Callable[..., jax.Array], params: Any, batch: tuple[Any, ...], plan: plan_lib.Plan | None,
            chunk_size: int | None = None, mask: jax.Array | None = None) -> tuple[Any, Any]:
    """(Σ_i g_i, Σ_i g_i²), pytrees like params, over the examples where mask (n,) is True (all by default).

    A Dense kernel seeing one position per example never forms g_i = a_i δ_iᵀ: Σ_i g_i = AᵀΔ and
    Σ_i g_i² = (A⊙A)ᵀ(Δ⊙Δ) over the chunk (two matrix products); other leaves form g_i per example.
    Chunks of chunk_size examples (default MOMENTS_CHUNK); plan None: g_i by vmap(grad).
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    shapes = [leaf.shape for leaf in leaves]
    if plan is None:
        def one(*example):
            return [(wide(g),) for g in jax.tree_util.tree_leaves(jax.grad(loss_fn)(params, *example))]
    else:
        def per_leaf(forms, left):
            return [(wide(left[i]),) if i in left else forms[i].moment_terms(shapes[i]) for i in range(len(shapes))]

        one = plan_lib.example_fn(loss_fn, params, plan, per_leaf)

    n = batch_size(batch)
    size = min(n, chunk_size or MOMENTS_CHUNK)
    chunks = math.ceil(n / size)
    examples, pad = chunked(batch, n, size)
    valid = jnp.arange(chunks * size) < n
    if mask is not None:
        valid = valid & jnp.concatenate([mask, jnp.zeros((pad,), bool)])
    mask = valid.reshape(chunks, size)

    def body(carry, chunk):
        total, squares = carry
        examples, m = chunk
        new_total, new_squares = [], []
        for term, t, q, shape in zip(jax.vmap(one)(*examples), total, squares, shapes):
            if len(term) == 2:
                rows = jnp.where(m[:, None], term[0], 0).astype(t.dtype)
                deltas = term[1].astype(t.dtype)
                new_total.append(t + (rows.T @ deltas).reshape(shape))
                new_squares.append(q + ((rows * rows).T @ (deltas * deltas)).reshape(shape))
            else:
                g = jnp.where(m.reshape((-1,) + (1,) * (term[0].ndim - 1)), term[0], 0).astype(t.dtype)
                new_total.append(t + g.sum(0))
                new_squares.append(q + (g * g).sum(0))
        return (new_total, new_squares), None

    zeros = [jnp.zeros(leaf.shape, jnp.promote_types(leaf.dtype, jnp.float32)) for leaf in leaves]
    (total, squares), _ = jax.lax.scan(body, (zeros, list(zeros)), (examples, mask))
    return jax.tree_util.tree_unflatten(treedef, total), jax.tree_util.tree_unflatten(treedef, squares)
