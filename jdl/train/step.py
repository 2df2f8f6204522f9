"""Pure training and evaluation steps: (state, batch) -> (state, metrics), and their scan forms.

A batch is (x, y, w): inputs (a pytree of (batch, ...) arrays), targets (an array, or a dict
of arrays for several output heads) and per-example weights (batch,). Everything here is a
pure function of its arguments; `Trainer` closes over an `Objective` and jit-compiles them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jdl import losses as losses_lib
from jdl.train import sharding
from jdl.train.state import TrainState

SINGLE = None  # the head name of a single-output model


@dataclasses.dataclass(frozen=True, eq=False)
class Objective:
    """How to score a model's outputs: per-head losses, loss weights, metrics and output activations.

    cost = Σ_h loss_weight_h · (Σ_i w_i L_h(y_i, ŷ_i) / Σ_i w_i) + penalty(params, batch size).
    Metrics see the outputs after the head's output activation (probabilities for classifiers).
    """

    losses: Mapping[Any, Callable[..., jax.Array]]
    loss_weights: Mapping[Any, float]
    metrics: Mapping[Any, tuple[tuple[str, Callable[..., jax.Array]], ...]]
    activations: Mapping[Any, Callable[[jax.Array], jax.Array]]
    penalty: Callable[[Any, int], jax.Array]
    train_kwargs: Mapping[str, bool]
    eval_kwargs: Mapping[str, bool]
    mesh: Any = None
    augment: Callable[[jax.Array, Any], Any] | None = None
    probe: Any = None

    @property
    def heads(self) -> tuple[Any, ...]:
        return tuple(self.losses)

    def log_name(self, name: str, head: Any) -> str:
        """Key of a metric in the logs: "loss", "accuracy" or, with several heads, "<head>_accuracy"."""
        return name if head is SINGLE else f"{head}_{name}"

    def log_names(self) -> list[str]:
        """Every key a training step reports, in order: loss, per-head losses, metrics."""
        names = ["loss"]
        if self.heads != (SINGLE,):
            names += [self.log_name("loss", h) for h in self.heads]
        names += [self.log_name(m, h) for h in self.heads for m, _ in self.metrics.get(h, ())]
        return names


def _takes_reduction(fn: Callable[..., Any]) -> bool:
    try:
        return "reduction" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def per_example_loss(fn: Callable[..., jax.Array], y: jax.Array, out: jax.Array) -> jax.Array:
    """Per-example loss of a jdl loss (reduction="none") or of a plain fn(y_true, y_pred) -> (batch, ...)."""
    return fn(y, out, reduction="none") if _takes_reduction(fn) else fn(y, out)


def is_sparse(fn: Callable[..., Any]) -> bool:
    """True for sparse_categorical_crossentropy (integer labels without a class axis)."""
    base = fn.func if isinstance(fn, functools.partial) else fn
    return base is losses_lib.sparse_categorical_crossentropy


def example_means(per_example: jax.Array) -> jax.Array:
    """(batch,) losses: the mean over any further axes, e.g. time steps of a sequence output (as Keras)."""
    return per_example if per_example.ndim <= 1 else per_example.reshape(per_example.shape[0], -1).mean(axis=1)


def metric_weights(w: jax.Array, labels: jax.Array, sparse: bool) -> jax.Array:
    """Example weights (batch,) broadcast to one per label: (batch, T) for sequence labels."""
    shape = labels.shape if sparse else labels.shape[:-1] if labels.ndim > 2 else labels.shape[:1]
    return jnp.broadcast_to(w.reshape((-1,) + (1,) * (len(shape) - 1)), shape)


def _head(tree: Any, head: Any) -> Any:
    return tree if head is SINGLE else tree[head]


def score(objective: Objective, y: Any, outputs: Any, w: jax.Array,
          added: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(cost without penalty, logs) of `outputs` against targets `y` with example weights `w`.

    added: per-example losses the model sowed (see `forward`), weighted like the heads' losses.
    """
    logs: dict[str, jax.Array] = {}
    cost = jnp.zeros((), jnp.float32)
    if added is not None:
        cost = cost + losses_lib.reduce_loss(added, w, "mean")
    for head, fn in objective.losses.items():
        y_h, out_h = _head(y, head), _head(outputs, head)
        head_cost = losses_lib.reduce_loss(example_means(per_example_loss(fn, y_h, out_h)), w, "mean")
        cost = cost + objective.loss_weights.get(head, 1.0) * head_cost
        if head is not SINGLE:
            logs[objective.log_name("loss", head)] = head_cost
        predictions = objective.activations[head](out_h)
        for name, metric in objective.metrics.get(head, ()):
            weights = metric_weights(w, y_h, is_sparse(fn))
            logs[objective.log_name(name, head)] = jnp.asarray(metric(y_h, predictions, sample_weight=weights), jnp.float32)
    return cost, logs


def forward(state: TrainState, params: Any, x: Any, *, objective: Objective, train: bool,
            key: jax.Array) -> tuple[Any, dict, jax.Array]:
    """(outputs, updated model state, added per-example loss (batch,)) in training or inference mode.

    A model adds a term to its cost with `self.sow("losses", name, values)`, values (batch, ...):
    each example's values are summed, and the cost takes their weighted mean like any loss (a
    VAE's KL term, an auxiliary head's penalty). Batch statistics update in training mode only.
    """
    variables = {"params": params, **state.model_state}
    kwargs = objective.train_kwargs if train else objective.eval_kwargs
    dropout_key, sample_key = jax.random.split(key)
    rngs = {"dropout": dropout_key, "sample": sample_key}
    mutable = [*state.model_state, ADDED_LOSSES] if train else [ADDED_LOSSES]
    outputs, updates = state.apply_fn(variables, x, rngs=rngs, mutable=mutable, **kwargs)
    updates = dict(updates)
    added = added_loss(updates.pop(ADDED_LOSSES, {}), batch_size(x))
    model_state = {**state.model_state, **updates} if train else state.model_state
    return outputs, model_state, added


