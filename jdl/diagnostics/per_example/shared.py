"""The shared pass: per-example gradient norms from the batched backward pass a training step already makes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jdl.diagnostics.per_example import plan as plan_lib


class SharedPass:
    """Per-example gradient norms from the batched backward pass a training step already makes.

    With a_i and δ_i^cost = ∂cost/∂z_i of a batch cost Σ_i w_i ℓ_i / Σ_i w_i (plus terms that do
    not pass through the layers' outputs, such as an L2 penalty), example i's gradient of ℓ_i is
    (Σw / w_i) · the layer algebra of (a_i, δ_i^cost). Exact when the examples do not interact
    (nothing checks parameter-free mixing such as x - x.mean(0)), up to float32 underflow of
    δ_i^cost for weights spanning dozens of orders of magnitude.
    """

    def __init__(self, plan: plan_lib.Plan, n: int, axes: Sequence[int]):
        self.plan, self.n, self.axes = plan, n, tuple(axes)

    def value_and_grad(self, cost_fn: Callable[[Any], tuple[jax.Array, Any]], params: Any) -> tuple:
        """((cost, aux), grads, captures) of cost_fn(params) -> (cost, aux): one forward and one backward pass.

        captures: (inputs, output gradients, LayerNorm x̂, outputs) of the covered layer calls.
        """

        def g(p, perturbations):
            (cost, aux), inputs, extras, outputs = plan_lib.run_captured(self.plan, p, perturbations, lambda: cost_fn(p))
            return cost, (aux, inputs, extras, outputs)

        zeros = [jnp.zeros(s.shape, s.dtype) for s in self.plan.perturb_shapes]
        (cost, (aux, inputs, extras, outputs)), (grads, deltas) = jax.value_and_grad(
            g, argnums=(0, 1), has_aux=True)(params, zeros)
        return (cost, aux), grads, (inputs, deltas, extras, outputs)

    def preactivations(self, captures: tuple) -> dict[str, jax.Array]:
        """`stats.preactivations` of this forward pass: the Dense/Conv outputs by layer, the last (the head) dropped."""
        found: dict[str, jax.Array] = {}
        for call, name, out in zip(self.plan.calls, self.plan.names, captures[3]):
            if call.kind in ("dense", "conv"):
                found[name] = out
        return dict(list(found.items())[:-1])

    def example_norms(self, captures: tuple, w: jax.Array) -> jax.Array:
        """‖∇ℓ_i‖ (n,) from the captures of `value_and_grad`, for cost weights w (n,); 0 where w_i = 0."""
        plan = self.plan
        captures = [[None if a is None else jnp.moveaxis(a, axis, 0) for a, axis in zip(part, self.axes)]
                    for part in captures[:3]]

        def one(inputs, deltas, extras):
            values = [form.sq_norm() for form in plan_lib.call_forms(plan, inputs, deltas, extras).values()]
            return sum(values[1:], values[0])

        cost_norms = jnp.sqrt(jax.vmap(one)(*captures))
        w = w.astype(cost_norms.dtype)
        return jnp.where(w > 0, cost_norms * jnp.sum(w) / jnp.where(w > 0, w, 1.0), 0.0)


def shared_pass(cost_fn: Callable[[Any], Any], params: Any, example_plan: plan_lib.Plan | None,
                n: int) -> SharedPass | None:
    """A SharedPass for cost_fn(params) -> (cost, aux), or None when its covered calls are not example_plan's.

    example_plan: the plan of the loss of a batch of ONE example. Eligible when every parameter is
    covered (and no jdl Recurrent: re-running its scan would change training in the last bits)
    and cost_fn makes the same covered calls, each output differing from the one-example
    output in one axis only, of size 1 there and n here (the batch axis, e.g. 1 for a time-major
    projection): no covered layer sees more than its own example.
    """
    if example_plan is None or example_plan.leftover:
        return None
    try:
        plan = plan_lib.trace(lambda p: cost_fn(p)[0], params, ())
    except Exception:  # the batch cost does not trace like the per-example loss: no shared pass
        return None
    if plan.leftover or len(plan.calls) != len(example_plan.calls):
        return None
    if any(call.kind == "recurrent" for call in plan.calls):
        return None  # its scan would replace the layer's own: training would change in the last bits
    axes = []
    for call, one, batched, single in zip(plan.calls, example_plan.calls, plan.perturb_shapes,
                                          example_plan.perturb_shapes):
        if call.kind != one.kind or call.leaves != one.leaves or call.config != one.config:
            return None
        axis = batch_axis(tuple(single.shape), tuple(batched.shape), n)
        if axis is None:
            return None
        axes.append(axis)
    return SharedPass(plan, n, axes)


def batch_axis(single: tuple[int, ...], batched: tuple[int, ...], n: int) -> int | None:
    """The one axis where a one-example shape has 1 and the batch's has n, all others equal; else None."""
    if len(single) != len(batched):
        return None
    differ = [k for k, (a, b) in enumerate(zip(single, batched)) if a != b]
    if n == 1 and not differ:
        return 0 if single[:1] == (1,) else None
    if len(differ) != 1 or single[differ[0]] != 1 or batched[differ[0]] != n:
        return None
    return differ[0]
