"""jdl Recurrent: g_U = Σ_t h_{t-1} ρ_tᵀ (GRU: g_b_rec = Σ_t ρ_t), ρ_t = ∂ℓ_i/∂(h_{t-1}U (+ b_rec)) at step t.

The layer is run by an equivalent `lax.scan` that adds a perturbation to each step's recurrent
product (its gradient is ρ); the input kernel is a Dense call of the cell, covered by the Dense rule.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.diagnostics.per_example.rules.base import Rule, module_params
from jdl.diagnostics.per_example.rules.forms import Outer, Summed, wide
from jdl.nn import recurrent

_CELLS = (recurrent.SimpleRNNCell, recurrent.LSTMCell, recurrent.GRUCell)


def forward(module: recurrent.Recurrent, x: jax.Array, perturbation: jax.Array) -> tuple[Any, jax.Array]:
    """(outputs, h_{t-1} (batch, time, units)) of Recurrent with perturbation (batch, time, G·units) added to each h_{t-1}U (+ b).

    The same computation as `Recurrent.__call__` without seq_lengths, initial state or reverse,
    as a `lax.scan` over pure functions (the input projection stays a Dense call).
    """
    cell = module.cell
    x = recurrent.check_sequence(x)
    xs = cell.project_inputs(jnp.swapaxes(x, 0, 1))
    carry = cell.initialize_carry(None, (x.shape[0], x.shape[2]))
    carry = jax.tree_util.tree_map(lambda c: c.astype(xs.dtype), carry)
    kernel = cell.recurrent_kernel
    bias = cell.recurrent_bias if isinstance(cell, recurrent.GRUCell) else None

    def body(carry, inputs):
        projected, e = inputs
        h = cell.output(carry)
        product = h @ kernel if bias is None else h @ kernel + bias
        carry, out = cell.combine(carry, projected, product + e.astype(product.dtype))
        return carry, (out, h)

    carry, (ys, h_prev) = jax.lax.scan(body, carry, (xs, jnp.swapaxes(perturbation, 0, 1)), unroll=module.unroll)
    outputs = jnp.swapaxes(ys, 0, 1) if module.return_sequences else cell.output(carry)
    return ((outputs, carry) if module.return_state else outputs), jnp.swapaxes(h_prev, 0, 1)


class RecurrentRule(Rule):
    """The plain jdl Recurrent layer with a SimpleRNN, LSTM or GRU cell, without seq_lengths, initial state or reverse."""

    kind = "recurrent"

    def covers(self, module, args, kwargs):
        if module.reverse or not args or type(module.cell) not in _CELLS:
            return False
        return all(a is None for a in args[1:]) and all(v is None for v in kwargs.values())

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
        shape = jax.ShapeDtypeStruct((x.shape[0], x.shape[1], cell.gates * cell.units), dtype)
        out, _ = forward(module, x, jnp.zeros(shape.shape, shape.dtype))
        return out, shape

    def run(self, module, next_fun, args, kwargs, perturbation):
        out, h_prev = forward(module, args[0], perturbation)
        return out, h_prev, out

    def forms(self, call, a, delta, extra):
        roles = dict(call.leaves)
        d = wide(delta.reshape(-1, delta.shape[-1]))
        out = {roles["recurrent_kernel"]: Outer(wide(a.reshape(-1, a.shape[-1])), d)}
        if "recurrent_bias" in roles:
            out[roles["recurrent_bias"]] = Summed(d)
        return out
