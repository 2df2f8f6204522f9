"""`Objective`: the one place a model's outputs become the cost; compared by value, so it keys compiled steps.

    cost = Σ_h loss_weight_h · (Σ_i w_i L_h(y_i, ŷ_i) / Σ_i w_i) + Σ_i w_i a_i / Σ_i w_i + λ/(2m)·Σ‖W‖²

(reduction "mean"; with "sum_over_batch_size", Keras' default, each Σ_i w_i is replaced by the
number of examples n.)

L_h is head h's per-example loss (averaged over any further axes, e.g. the time steps of a
sequence output, as Keras), a_i the per-example losses the model sowed into its "losses"
collection (a VAE's KL term), and the last term the notes' L2 penalty on kernels with m the
training-set size. The structure (losses, metrics, activations, whether there is a penalty) is
static; the numbers (loss weights, λ) are `CostValues`, an argument, so trials that differ only in
them share compiled code. Metrics see the outputs after the head's output activation; as in
Keras, a head's `metrics` are unweighted and its `weighted_metrics` see the example weights w.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdl import losses as losses_lib
from jdl import regularizers as regularizers_lib
from jdl.optim.penalty import l2_penalty
from jdl.train import precision as precision_lib

SINGLE = None  # the head name of a single-output model
ADDED_LOSSES = "losses"  # the collection a model sows per-example cost terms into


@dataclasses.dataclass(frozen=True)
class Head:
    """One output head: its name (SINGLE for a single-output model), loss, metrics and output activation.

    metrics are computed unweighted (every example counts 1), weighted_metrics with the example weights.
    """

    name: Any
    loss: Callable[..., jax.Array]
    metrics: tuple[tuple[str, Callable[..., jax.Array]], ...]
    activation: Callable[[jax.Array], jax.Array]
    weighted_metrics: tuple[tuple[str, Callable[..., jax.Array]], ...] = ()


class CostValues(NamedTuple):
    """The numbers of an objective (a pytree, traced): loss weights, one per head in order, and the L2 λ."""

    loss_weights: tuple[jax.Array, ...]
    l2: jax.Array


@dataclasses.dataclass(frozen=True)
class Objective:
    """Per-head losses, metrics and activations, the L2 penalty's presence and the model's mode keywords.

    Build one with `Trainer`; `cost` (a forward pass, then `cost_of_outputs`) is what the training
    step differentiates, evaluation scores, the non-finite report recomputes and the gradient
    monitor evaluates one example at a time.
    """

    heads: tuple[Head, ...]
    penalty: bool = False
    train_kwargs: tuple[tuple[str, bool], ...] = ()
    eval_kwargs: tuple[tuple[str, bool], ...] = ()
    regularizers: regularizers_lib.Declared = ()  # the model's per-layer (path, regularizer) pairs: + Σ_l R_l(W_l)
    precision: str = "float32"  # the forward pass's compute dtype (jdl.train.precision); the cost stays float32
    reduction: str = "mean"

    @property
    def penalized(self) -> bool:
        """Whether the cost has a penalty term (the optimizer's L2 or the model's regularizers), which needs m."""
        return self.penalty or bool(self.regularizers)

    @property
    def head_names(self) -> tuple[Any, ...]:
        return tuple(h.name for h in self.heads)

    @property
    def single(self) -> bool:
        return self.head_names == (SINGLE,)

    def log_name(self, name: str, head: Any) -> str:
        """Key of a metric in the logs: "loss", "accuracy" or, with several heads, "<head>_accuracy"."""
        return name if head is SINGLE else f"{head}_{name}"

    def log_names(self) -> list[str]:
        """Every key a training step reports, in order: loss, per-head losses, metrics, weighted metrics."""
        return [name for name, _ in self.log_weighting()]

    def log_weighting(self) -> tuple[tuple[str, str], ...]:
        """(name, "weight" or "count") for every log name: what its epoch mean weights each step by.

        Σw for the cost under reduction "mean" and for weighted metrics; the number of examples for
        the cost under "sum_over_batch_size" and for unweighted metrics (Keras' epoch means).
        """
        cost = "weight" if self.reduction == "mean" else "count"
        pairs = [("loss", cost)]
        if not self.single:
            pairs += [(self.log_name("loss", h.name), cost) for h in self.heads]
        pairs += [(self.log_name(m, h.name), "count") for h in self.heads for m, _ in h.metrics]
        pairs += [(self.log_name(m, h.name), "weight") for h in self.heads for m, _ in h.weighted_metrics]
        return tuple(pairs)

    def without_metrics(self) -> Objective:
        """The same cost with no metrics (what per-example and monitor passes evaluate)."""
        return dataclasses.replace(self, heads=tuple(dataclasses.replace(h, metrics=(), weighted_metrics=())
                                                         for h in self.heads))

    # -- the cost ---------------------------------------------------------------------------------

    def forward(self, model: Any, params: Any, model_state: Mapping[str, Any], x: Any, *, train: bool,
                key: jax.Array) -> tuple[Any, dict[str, Any], jax.Array]:
        """(outputs, updated model state, added per-example loss (batch,)) in training or inference mode.

        A model adds a term to its cost with `self.sow("losses", name, values)`, values (batch, ...):
        each example's values are summed. Batch statistics update in training mode only.
        """
        variables = {"params": params, **model_state}
        kwargs = dict(self.train_kwargs if train else self.eval_kwargs)
        dropout_key, sample_key = jax.random.split(key)
        rngs = {"dropout": dropout_key, "sample": sample_key}
        mutable = [*model_state, ADDED_LOSSES] if train else [ADDED_LOSSES]
        variables["params"], x = precision_lib.compute(self.precision, params, x)
        outputs, updates = model.apply(variables, x, rngs=rngs, mutable=mutable, **kwargs)
        outputs, updates = precision_lib.outputs(self.precision, outputs), precision_lib.like(self.precision, dict(updates), model_state)
        added = added_loss(updates.pop(ADDED_LOSSES, {}), batch_size(x))
        new_state = {**model_state, **updates} if train else dict(model_state)
        return outputs, new_state, added

    def score(self, y: Any, outputs: Any, w: jax.Array, added: jax.Array | None, values: CostValues,
              present: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(cost without the penalty, logs) of `outputs` against targets `y` with example weights `w`.

        present: (batch,) 1 for the batch's real rows, 0 for padding (None: every row is real); it
        counts the examples of unweighted metrics and of the "sum_over_batch_size" reduction.
        """
        present = jnp.ones(w.shape, jnp.float32) if present is None else present.astype(jnp.float32)
        logs: dict[str, jax.Array] = {}
        cost = jnp.zeros((), jnp.float32)
        if added is not None:
            cost = cost + self.reduce(added, w, present)
        for head, weight in zip(self.heads, values.loss_weights):
            y_h, out_h = _pick(y, head.name), _pick(outputs, head.name)
            head_cost = self.reduce(example_means(per_example_loss(head.loss, y_h, out_h)), w, present)
            cost = cost + weight * head_cost
            if head.name is not SINGLE:
                logs[self.log_name("loss", head.name)] = head_cost
            if head.metrics or head.weighted_metrics:
                predictions = head.activation(out_h)
                for metrics, weights in ((head.metrics, present), (head.weighted_metrics, w)):
                    weights = metric_weights(weights, y_h, is_sparse(head.loss))
                    for name, metric in metrics:
                        logs[self.log_name(name, head.name)] = jnp.asarray(
                            metric(y_h, predictions, sample_weight=weights), jnp.float32)
        return cost, logs

    def reduce(self, per_example: jax.Array, w: jax.Array, present: jax.Array) -> jax.Array:
        """Σ_i w_i L_i / Σ_i w_i (reduction "mean") or Σ_i w_i L_i / Σ_i present_i ("sum_over_batch_size")."""
        if self.reduction == "mean":
            return losses_lib.reduce_loss(per_example, w, "mean")
        return jnp.sum(w * per_example) / jnp.maximum(jnp.sum(present), 1.0)

    def penalty_term(self, params: Any, values: CostValues, examples: jax.Array) -> jax.Array | None:
        """λ/(2m)·Σ‖W‖² plus Σ_l R_l(W_l) with m = `examples`, or None without either."""
        terms = [l2_penalty(params, values.l2, examples)] if self.penalty else []
        if self.regularizers:
            terms.append(regularizers_lib.total(self.regularizers, params, examples))
        return sum(terms[1:], terms[0]) if terms else None

    def cost_of_outputs(self, params: Any, y: Any, outputs: Any, w: jax.Array, added: jax.Array | None,
                        values: CostValues, examples: jax.Array | None,
                        present: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(cost, logs): `score` plus the L2 penalty (left out when examples is None)."""
        cost, logs = self.score(y, outputs, w, added, values, present)
        penalty = None if examples is None else self.penalty_term(params, values, examples)
        return (cost if penalty is None else cost + penalty), logs

    def cost(self, model: Any, params: Any, model_state: Mapping[str, Any], batch: tuple[Any, Any, jax.Array],
             values: CostValues, examples: jax.Array | None, *, train: bool, key: jax.Array,
             present: jax.Array | None = None) -> tuple[jax.Array, tuple[dict[str, jax.Array], dict[str, Any]]]:
        """(cost, (logs, updated model state)) of one batch (x, y, w): forward pass, then `cost_of_outputs`.

        examples: the m of the L2 penalty (None leaves the penalty out, as per-example losses do).
        present: the batch's real rows (see `score`).
        """
        x, y, w = batch
        outputs, new_state, added = self.forward(model, params, model_state, x, train=train, key=key)
        cost, logs = self.cost_of_outputs(params, y, outputs, w, added, values, examples, present)
        return cost, (logs, new_state)


def make_values(objective: Objective, loss_weights: Mapping[Any, float], l2: float | None) -> CostValues:
    """The CostValues of `objective` for these numbers (float32 scalars)."""
    return CostValues(
        tuple(np.float32(loss_weights.get(h.name, 1.0)) for h in objective.heads),
        np.float32(0.0 if l2 is None else l2),
    )


def _pick(tree: Any, head: Any) -> Any:
    return tree if head is SINGLE else tree[head]


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


def batch_size(x: Any) -> int:
    """The leading (example) axis length of the first leaf of x."""
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
