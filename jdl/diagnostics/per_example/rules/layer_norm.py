"""LayerNorm over the last axis: g_γ = Σ_t δ_t ⊙ x̂_t, g_β = Σ_t δ_t, with x̂ = (x - mean) / sqrt(var + ε)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.diagnostics.per_example.rules.base import Rule
from jdl.diagnostics.per_example.rules.forms import Direct, wide


class LayerNormRule(Rule):
    """nn.LayerNorm normalising and scaling the last axis only, without a cross-device axis; config (ε, use_scale, use_bias)."""

    kind = "layer_norm"

    def accepts(self, module, x):
        return module.reduction_axes in (-1, (-1,)) and module.feature_axes in (-1, (-1,)) and module.axis_name is None

    def config(self, module, x):
        return (module.epsilon, module.use_scale, module.use_bias)

    def extra(self, a, call):
        """x̂ = (x - mean) / sqrt(var + ε) over the last axis (what LayerNorm's scale multiplies)."""
        epsilon = call.config[0]
        x = wide(a)
        mean = x.mean(-1, keepdims=True)
        var = jnp.maximum((x * x).mean(-1, keepdims=True) - mean * mean, 0.0)
        return (x - mean) * jax.lax.rsqrt(var + epsilon)

    def forms(self, call, a, delta, extra):
        roles = dict(call.leaves)
        d = wide(delta.reshape(-1, delta.shape[-1]))
        xhat = extra.reshape(d.shape)
        _, use_scale, use_bias = call.config
        out = {}
        if use_scale:
            out[roles["scale"]] = Direct(jnp.sum(d * xhat, axis=0))
        if use_bias:
            out[roles["bias"]] = Direct(jnp.sum(d, axis=0))
        return out
