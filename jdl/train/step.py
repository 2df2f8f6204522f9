"""Pure training and evaluation steps: (state, batch) -> (state, logs), their scan forms, and the step hooks.

A batch is (x, y, w): inputs (a pytree of (batch, ...) arrays), targets (an array, or a dict of
arrays for several output heads) and per-example weights (batch,). Everything here is a pure
function of its arguments; the static ones (the Objective, hooks, augmentation, mesh, batch plan)
are hashable values, so `Trainer` caches the compiled forms by value.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jdl import constraints
from jdl.data.batching import BatchPlan, Chunk
from jdl.train import sharding
from jdl.train.hooks import StepContext
from jdl.train.objective import CostValues, Objective
from jdl.train.state import TrainState


@dataclasses.dataclass(frozen=True)
class StepSpec:
    """The static parts of a training step: the objective, step hooks, augmentation and device mesh."""

    objective: Objective
    hooks: tuple[Any, ...] = ()
    augment: Callable[[jax.Array, Any], Any] | None = None
    mesh: Any = None


def penalty_examples(state: TrainState, count: Any) -> jax.Array:
    """m of the L2 penalty: the training-set size recorded in the state by fit, else `count` (the batch's size)."""
    return jnp.where(state.examples > 0, state.examples, jnp.asarray(count, jnp.float32))


def example_cost(objective: Objective, state: TrainState, values: CostValues) -> Callable[..., jax.Array]:
    """cost(params, x_i, y_i): one example's cost in inference mode, weight 1, no penalty, no metrics."""
    quiet = objective.without_metrics()

    def cost(params, xi, yi):
        xb = jax.tree_util.tree_map(lambda a: a[None], xi)
        yb = jax.tree_util.tree_map(lambda a: a[None], yi)
        batch = (xb, yb, jnp.ones((1,), jnp.float32))
        return quiet.cost(state.model, params, state.model_state, batch, values, None, train=False, key=state.rng)[0]

    return cost


def all_finite(tree: Any) -> jax.Array:
    """True when every entry of every leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)]
    return functools.reduce(jnp.logical_and, leaves, jnp.asarray(True))


def step_candidate(spec: StepSpec, state: TrainState, x: Any, y: Any, w: jax.Array, values: CostValues,
                   index: jax.Array | None = None,
                   present: jax.Array | None = None,
                   check_grads: bool = True) -> tuple[TrainState, dict, jax.Array, tuple]:
    """One optimizer step without the non-finite guard: (new state, logs, finite flag, hook records).

    With a loss scale in the state (float16, jdl.train.loss_scale) the gradient is that of the
    scaled cost; a non-finite gradient with a finite cost skips the step (logs["skipped"] 1) and
    does not count as non-finite, and the hooks compute their own pass.

    index: the batch's example indices in the training set, handed to the step hooks.
    present: (batch,) True for the batch's real rows (None: all); logs["count"] is their number.
    check_grads: the finite flag covers the gradients too; False: the cost only (a pass over every
    gradient leaf costs about 5% of an MLP step; see train_chunk for how the gradients are still caught).
    """
    objective = spec.objective
    key = jax.random.fold_in(state.rng, state.step)
    if spec.augment is not None:
        key, augment_key = jax.random.split(key)
        x = spec.augment(augment_key, x)
    examples = penalty_examples(state, w.shape[0]) if objective.penalized else None

    def cost_fn(params):
        return objective.cost(state.model, params, state.model_state, (x, y, w), values, examples, train=True, key=key,
                              present=present)

    context = StepContext(objective, state, cost_fn, example_cost(objective, state, values), x, y, w, index)
    scale = state.loss_scale
    supplied = [None if scale is not None else hook.value_and_grad(context) for hook in spec.hooks]
    given = [s for s in supplied if s is not None]
    if len(given) > 1:
        raise ValueError(f"at most one step hook may compute the step's gradient, got {len(given)}")
    if given:
        (cost, (logs, model_state)), grads, _ = given[0]
    elif scale is not None:
        (cost, (logs, model_state)), grads = scale.value_and_grad(cost_fn, state.params)
    else:
        (cost, (logs, model_state)), grads = jax.value_and_grad(cost_fn, has_aux=True)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=constraints.project(state.model, optax.apply_updates(state.params, updates)),
        opt_state=opt_state,
        model_state=model_state,
    )
    count = jnp.sum(present, dtype=jnp.float32) if present is not None else jnp.float32(w.shape[0])
    logs = {"loss": cost, **logs, "weight": jnp.sum(w), "count": count}
    grads_finite = all_finite(grads) if check_grads or scale is not None else None
    finite = jnp.isfinite(cost) & grads_finite if check_grads else jnp.isfinite(cost)
    if scale is not None:  # an overflowing gradient skips the step and halves the scale; only a non-finite cost halts
        new_state = keep_weights_if(grads_finite, new_state, state).replace(loss_scale=scale.after(grads_finite))
        finite = jnp.isfinite(cost)
        logs["skipped"] = (finite & ~grads_finite).astype(jnp.float32)
    after = dataclasses.replace(context, grads=grads, new_state=new_state)
    records = tuple(hook.record(after, None if s is None else s[2]) for hook, s in zip(spec.hooks, supplied))
    return new_state, logs, finite, records


def keep_if(ok: jax.Array, new: Any, old: Any) -> Any:
    """`new` where ok else `old`, leaf by leaf (the non-finite guard)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)


