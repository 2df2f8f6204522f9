"""Dense and DenseGeneral: g_W = Σ_t a_t δ_tᵀ, ‖g_W‖² = Σ_t,t' (a_t·a_t')(δ_t·δ_t') (‖a‖²‖δ‖² at one position); g_b = Σ_t δ_t."""

from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp

from jdl.diagnostics.per_example.rules.base import Rule
from jdl.diagnostics.per_example.rules.forms import Outer, Summed, wide


def _axes(module: nn.DenseGeneral) -> tuple[int, ...]:
    return (module.axis,) if isinstance(module.axis, int) else tuple(module.axis)


class DenseRule(Rule):
    """nn.Dense: a (..., p) rows by δ (..., q)."""

    kind = "dense"

    def rows(self, call, a, delta):
        """(A (T, p), D (T, q)): the positions of a and δ."""
        return a.reshape(-1, a.shape[-1]), delta.reshape(-1, delta.shape[-1])

    def forms(self, call, a, delta, extra):
        roles = dict(call.leaves)
        rows, d = self.rows(call, a, delta)
        out = {roles["kernel"]: Outer(wide(rows), wide(d))}
        if "bias" in roles:
            out[roles["bias"]] = Summed(wide(d))
        return out


class DenseGeneralRule(DenseRule):
    """nn.DenseGeneral over the trailing axes of its input, without batch_dims: the contracted axes flattened."""

    kind = "dense_general"

    def accepts(self, module, x):
        axis = _axes(module)
        if module.batch_dims or len(axis) < 1:
            return False
        ndim = jnp.ndim(x)
        return tuple(sorted(a % ndim for a in axis)) == tuple(range(ndim - len(axis), ndim))

    def config(self, module, x):
        return (1 if isinstance(module.axis, int) else len(module.axis),)

    def rows(self, call, a, delta):
        n_in = call.config[0]
        rows = a.reshape((-1, math.prod(a.shape[a.ndim - n_in:])))
        return rows, delta.reshape((rows.shape[0], -1))
