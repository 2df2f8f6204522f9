"""The compiled steps of a population: P members of one model trained by one program, vmapped over a member axis.

A population state is a `TrainState` whose arrays carry a leading member axis (P, ...), except
`step` and `examples`, which every member shares (scalars): the step hooks then see one step
number, so a hook gated on step % every stays a real `lax.cond` instead of computing every step.
Members' numbers (learning rate and the other injected hyperparameters in opt_state, loss weights
and L2 λ in CostValues) are traced arrays (P,), never compile-time constants.

`active` (P,) masks members: an inactive member (stopped early, or halted by a non-finite step)
keeps its params, optimizer and model state; its per-step logs have weight 0. `own_steps` (P,)
counts each member's applied updates (its TrainState.step alone).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl.data.batching import BatchPlan, Chunk
from jdl.train import compiler
from jdl.train import step as step_lib
from jdl.train.objective import CostValues, Objective
from jdl.train.state import TrainState
from jdl.train.step import StepSpec

CACHE_SIZE = 32


def member_axes(state: TrainState) -> TrainState:
    """The vmap axes of a population state: 0 for every array (each member's float16 loss scale too) but the shared
    `step` and `examples` (None)."""
    return state.replace(step=None, params=0, opt_state=0, model_state=0, rng=0, examples=None,
                         loss_scale=None if state.loss_scale is None else 0)


def population_chunk(spec: StepSpec, plan: BatchPlan, chunk: Chunk, state: TrainState, active: jax.Array,
                     own_steps: jax.Array, data: tuple[Any, Any, jax.Array], orders: jax.Array, start: jax.Array,
                     values: CostValues) -> tuple[TrainState, jax.Array, jax.Array, dict]:
    """The steps of `chunk` for every member in one `lax.scan`: (state, active, own_steps, logs).

    orders: (P, n) each member's permutation of the epoch (its own seed). A member whose loss or
    gradient is not finite is left at its last finite state and turns inactive; logs["nonfinite"]
    (steps, P) marks that step. Logs and hook records are stacked (steps, P, ...).
    """
    indices, masks = jax.vmap(lambda order: plan.chunk_indices(order, chunk, start))(orders)
    indices, masks = jnp.swapaxes(indices, 0, 1), jnp.swapaxes(masks, 0, 1)
    axes = member_axes(state)

    def member(state, on, index, mask, member_values):
        x, y, w, present = step_lib.gather(data, index, mask, None)
        new_state, logs, finite, records = step_lib.step_candidate(spec, state, x, y, w, member_values, index, present)
        ok = finite & on
        logs = {**logs, "nonfinite": on & ~finite, "weight": jnp.where(on, logs["weight"], 0.0),
                "count": jnp.where(on, logs["count"], 0.0)}
        return step_lib.keep_weights_if(ok, new_state, state), ok, logs, records

    stepped = jax.vmap(member, in_axes=(axes, 0, 0, 0, 0), out_axes=(axes, 0, 0, 0))

    def body(carry, batch_plan):
        state, active, own_steps = carry
        index, mask = batch_plan
        state, ok, logs, records = stepped(state, active, index, mask, values)
        return (state, ok, own_steps + ok.astype(own_steps.dtype)), {**logs, "hooks": records}

    (state, active, own_steps), logs = jax.lax.scan(body, (state, active, own_steps), (indices, masks))
    return state, active, own_steps, logs


@functools.lru_cache(maxsize=CACHE_SIZE)
def train_chunk(spec: StepSpec, plan: BatchPlan, chunk: Chunk, donate: bool) -> Callable:
    """jit(state, active, own_steps, data, orders, start, values) of `chunk`'s shape; donate: reuse the state's buffers."""
    fn = functools.partial(population_chunk, spec, plan, chunk)
    return jax.jit(fn, donate_argnums=(0,) if donate else (), compiler_options=compiler.chunk_options(chunk.remainder))


@functools.lru_cache(maxsize=CACHE_SIZE)
def epoch_orders(n: int, shuffle: bool) -> Callable:
    """jit(seeds (P,), epochs (P,)) -> (P, n): each member's permutation, as `BatchPlan.order` draws a lone fit's."""
    plan = BatchPlan(n, 1, shuffle)
    return jax.jit(jax.vmap(plan.order), compiler_options=compiler.once_options())


@functools.lru_cache(maxsize=CACHE_SIZE)
def epoch_means(weighting: tuple[tuple[str, str], ...]) -> Callable:
    """jit(chunk logs, each (steps, P)) -> {name: (P,)}: every member's epoch means (see `compiled.epoch_means`)."""

    def run(chunk_logs):
        means = {}
        for name, by in weighting:
            weights = jnp.concatenate([c[by] for c in chunk_logs]).T
            values = jnp.concatenate([c[name] for c in chunk_logs]).T
            total = jnp.sum(jnp.where(weights > 0, values * weights, 0.0), axis=1)
            means[name] = total / jnp.maximum(weights.sum(axis=1), 1e-30)
        return means

    return jax.jit(run, compiler_options=compiler.step_options())


@functools.lru_cache(maxsize=CACHE_SIZE)
def evaluate(objective: Objective, batches: int) -> Callable:
    """jit(state, data, count, values) -> {name: (P,)}: every member's loss and metrics over all rows of data."""

    def run(state, data, count, values):
        one = lambda s, v: step_lib.evaluate_padded(objective, None, s, data, batches, count, v)  # noqa: E731
        return jax.vmap(one, in_axes=(member_axes(state), 0))(state, values)

    return jax.jit(run, compiler_options=compiler.step_options())


@functools.lru_cache(maxsize=CACHE_SIZE)
def _stack(count: int) -> Callable:
    return jax.jit(lambda trees: jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees))


def stack(trees: list[Any]) -> Any:
    """The pytrees stacked leaf by leaf along a new leading axis, in one dispatch."""
    return _stack(len(trees))(trees)


_member = jax.jit(lambda tree, k: jax.tree_util.tree_map(lambda a: a[k], tree))


def unstack(tree: Any, count: int) -> list[Any]:
    """The `count` slices of every leaf's leading axis, as a list of pytrees (one small program, `count` dispatches)."""
    return [_member(tree, np.int32(k)) for k in range(count)]
