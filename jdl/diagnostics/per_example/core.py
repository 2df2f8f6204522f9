"""The traceable core of per-example gradients: no validation, no jit, so call these inside your own jitted step.

`loss_fn(params, *example)` is the loss of ONE example; batch is a tuple of arrays (or pytrees) with
a leading example axis n. A plan (from `make_plan`, itself traceable) says which layer calls the
fast path covers; None means vmap(grad). The jitted public functions of `jdl.diagnostics.per_example`
and jdl's GradientMonitor both call these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jdl.diagnostics.per_example import plan as plan_lib
from jdl.diagnostics.per_example.mapping import batch_size, map_examples
from jdl.diagnostics.per_example.moments import moments
from jdl.diagnostics.per_example.plan import Plan
from jdl.diagnostics.per_example.rules import wide
from jdl.diagnostics.per_example.shared import SharedPass, shared_pass


def make_plan(loss_fn: Callable[..., jax.Array], params: Any, batch: tuple[Any, ...],
              method: str = "auto") -> Plan | None:
    """The fast plan of loss_fn for method "fast" or "auto", or None: use vmap.

    None for "vmap", and for "auto" when no layer is covered or the trace fails. Traces loss_fn on
    the first example abstractly; with "fast" a failing trace raises.
    """
    if method == "vmap":
        return None
    example = jax.tree_util.tree_map(lambda a: a[0], batch)
    try:
        plan = plan_lib.trace(loss_fn, params, example)
    except Exception:  # the trace itself failed: only vmap can say more
        if method == "fast":
            raise
        return None
    if method == "auto" and not plan.calls:
        return None
    return plan


def grads(loss_fn: Callable[..., jax.Array], params: Any, batch: tuple[Any, ...], chunk_size: int | None = None) -> Any:
    """∇_θ ℓ(θ; example_i) by vmap(grad): a pytree like params with a leading (n,) axis."""
    return map_examples(lambda *ex: jax.grad(loss_fn)(params, *ex), batch, batch_size(batch), chunk_size)


def leaf_sq_norms(loss_fn: Callable[..., jax.Array], params: Any, batch: tuple[Any, ...], plan: Plan | None,
                  chunk_size: int | None = None) -> list[jax.Array]:
    """‖g_i‖² of every parameter leaf: a list (in tree order) of (n,) arrays; by vmap(grad) when plan is None.

    Fast: Σ over a leaf's Form (see `rules`) per example; leftover leaves from the same backward pass.
    """
    n = batch_size(batch)
    if plan is None:
        def one(*example):
            return [jnp.sum(jnp.square(wide(g))) for g in jax.tree_util.tree_leaves(jax.grad(loss_fn)(params, *example))]

        return map_examples(one, batch, n, chunk_size)

    def per_leaf(forms, left):
        return [jnp.sum(jnp.square(wide(left[i]))) if i in left else forms[i].sq_norm() for i in range(plan.n_leaves)]

    return map_examples(plan_lib.example_fn(loss_fn, params, plan, per_leaf), batch, n, chunk_size)


__all__ = ["Plan", "SharedPass", "grads", "leaf_sq_norms", "make_plan", "moments", "shared_pass"]
