"""The notes' L2 penalty λ/(2m)·Σ‖W‖² over kernel leaves, added to the cost (not an optimizer transformation)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl import _checks
from jdl.optim.freeze import path_of


def kernels(params: Any) -> list[jax.Array]:
    """Leaves whose path ends in "kernel" (Flax Dense/Conv weights; biases and the rest excluded)."""
    return [
        leaf
        for keys, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
        if path_of(keys).rsplit("/", 1)[-1] == "kernel"
    ]


def l2_penalty(params: Any, l2: float, m: Any) -> jax.Array:
    """The notes' L2 penalty λ/(2m)·Σ‖W‖² over the kernel leaves (paths ending in "kernel").

    Added to the cost J with m the number of training examples (the notes' m, the same for every
    batch and for evaluation), its gradient is (λ/m)·W on kernels, 0 elsewhere.
    Keras's `kernel_regularizer=l2(c)` adds c·Σ W², i.e. c = λ/(2m). λ and m may be traced scalars
    (so trials that differ only in λ share compiled code). Returns a scalar.
    """
    if hasattr(l2, "shape"):
        if tuple(l2.shape) != ():
            raise ValueError(f"l2 must be a scalar, got {_checks.describe(l2)}")
    else:
        _checks.check_number(l2, "l2", nonnegative=True)
    if hasattr(m, "shape"):
        if tuple(m.shape) != ():
            raise ValueError(f"m must be a scalar (the number of training examples), got {_checks.describe(m)}")
        if _checks.is_concrete(m):
            _checks.check_number(float(m), "m", positive=True)
    else:
        _checks.check_number(m, "m", positive=True)
    weights = kernels(params)
    if not weights:
        return jnp.zeros(())
    total = sum(jnp.sum(jnp.square(k)) for k in weights)
    return l2 / (2 * m) * total
