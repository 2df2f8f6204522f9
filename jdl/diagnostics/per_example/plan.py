"""The plan of the fast path: which layer calls of a loss its rules cover, found by tracing the loss once (no FLOPs).

The covered calls are intercepted with `flax.linen.intercept_methods`: each records its inputs a
and gets a zero perturbation added to its output, whose gradient is δ = ∂ℓ/∂z. Leaves that no
rule covers (custom `self.param`s, layers inside `nn.scan` or `nn.remat`, layers used through
another method such as `Embed.attend`, a leaf used by calls of different kinds) are "leftover":
their gradients come from the same backward pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.extend.core
import jax.numpy as jnp

from jdl.diagnostics.per_example import rules
from jdl.nn.conv import Conv1D, Conv2D
from jdl.nn.keras_layers import Dense as KerasDense
from jdl.nn.recurrent import GRUCell, LSTMCell, SimpleRNNCell


@dataclasses.dataclass(frozen=True)
class Call:
    """One intercepted layer call: its kind, the param leaves it owns (role, leaf index), and its static config."""

    kind: str
    leaves: tuple[tuple[str, int], ...]
    config: tuple[Any, ...] = ()

    @property
    def rule(self) -> rules.Rule:
        return rules.BY_KIND[self.kind]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The covered calls of a loss (in call order) with their layer names and perturbation shapes.

    leftover: the leaf indices whose gradients are not covered; keep: the positions, among every
    call a rule covers, of the calls kept (those owning no leftover leaf).
    """

    n_leaves: int
    calls: tuple[Call, ...]
    names: tuple[str, ...]
    perturb_shapes: tuple[jax.ShapeDtypeStruct, ...]
    leftover: tuple[int, ...]
    keep: tuple[int, ...]


def trace_state() -> Any:
    """An opaque token of the current JAX trace, compared with ==.

    A layer call whose token differs from the loss's own is inside a transformation of the model
    (`nn.scan`, `nn.remat`, `nn.vmap`): its a and δ are not one example's, so it is left to vmap.
    The one place that asks JAX for its trace: `jax.extend.core.get_opaque_trace_state`, public, as
    flax uses it for the same check (flax/core/tracers.py).
    """
    return jax.extend.core.get_opaque_trace_state(convention="flax")


def classify(module: nn.Module, method_name: str, args: tuple, kwargs: dict,
             index_of: dict[int, int]) -> tuple[rules.Rule | None, dict[str, int | None]]:
    """(the rule covering one intercepted method call or None, {param role: leaf index or None})."""
    rule = rules.rule_for(module) if method_name == "__call__" else None
    params = rule.own(module, args, kwargs) if rule is not None else rules.module_params(module)
    own = {name: index_of.get(id(value)) for name, value in params.items()}
    if rule is None or None in own.values() or not rule.covers(module, args, kwargs):
        return None, own
    return rule, own


def _is_wrapper(module: nn.Module, method_name: str) -> bool:
    """Methods that only call a covered layer: jdl's Conv1D/Conv2D (a flax Conv), Dense, a cell's project_inputs (a Dense)."""
    return isinstance(module, (Conv1D, Conv2D, KerasDense)) or (
        isinstance(module, (SimpleRNNCell, LSTMCell, GRUCell)) and method_name == "project_inputs")


