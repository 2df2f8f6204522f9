"""Layers the course adds on top of Flax Linen: PReLU (the perceptron lives in perceptron.py)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jdl import _checks
from jdl.nn import initializers


class PReLU(nn.Module):
    """Parametric ReLU (He et al. 2015): f(x) = x if x > 0 else α·x, α learned.

    α has shape input.shape[1:] with the 1-based `shared_axes` (Keras meaning,
    axis 0 is the batch) set to 1, e.g. shared_axes=(1, 2) for one α per channel
    of an NHWC image. `alpha_init` is a number or an initializer (default 0.25).
    """

    alpha_init: float | initializers.Initializer = 0.25
    shared_axes: Sequence[int] | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = _checks.as_array(x, "x", dtype_kind="float")
        if x.ndim < 2:
            raise ValueError(f"x must have shape (batch, ...), got shape {tuple(x.shape)}")
        shape = list(x.shape[1:])
        for axis in self.shared_axes or ():
            if isinstance(axis, bool) or not isinstance(axis, int) or not 1 <= axis < x.ndim:
                raise ValueError(
                    f"shared_axes must hold axes in [1, {x.ndim - 1}] for input of shape "
                    f"{tuple(x.shape)}, got {tuple(self.shared_axes)}"
                )
            shape[axis - 1] = 1
        init = self.alpha_init
        if not callable(init):
            init = initializers.constant(init)
        alpha = self.param("alpha", init, tuple(shape), x.dtype)
        return jnp.where(x > 0, x, alpha * x)
