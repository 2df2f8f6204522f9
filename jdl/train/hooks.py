"""`StepHook`: work a callback adds inside the compiled training step (the engine's one extension point).

A callback returns a hook from `Callback.step_hook(model)`; the hook is a hashable value (it keys
the compiled step, so equal hooks share it). Inside the step the engine calls, at trace time:

    hook.value_and_grad(context) -> None | ((cost, aux), grads, extra)   before the gradient
    hook.record(context, extra)  -> a pytree of arrays                      after the update

`value_and_grad` may compute the step's cost and gradient itself (for instance in one pass that
also captures what per-example statistics need); None lets the engine call `jax.value_and_grad`.
At most one hook per step may supply it. What `record` returns is stacked over the steps of a
dispatch and handed to the callback's `on_step_records`, on the device.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax


@dataclasses.dataclass(frozen=True)
class StepContext:
    """What a hook sees of one training step; grads and new_state are None before the gradient.

    cost_fn(params) -> (cost, (logs, model_state)) is the step's differentiable cost (the batch's
    `Objective.cost` in training mode with this step's dropout key); example_cost(params, x_i, y_i)
    is one example's cost in inference mode with weight 1 and no penalty, what per-example
    statistics differentiate; index: the batch's example indices in the training set (n,), or None.
    """

    objective: Any
    state: Any
    cost_fn: Callable[[Any], tuple[jax.Array, Any]]
    example_cost: Callable[..., jax.Array]
    x: Any
    y: Any
    w: jax.Array
    index: jax.Array | None
    grads: Any = None
    new_state: Any = None


@runtime_checkable
class StepHook(Protocol):
    """The protocol of a step hook (see the module docstring); implementations must be hashable by value."""

    def value_and_grad(self, context: StepContext) -> tuple[tuple[jax.Array, Any], Any, Any] | None:
        ...

    def record(self, context: StepContext, extra: Any) -> Any:
        ...