def trace(loss_fn: Callable, params: Any, example: tuple[Any, ...]) -> Plan:
    """The plan of loss_fn(params, *example), traced abstractly."""
    n_leaves = len(jax.tree_util.tree_leaves(params))
    calls: list[Call] = []
    names: list[str] = []
    shapes: list[jax.ShapeDtypeStruct] = []
    excluded: set[int] = set()
    kinds: dict[int, set[str]] = {}

    def traced(params_t, *example_t):
        index_of = {id(leaf): i for i, leaf in enumerate(jax.tree_util.tree_leaves(params_t))}
        top = trace_state()

        def interceptor(next_fun, args, kwargs, context):
            if context.method_name == "setup":
                return next_fun(*args, **kwargs)
            rule, own = classify(context.module, context.method_name, args, kwargs, index_of)
            indices = {i for i in own.values() if i is not None}
            if not indices:
                return next_fun(*args, **kwargs)
            if rule is None and _is_wrapper(context.module, context.method_name):
                return next_fun(*args, **kwargs)
            if rule is None or trace_state() != top:
                excluded.update(indices)
                return next_fun(*args, **kwargs)
            for i in indices:
                kinds.setdefault(i, set()).add(rule.kind)
            slot = len(calls)
            calls.append(Call(rule.kind, tuple(sorted(own.items())), rule.config(context.module, args[0])))
            names.append("/".join(context.module.path))
            shapes.append(None)
            out, shapes[slot] = rule.trace(context.module, next_fun, args, kwargs)
            return out

        with nn.intercept_methods(interceptor):
            return loss_fn(params_t, *example_t)

    jax.eval_shape(traced, params, *example)
    mixed = {i for i, k in kinds.items() if len(k) > 1}
    leftover = sorted(excluded | mixed | (set(range(n_leaves)) - set(kinds)))
    bad = set(leftover)
    keep = tuple(k for k, call in enumerate(calls) if not bad & {i for _, i in call.leaves})
    return Plan(n_leaves, tuple(calls[k] for k in keep), tuple(names[k] for k in keep),
                tuple(shapes[k] for k in keep), tuple(leftover), keep)


def run_captured(plan: Plan, params: Any, perturbations: Sequence[jax.Array], run: Callable[[], Any]) -> tuple:
    """(run()'s result, inputs, extras, outputs): plan's covered calls record input and output, and get their perturbation added.

    A call's slot is taken before it runs, so the calls nested in it (a Recurrent's input Dense)
    come after it, as in the plan.
    """
    keep = {k: position for position, k in enumerate(plan.keep)}
    index_of = {id(leaf): i for i, leaf in enumerate(jax.tree_util.tree_leaves(params))}
    top = trace_state()
    seen = [0]
    captured: list[Any] = []
    outputs: list[Any] = []

    def interceptor(next_fun, args, kwargs, context):
        rule, own = classify(context.module, context.method_name, args, kwargs, index_of)
        if rule is None or not own or trace_state() != top:
            return next_fun(*args, **kwargs)
        index = seen[0]
        seen[0] += 1
        if index not in keep:
            return next_fun(*args, **kwargs)
        slot = len(captured)
        captured.append(None)
        outputs.append(None)
        out, captured[slot], outputs[slot] = rule.run(context.module, next_fun, args, kwargs, perturbations[keep[index]])
        return out

    with nn.intercept_methods(interceptor):
        result = run()
    if len(captured) != len(plan.calls):
        raise RuntimeError("the model called its layers differently on a second trace; use method='vmap'")
    extras = [call.rule.extra(a, call) for a, call in zip(captured, plan.calls)]
    return result, captured, extras, outputs


def example_fn(loss_fn: Callable, params: Any, plan: Plan,
               per_leaf: Callable[[dict[int, rules.Form], dict[int, jax.Array]], Any]) -> Callable:
    """one(*example) -> per_leaf({covered leaf: its Form}, {leftover leaf: its gradient}), from one backward pass."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    leftover_index = plan.leftover
    leftover = [leaves[i] for i in leftover_index]

    def g(left, perturbations, *example):
        full = list(leaves)
        for i, value in zip(leftover_index, left):
            full[i] = value
        params_full = jax.tree_util.tree_unflatten(treedef, full)
        loss, captured, extras, _ = run_captured(plan, params_full, perturbations, lambda: loss_fn(params_full, *example))
        return loss, (captured, extras)

    def one(*example):
        zeros = [jnp.zeros(s.shape, s.dtype) for s in plan.perturb_shapes]
        (left_grads, deltas), (inputs, extras) = jax.grad(g, argnums=(0, 1), has_aux=True)(leftover, zeros, *example)
        return per_leaf(call_forms(plan, inputs, deltas, extras), dict(zip(leftover_index, left_grads)))

    return one


def call_forms(plan: Plan, inputs: Sequence[Any], deltas: Sequence[Any], extras: Sequence[Any]) -> dict[int, rules.Form]:
    """{leaf: Form} of one example from the captures of plan's calls, a leaf shared by several calls merged."""
    return rules.merge([call.rule.forms(call, a, d, e) for call, a, d, e in zip(plan.calls, inputs, deltas, extras)])