ADDED_LOSSES = "losses"


def batch_size(x: Any) -> int:
    return int(jax.tree_util.tree_leaves(x)[0].shape[0])


def added_loss(sown: Any, n: int) -> jax.Array:
    """Σ over sown leaves of each example's summed values: (n,); zeros when the model sowed nothing."""
    total = jnp.zeros((n,), jnp.float32)
    for leaf in jax.tree_util.tree_leaves(sown):
        if leaf.ndim == 0 or leaf.shape[0] != n:
            raise ValueError(
                f"a loss sown into the {ADDED_LOSSES!r} collection must have a leading batch axis ({n}, ...), "
                f"got shape {tuple(leaf.shape)}"
            )
        total = total + jnp.sum(leaf.reshape(n, -1), axis=1).astype(jnp.float32)
    return total


def all_finite(tree: Any) -> jax.Array:
    """True when every entry of every leaf is finite."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)]
    return functools.reduce(jnp.logical_and, leaves, jnp.asarray(True))


def step_candidate(objective: Objective, state: TrainState, x: Any, y: Any, w: jax.Array,
                   examples: jax.Array, index: jax.Array | None = None) -> tuple[TrainState, dict, jax.Array]:
    """One optimizer step without the non-finite guard: (new state, logs, finite flag).

    examples: the training-set size m of the penalty λ/(2m)·Σ‖W‖². index: the batch's example
    indices in the training set, recorded by a gradient monitor (objective.probe) when there is one.
    """
    key = jax.random.fold_in(state.rng, state.step)
    if objective.augment is not None:
        key, augment_key = jax.random.split(key)
        x = objective.augment(augment_key, x)

    def cost_fn(params):
        outputs, model_state, added = forward(state, params, x, objective=objective, train=True, key=key)
        cost, logs = score(objective, y, outputs, w, added)
        cost = cost + objective.penalty(params, examples)
        return cost, (logs, model_state)

    shared = None if objective.probe is None else objective.probe.shared_pass(objective, state, x, y, cost_fn)
    if shared is None:
        (cost, (logs, model_state)), grads = jax.value_and_grad(cost_fn, has_aux=True)(state.params)
    else:
        (cost, (logs, model_state)), grads, captures = shared.value_and_grad(cost_fn, state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        model_state=model_state,
    )
    logs = {"loss": cost, **logs, "weight": jnp.sum(w)}
    if objective.probe is not None:
        logs["monitor"] = objective.probe.record(objective, state, grads, new_state, x, y, w, index,
                                                 None if shared is None else (shared, captures))
    return new_state, logs, jnp.isfinite(cost) & all_finite(grads)


def keep_if(ok: jax.Array, new: Any, old: Any) -> Any:
    """`new` where ok else `old`, leaf by leaf (the non-finite guard)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)


def train_step(objective: Objective, state: TrainState, x: Any, y: Any, w: jax.Array,
               examples: jax.Array) -> tuple[TrainState, dict]:
    """One guarded step: a non-finite loss or gradient leaves the state unchanged (logs["finite"] False)."""
    new_state, logs, finite = step_candidate(objective, state, x, y, w, examples)
    return keep_if(finite, new_state, state), {**logs, "finite": finite}


def gather(data: tuple[Any, Any, jax.Array], index: jax.Array, mask: jax.Array, mesh: Any) -> tuple[Any, Any, jax.Array]:
    """The batch at `index` (batch,) from on-device data, weights zeroed where mask is False."""
    x, y, w = jax.tree_util.tree_map(lambda a: jnp.take(a, index, axis=0), data)
    w = w * mask.astype(w.dtype)
    return sharding.shard_batch((x, y, w), mesh)


def train_chunk(
    objective: Objective,
    state: TrainState,
    halted: jax.Array,
    data: tuple[Any, Any, jax.Array],
    indices: jax.Array,
    masks: jax.Array,
    examples: jax.Array,
) -> tuple[TrainState, jax.Array, dict]:
    """Run the steps of `indices` (steps, batch) in one `lax.scan`; stop updating after a non-finite step.

    Returns the state, the halted flag and per-step logs stacked along a leading (steps,) axis;
    logs["nonfinite"] marks the first step whose loss or gradient was not finite.
    """

    def body(carry, batch_plan):
        state, halted = carry
        index, mask = batch_plan
        x, y, w = gather(data, index, mask, objective.mesh)
        new_state, logs, finite = step_candidate(objective, state, x, y, w, examples, index)
        ok = finite & ~halted
        logs = {**logs, "nonfinite": ~finite & ~halted, "weight": jnp.where(halted, 0.0, logs["weight"])}
        return (keep_if(ok, new_state, state), halted | ~finite), logs

    (state, halted), logs = jax.lax.scan(body, (state, halted), (indices, masks))
    return state, halted, logs


def predict_chunk(objective: Objective, state: TrainState, x: Any, indices: jax.Array,
                  masks: jax.Array) -> tuple[Any, jax.Array]:
    """Inference-mode outputs and added losses for every batch of `indices` (batches, batch) -> (batches·batch, ...)."""

    def body(_, batch_plan):
        index, mask = batch_plan
        batch = jax.tree_util.tree_map(lambda a: jnp.take(a, index, axis=0), x)
        batch = sharding.shard_batch(batch, objective.mesh)
        outputs, _, added = forward(state, state.params, batch, objective=objective, train=False, key=state.rng)
        return None, (outputs, added)

    _, outputs = jax.lax.scan(body, None, (indices, masks))
    return jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:]), outputs)