def keep_weights_if(ok: jax.Array, new: TrainState, old: TrainState) -> TrainState:
    """`new` with its params, opt_state and model_state taken from `old` unless ok (the rest stays new's)."""
    return new.replace(params=keep_if(ok, new.params, old.params), opt_state=keep_if(ok, new.opt_state, old.opt_state),
                       model_state=keep_if(ok, new.model_state, old.model_state))


def train_step(spec: StepSpec, state: TrainState, x: Any, y: Any, w: jax.Array,
               values: CostValues) -> tuple[TrainState, dict]:
    """One guarded step: a non-finite loss or gradient leaves the state unchanged (logs["finite"] False)."""
    new_state, logs, finite, _ = step_candidate(spec, state, x, y, w, values)
    return keep_if(finite, new_state, state), {**logs, "finite": finite}


def gather(data: Any, index: jax.Array, mask: jax.Array, mesh: Any) -> Any:
    """(x, y, w, mask): the rows `index` (batch,) of on-device data (x, y, w), weights zeroed where mask is False."""
    x, y, w = jax.tree_util.tree_map(lambda a: jnp.take(a, index, axis=0), data)
    w = w * mask.astype(w.dtype)
    return sharding.shard_batch((x, y, w, mask), mesh)


def train_chunk(spec: StepSpec, plan: BatchPlan, chunk: Chunk, state: TrainState, halted: jax.Array,
                data: tuple[Any, Any, jax.Array], order: jax.Array, start: jax.Array,
                values: CostValues, *, guarded: bool = True) -> tuple[TrainState, jax.Array, dict]:
    """The steps of `chunk` in one `lax.scan`; with `guarded`, stop updating after a non-finite step.

    order: the epoch's permutation of the n examples (plan.order(seed, epoch), on the device); the
    chunk's batches are sliced from it at step `start`. Returns the state, the halted flag and
    per-step logs stacked along a leading (steps,) axis: logs["nonfinite"] marks the first step
    whose loss or gradient was not finite, logs["hooks"] holds the step hooks' records; steps after
    it log weight 0. Unguarded, the state keeps updating after that step (it is then garbage): the
    caller re-runs the epoch guarded when the halted flag comes back set, so the per-step select of
    the whole state (keep_if, ~10% of an MLP step) is paid only on failure. Unguarded steps check
    only their cost: a non-finite gradient makes the parameters non-finite, and with them the next
    step's cost, and the parameters are checked once after the chunk's last step; the guarded
    re-run then finds the first step whose cost or gradient was not finite, as before.
    """
    indices, masks = plan.chunk_indices(order, chunk, start)

    def body(carry, batch_plan):
        state, halted = carry
        index, mask = batch_plan
        x, y, w, present = gather(data, index, mask, spec.mesh)
        new_state, logs, finite, records = step_candidate(spec, state, x, y, w, values, index, present,
                                                          check_grads=guarded)
        logs = {**logs, "nonfinite": ~finite & ~halted, "weight": jnp.where(halted, 0.0, logs["weight"]),
                "count": jnp.where(halted, 0.0, logs["count"]), "hooks": records}
        if guarded:
            new_state = keep_if(finite & ~halted, new_state, state)
        return (new_state, halted | ~finite), logs

    (state, halted), logs = jax.lax.scan(body, (state, halted), (indices, masks))
    if not guarded:
        halted = halted | ~all_finite(state.params)
    return state, halted, logs


def predict_chunk(objective: Objective, mesh: Any, state: TrainState, x: Any, indices: jax.Array) -> tuple[Any, jax.Array]:
    """Inference-mode outputs and added losses for every batch of `indices` (batches, batch) -> (batches·batch, ...)."""

    def body(_, index):
        batch = sharding.shard_batch(jax.tree_util.tree_map(lambda a: jnp.take(a, index, axis=0), x), mesh)
        outputs, _, added = objective.forward(state.model, state.params, state.model_state, batch, train=False,
                                              key=state.rng)
        return None, (outputs, added)

    _, outputs = jax.lax.scan(body, None, indices)
    return jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:]), outputs)


def evaluate_padded(objective: Objective, mesh: Any, state: TrainState, data: tuple[Any, Any, jax.Array],
                    batches: int, count: jax.Array, values: CostValues) -> dict[str, jax.Array]:
    """{"loss", metrics...} over all rows of data (x, y, w) at once, in `batches` equal batches.

    Rows beyond the first `count` are padding and carry weight 0 in w; metrics see them with weight 0.
    """
    x, y, w = data
    rows = w.shape[0]
    outputs, added = predict_chunk(objective, mesh, state, x, jnp.arange(rows).reshape(batches, rows // batches))
    cost, logs = objective.cost_of_outputs(state.params, y, outputs, w, added, values, penalty_examples(state, count),
                                           jnp.arange(rows) < count)
    return {"loss": cost, **logs}


def predict_padded(objective: Objective, mesh: Any, state: TrainState, x: Any, batches: int) -> Any:
    """Outputs after each head's output activation for all rows of x, in `batches` equal batches."""
    rows = jax.tree_util.tree_leaves(x)[0].shape[0]
    outputs, _ = predict_chunk(objective, mesh, state, x, jnp.arange(rows).reshape(batches, rows // batches))
    if objective.single:
        return objective.heads[0].activation(outputs)
    return {h.name: h.activation(outputs[h.name]) for h in objective.heads}
