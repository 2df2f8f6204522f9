"""The input–output Jacobian of a network and its singular values (dynamical isometry, Saxe/Pennington)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jdl import _checks


def input_output_jacobian(fn: Callable[[jax.Array], jax.Array], x: Any) -> jax.Array:
    """J_i = ∂f(x_i)/∂x_i for every example: fn maps one example (d_in...) to (d_out...); returns (n, d_out, d_in)."""
    if not callable(fn):
        raise TypeError(f"fn must be a callable mapping one example to an output, got {_checks.describe(fn)}")
    x = _checks.as_array(x, "x", dtype_kind="float")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (n, ...) with a leading example axis, got shape {tuple(x.shape)}")
    d_in = x[0].size

    def one(xi):
        jac = jax.jacrev(lambda v: jnp.ravel(fn(v.reshape(xi.shape))))(xi.reshape(-1))
        return jac.reshape(-1, d_in)

    return jax.vmap(one)(x)


def jacobian_singular_values(fn: Callable[[jax.Array], jax.Array], x: Any) -> jax.Array:
    """Singular values of each example's input–output Jacobian, descending: (n, min(d_out, d_in)).

    A well-conditioned deep network keeps them near 1 (dynamical isometry); vanishing gradients
    show as singular values far below 1, exploding ones far above.
    """
    return jnp.linalg.svd(input_output_jacobian(fn, x), compute_uv=False)
