"""jdl Recurrent: g_U = Σ_t h_{t-1} ρ_tᵀ (GRU: g_b_rec = Σ_t ρ_t), ρ_t = ∂ℓ_i/∂(h_{t-1}U (+ b_rec)) at step t.

The layer's own scan (`Recurrent.scan_sequence`, `jdl.nn.cell_scan`) runs with a perturbation
added to each step's recurrent product (its gradient is ρ) and returns h_{t-1}; the input kernel
is a Dense call of the cell, covered by the Dense rule. Every option of the layer is covered:
reverse (the backward half of a Bidirectional), seq_lengths, a mask, an initial state. A step the
mask or the lengths skip has ρ_t = 0, so it adds nothing to the sums.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.diagnostics.per_example.rules.base import Rule, module_params
from jdl.diagnostics.per_example.rules.forms import Outer, Summed, wide
from jdl.nn import recurrent

_CELLS = (recurrent.SimpleRNNCell, recurrent.LSTMCell, recurrent.GRUCell)
_OPTIONS = ("seq_lengths", "initial_state", "mask")


class RecurrentRule(Rule):
    """The jdl Recurrent layer with a SimpleRNN, LSTM or GRU cell, with any of its options."""

    kind = "recurrent"

    def covers(self, module, args, kwargs):
        return bool(args) and type(module.cell) in _CELLS and set(kwargs) <= set(_OPTIONS) and len(args) <= 4

    def own(self, module, args, kwargs):
        """{"recurrent_kernel"[, "recurrent_bias"]}: the cell's recurrent parameters (the layer's own when not covered)."""
        if not self.covers(module, args, kwargs):
            return module_params(module)
        cell_params = module.cell.variables.get("params", {})
        names = ("recurrent_kernel", "recurrent_bias") if isinstance(module.cell, recurrent.GRUCell) else ("recurrent_kernel",)
        return {name: cell_params.get(name) for name in names}

    def trace(self, module, next_fun, args, kwargs):
        """(outputs, perturbation shape (batch, time, G·units)): one perturbation per example and step."""
        x, cell = args[0], module.cell
        dtype = jnp.promote_types(jnp.result_type(x), cell.param_dtype)
        batch, time = jnp.shape(x)[:2]
        shape = jax.ShapeDtypeStruct((batch, time, cell.gates * cell.units), dtype)
        out, _ = module.scan_sequence(*args, **kwargs, perturbation=jnp.zeros(shape.shape, shape.dtype))
        return out, shape

    def run(self, module, next_fun, args, kwargs, perturbation):
        out, h_prev = module.scan_sequence(*args, **kwargs, perturbation=perturbation)
        return out, h_prev, out

    def forms(self, call, a, delta, extra):
        roles = dict(call.leaves)
        d = wide(delta.reshape(-1, delta.shape[-1]))
        out = {roles["recurrent_kernel"]: Outer(wide(a.reshape(-1, a.shape[-1])), d)}
        if "recurrent_bias" in roles:
            out[roles["recurrent_bias"]] = Summed(d)
        return out
