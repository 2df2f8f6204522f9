"""`Trainer`: Keras-style fit / evaluate / predict over pure, jit-compiled steps with explicit state."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from jdl import _checks, metrics as metrics_lib, optim
from jdl import losses as losses_lib
from jdl import regularizers
from jdl.data.batching import MAX_STEPS_PER_EXECUTION, BatchPlan
from jdl.nn import activations
from jdl.nn.mode import mode_kwargs
from jdl.train import compiled, distributed, inputs, sharding, streaming
from jdl.train import loss_scale
from jdl.train import precision as precision_lib
from jdl.train.callbacks.base import Callback, CallbackList, FitContext
from jdl.train.callbacks.progress import ProgressBar
from jdl.train.history import History
from jdl.train.loop import EpochLoop
from jdl.train.objective import SINGLE, Head, Objective, is_sparse, make_values
from jdl.train.state import TrainState, check_model, create_state
from jdl.train.step import StepSpec

EVAL_BATCH_SIZE = 1024
LOSS_REDUCTIONS = ("mean", "sum_over_batch_size")


class Trainer:
    """Train a Flax model with a loss, an optimizer and metrics; state is explicit, steps are pure.

    loss: a name ("sparse_categorical_crossentropy"), a jdl loss, a callable fn(y_true, y_pred) ->
    per-example loss, or a dict {head: loss} for a model returning a dict of outputs.
    optimizer: a `jdl.optim` optimizer, a name, or an optax GradientTransformation.
    metrics: names or callables fn(y_true, y_pred, sample_weight=...), a list for every head or a dict per head;
    unweighted, as Keras' `metrics`: every example counts 1 whatever its sample or class weight.
    weighted_metrics: the same forms, computed with the example weights (Keras' `weighted_metrics`);
    a name also in `metrics` is logged as "weighted_<name>".
    loss_weights: {head: weight} (a number for a single head), the weights of the heads' costs.
    loss_reduction: "mean" (default) gives the cost Σ_i w_i L_i / Σ_i w_i over a batch; Keras' default,
    "sum_over_batch_size", gives Σ_i w_i L_i / n. They agree without weights; with class or sample
    weights Keras' cost (and so its gradient) scales with the batch's mean weight, jdl's does not.
    output_activation: applied by `predict` and before metrics; by default the model's
    `output_activation` attribute, else sigmoid/softmax for cross-entropies on logits, else linear.
    steps_per_execution: optimizer steps per compiled dispatch (default: up to 256).
    precision: "float32", "bfloat16" or "float16", the dtype of the forward and backward pass;
    parameters, optimizer state, loss and metrics stay float32 (see `jdl.train.precision`); float16
    trains with dynamic loss scaling (`jdl.train.loss_scale`, Keras' LossScaleOptimizer defaults).
    accumulate: k > 1 makes one optimizer update per k steps on their mean gradient
    (optax.MultiSteps): batch_size b with accumulate k trains like batch k·b, in k·b/devices memory.

    Weights as Keras: `fit`'s class_weight weights the training cost only; sample_weight travels with
    its rows, so the rows validation_split holds out keep theirs, and validation_data's own weights,
    if given, weight the validation cost and weighted metrics.

    Compiled steps are cached by value: Trainers with equal models, losses, metrics and optimizer
    structures share them, whatever their learning rates, momenta, weight decays, L2 λ or loss weights.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: Any,
        optimizer: Any = "adam",
        metrics: Sequence[Any] | Mapping[Any, Sequence[Any]] = (),
        loss_weights: Mapping[Any, float] | None = None,
        *,
        weighted_metrics: Sequence[Any] | Mapping[Any, Sequence[Any]] = (),
        loss_reduction: str = "mean",
        output_activation: Any = None,
        steps_per_execution: int | None = None,
        precision: str = "float32",
        accumulate: int = 1,
    ) -> None:
        self.model = check_model(model)
        self.optimizer = optim.as_optimizer(optim.get(optimizer) if isinstance(optimizer, str) else optimizer)
        _checks.check_number(accumulate, "accumulate", integer=True, positive=True)
        if accumulate != self.optimizer.accumulate:
            self.optimizer = dataclasses.replace(self.optimizer, accumulate=accumulate)
        self.losses = _resolve_losses(loss)
        self.loss_weights = _resolve_loss_weights(self.losses, loss_weights)
        self.metrics = _resolve_metrics(self.losses, metrics)
        self.weighted_metrics = _resolve_metrics(self.losses, weighted_metrics, "weighted_metrics", self.metrics)
        _checks.check_choice(loss_reduction, "loss_reduction", LOSS_REDUCTIONS)
        _check_metric_targets(self.losses, self.metrics, self.weighted_metrics)
        self.activations = _resolve_activations(self.model, self.losses, output_activation)
        if steps_per_execution is not None:
            _checks.check_number(steps_per_execution, "steps_per_execution", integer=True, positive=True)
        self.steps_per_execution = steps_per_execution
        self.mesh = sharding.data_mesh()
        self.objective = Objective(
            heads=tuple(Head(h, fn, self.metrics.get(h, ()), self.activations[h], self.weighted_metrics.get(h, ()))
                        for h, fn in self.losses.items()),
            penalty=self.optimizer.l2 is not None,
            train_kwargs=tuple(mode_kwargs(self.model, True).items()),
            eval_kwargs=tuple(mode_kwargs(self.model, False).items()),
            regularizers=regularizers.declared(self.model),
            precision=precision_lib.check(precision),
            reduction=loss_reduction,
        )
        self._warned_multi_hot = False
        self.values = make_values(self.objective, self.loss_weights, self.optimizer.l2)

    # -- state ----------------------------------------------------------------------------------

    def init(self, x: Any, seed: int = 0, *, steps_per_epoch: int | None = None) -> TrainState:
        """A fresh TrainState for inputs like `x` (only the first example's shape is used)."""
        x = inputs.to_host(inputs.model_inputs(self.model, x), "x")
        inputs.leading_size(x, "x")
        sample = jax.tree_util.tree_map(lambda a: a[:1], x)
        state = create_state(self.model, sample, self.optimizer, seed, steps_per_epoch=steps_per_epoch)
        return state.replace(loss_scale=loss_scale.for_precision(self.objective.precision))

    # -- the functional core --------------------------------------------------------------------

    def train_step(self, state: TrainState, batch: Sequence[Any]) -> tuple[TrainState, dict[str, jax.Array]]:
        """One pure, jit-compiled optimizer step on batch (x, y) or (x, y, sample_weight).

        A non-finite loss or gradient leaves the state unchanged and sets metrics["finite"] False.
        The L2 penalty's m is state.examples (set by fit), else the batch's size.
        """
        x, y, w = inputs.unpack_batch(batch)
        return compiled.train_step(StepSpec(self.objective, mesh=None))(state, x, y, w, self.values)

    def eval_step(self, state: TrainState, batch: Sequence[Any]) -> dict[str, jax.Array]:
        """Loss and metrics of one batch in inference mode (dropout off, batch-norm running statistics)."""
        x, y, w = inputs.unpack_batch(batch)
        return compiled.eval_step(self.objective)(state, x, y, w, self.values)

    # -- fit --------------------------------------------------------------------------------------

    def fit(
        self,
        x: Any,
        y: Any,
        epochs: int = 1,
        batch_size: int | None = 32,
        validation_split: float = 0.0,
        validation_data: Sequence[Any] | None = None,
        shuffle: bool = True,
        class_weight: Mapping[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        callbacks: Sequence[Callback] = (),
        verbose: int = 1,
        seed: int = 0,
        state: TrainState | None = None,
        augment: Callable[[jax.Array, Any], Any] | None = None,
        steps_per_epoch: int | None = None,
        read_options: Any = None,
        population: Any = None,
    ) -> tuple[TrainState, History]:
        """Train for `epochs` and return (state, History). Keras semantics, explicit state.

        x, y: arrays, pytrees of arrays, or (nested) lists of numbers (as NumPy converts them); a list
        of arrays is several inputs only for a model that takes several. class_weight {class: weight}
        multiplies the training rows' sample weights (never validation's); a class the model does not
        output is an error. validation_split takes the last fraction of (x, y, sample_weight) before
        shuffling. batch_size None is full-batch gradient descent; 1 is SGD; the last partial batch
        is trained on, not dropped (it compiles once more for its shape). Epoch e visits the examples
        in a permutation drawn from (seed, e), so a fit resumed at epoch e continues exactly.
        `augment(key, x)` is applied to each training batch on the device. The given `state` is
        never modified or donated.

        x may also be read while training (`jdl.train.streaming`), with y None: a data source (a
        `jdl.data.packed` set, a `grain.MapDataset` or any random-access source of (x, y[, w])
        records), read by Grain in the same per-epoch order as arrays (`read_options`: a
        `jdl.data.sources.ReadOptions`); or an iterable of batches (x, y[, w]), trained for
        `steps_per_epoch` batches per epoch.

        population: P, a `jdl.train.Population` or a list of dicts of member settings trains P members
        of this model in one compiled step, vmapped over a member axis, and returns ([P states],
        [P Histories]); members differ in seed, learning rate, momentum, weight decay, clip norms,
        L2 λ and loss weights (see `jdl.train.population`). callbacks is then one list per member
        (or one list copied for each member, without file-writing callbacks).
        """
        if population is not None:
            from jdl.train import population_fit

            if steps_per_epoch is not None or read_options is not None:
                raise ValueError("population trains on arrays in memory; steps_per_epoch and read_options "
                                 "(data read while training) cannot be combined with it")
            return population_fit.fit(
                self, x, y, population, epochs=epochs, batch_size=batch_size, validation_split=validation_split,
                validation_data=validation_data, shuffle=shuffle, class_weight=class_weight,
                sample_weight=sample_weight, initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose,
                seed=seed, state=state, augment=augment)
        _check_fit_arguments(epochs, initial_epoch, validation_split, seed, verbose, shuffle, augment, callbacks, state)
        callbacks = list(callbacks)
        if class_weight is not None:
            if not self.objective.single:
                raise ValueError("class_weight is only supported for single-output models; use sample_weight per head")
            losses_lib.check_class_weight(class_weight)
        feed = streaming.open_feed(  # None for arrays; a source or an iterable is checked and laid out here
            self, x, y, batch_size=batch_size, steps_per_epoch=steps_per_epoch, shuffle=shuffle,
            sample_weight=sample_weight, class_weight=class_weight, validation_split=validation_split,
            validation_data=validation_data, read_options=read_options)
        if feed is None:
            data = inputs.data(self.objective, inputs.model_inputs(self.model, x), y, sample_weight)
            data, validation = self._split(data, validation_data, validation_split)
        else:
            data, validation, batch_size = feed.sample, feed.validation, feed.batch_size

        n = data.size if feed is None else feed.n
        batch_size = inputs.batch_size_for(batch_size, n, self.mesh)
        plan = BatchPlan(n, batch_size, shuffle, self.steps_per_execution or MAX_STEPS_PER_EXECUTION,
                         sharding.device_count(self.mesh)) if feed is None else feed.plan

        caller_state = state is not None
        if state is None:
            state = self.init(data.x, seed, steps_per_epoch=plan.steps) if feed is None else feed.init(self, seed)
        elif state.optimizer != self.optimizer.structure(plan.steps):
            warnings.warn(
                "state was built with another optimizer transformation than this Trainer's (or another "
                "steps_per_epoch for its schedule); fit continues with the state's own optimizer, state.tx",
                RuntimeWarning, stacklevel=2,
            )
        if state.loss_scale is None:
            state = state.replace(loss_scale=loss_scale.for_precision(self.objective.precision))
        data = inputs.check_against_model(self.objective, state, data) if feed is None else feed.check(self, state)
        if class_weight is not None:
            data.w = data.w * inputs.class_weights(self.objective, state, data, class_weight)
        if validation is not None:
            validation = inputs.check_against_model(self.objective, state, validation, name="validation_data ")
        self._warn_multi_hot(data)

        history = History(params={"epochs": epochs, "batch_size": batch_size, "steps": plan.steps,
                                  "samples": n, "verbose": verbose})
        if verbose and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar(verbose))
        context = FitContext(trainer=self, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=plan.steps,
                             batch_size=batch_size, history=history)
        callback_list = CallbackList([history, *callbacks], context)
        hooked = [(c, c.step_hook(self.model)) for c in callbacks]
        hooked = [(c, h) for c, h in hooked if h is not None]
        spec = StepSpec(self.objective, tuple(h for _, h in hooked), augment, self.mesh)
        if caller_state and not callback_list.holds_state:
            state = compiled.copy(state)
        state = sharding.replicate(state.replace(examples=np.float32(n)), self.mesh)
        loop = (EpochLoop if feed is None else feed.loop)(
            spec, plan, None if feed else sharding.shard_rows((data.x, data.y, data.w), self.mesh), self.values, seed,
            callback_list, context, tuple(c for c, _ in hooked), None if validation is None else self._validator(validation))
        try:
            state = loop.run(state)
        finally:
            callback_list.close()
        return state, history

    def _split(self, data: inputs.Data, validation_data: Any, validation_split: float) -> tuple[inputs.Data, Any]:
        """(training data, validation data or None) from validation_data or the last validation_split of data."""
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight), "
                    f"got {_checks.describe(validation_data)}"
                )
            padded = [*validation_data, *([None] * (3 - len(validation_data)))]
            padded[0] = inputs.model_inputs(self.model, padded[0], "validation_data x")
            return data, inputs.data(self.objective, *padded, name="validation_data ")
        if validation_split > 0:
            split_at = int(math.floor(data.size * (1.0 - validation_split)))
            if split_at == 0 or split_at == data.size:
                raise ValueError(
                    f"validation_split={validation_split} leaves {data.size - split_at} of {data.size} examples "
                    "for validation and needs at least one for each of training and validation"
                )
            return data.take(slice(0, split_at)), data.take(slice(split_at, None))
        return data, None

    def _warn_multi_hot(self, data: inputs.Data) -> None:
        """Warn once when "accuracy" (categorical on k > 1 outputs, as Keras) meets multi-hot targets."""
        if self._warned_multi_hot:
            return
        y = {SINGLE: data.y} if self.objective.single else data.y
        for head in self.objective.heads:
            named = [n for n, fn in (*head.metrics, *head.weighted_metrics) if fn is metrics_lib.accuracy]
            if named and not is_sparse(head.loss) and metrics_lib.is_multi_hot(y[head.name]):
                self._warned_multi_hot = True
                warnings.warn(
                    f"metric {named[0]!r} takes the argmax over the {np.shape(y[head.name])[-1]} outputs (categorical "
                    "accuracy, as Keras), but the targets are multi-hot (rows do not sum to 1); for multi-label "
                    "targets use 'binary_accuracy' (element-wise, threshold 0.5)", UserWarning, stacklevel=3)
                return

    # -- evaluate / predict -----------------------------------------------------------------------

    def _layout(self, n: int, batch_size: int | None) -> tuple[int, int]:
        """(batches, batch) of the padded evaluation layout of n examples: a few fixed shapes for any n.

        One batch of the next power of two up to 1024 examples; beyond, batches of 1024 (or
        batch_size), their number rounded up to 2^k or 1.5·2^k. The batch divides over the devices.
        """
        if batch_size is not None:
            _checks.check_number(batch_size, "batch_size", integer=True, positive=True)
        count = sharding.device_count(self.mesh)
        batch = batch_size if batch_size is not None else min(_bucket(n, powers_only=True), EVAL_BATCH_SIZE)
        batch = int(math.ceil(batch / count) * count)
        return _bucket(math.ceil(n / batch)), batch

    def _validator(self, data: inputs.Data) -> Callable[[TrainState], dict[str, jax.Array]]:
        """state -> validation logs on the device, with the padded data placed once."""
        batches, batch = self._layout(data.size, None)
        padded = data.padded(batches * batch)
        device = sharding.shard_rows((padded.x, padded.y, padded.w), self.mesh)
        run = compiled.evaluate(self.objective, self.mesh, batches)
        count = np.float32(data.size)
        return lambda state: run(state, device, count, self.values)

    def evaluate(self, state: TrainState, x: Any, y: Any, *, batch_size: int | None = None,
                 sample_weight: Any = None) -> dict[str, float]:
        """Loss and metrics over the whole of (x, y) in inference mode: {"loss": ..., "<metric>": ...}.

        sample_weight weights the loss and the weighted metrics; `metrics` count every example once.
        Metrics are computed once on all predictions (exact F1/AUC), not averaged over batches. The
        data is padded to one of a few fixed sizes (padding rows have weight 0), so data sets of
        nearby sizes share one compiled evaluation.
        """
        inputs.check_state(state)
        data = inputs.data(self.objective, inputs.model_inputs(self.model, x), y, sample_weight)
        data = inputs.check_against_model(self.objective, state, data)
        self._warn_multi_hot(data)
        batches, batch = self._layout(data.size, batch_size)
        padded = data.padded(batches * batch)
        device = sharding.shard_rows((padded.x, padded.y, padded.w), self.mesh)
        logs = compiled.evaluate(self.objective, self.mesh, batches)(state, device, np.float32(data.size), self.values)
        return {k: float(v) for k, v in jax.device_get(logs).items()}

    def predict(self, state: TrainState, x: Any, *, batch_size: int | None = None) -> Any:
        """Model outputs after the output activation (probabilities for classifiers): NumPy arrays (n, ...)."""
        inputs.check_state(state)
        x = inputs.to_host(inputs.model_inputs(self.model, x), "x")
        n = inputs.leading_size(x, "x")
        inputs.check_inputs(self.objective, state, x)
        batches, batch = self._layout(n, batch_size)
        index = np.minimum(np.arange(batches * batch), n - 1)
        padded = jax.tree_util.tree_map(lambda a: a[index], x)
        outputs = compiled.predict(self.objective, self.mesh, batches)(state, sharding.shard_rows(padded, self.mesh))
        return jax.tree_util.tree_map(lambda a: np.asarray(a)[:n], distributed.to_host(outputs))


# -- configuration ----------------------------------------------------------------------------------


def _bucket(k: int, powers_only: bool = False) -> int:
    """The smallest size ≥ k among 1, 2, 3, 4, 6, 8, 12, 16, ... (2^j and 1.5·2^j), or among powers of two."""
    size = 1
    while size < k:
        if not powers_only and size >= 2 and size + size // 2 >= k:
            return size + size // 2
        size *= 2
    return size


def _resolve_losses(loss: Any) -> dict[Any, Callable]:
    if isinstance(loss, Mapping):
        if not loss:
            raise ValueError("loss must name at least one head when given as a dict, got {}")
        return {head: losses_lib.get(fn) for head, fn in loss.items()}
    if loss is None:
        raise TypeError("loss must be a loss name, a callable or a dict {head: loss}, got None")
    return {SINGLE: losses_lib.get(loss)}


def _resolve_loss_weights(losses: Mapping[Any, Callable], loss_weights: Any) -> dict[Any, float]:
    if loss_weights is None:
        return {head: 1.0 for head in losses}
    if not isinstance(loss_weights, Mapping):
        if losses.keys() == {SINGLE} and isinstance(loss_weights, (int, float)):
            loss_weights = {SINGLE: loss_weights}
        else:
            raise TypeError(f"loss_weights must be a dict {{head: weight}}, got {_checks.describe(loss_weights)}")
    unknown = [h for h in loss_weights if h not in losses]
    if unknown:
        raise ValueError(f"loss_weights names unknown heads {unknown}; the loss heads are {list(losses)}")
    for head, weight in loss_weights.items():
        _checks.check_number(weight, f"loss_weights[{head!r}]", nonnegative=True)
    return {head: float(loss_weights.get(head, 1.0)) for head in losses}


def _resolve_metrics(losses: Mapping[Any, Callable], metrics: Any, argument: str = "metrics",
                     unweighted: Mapping[Any, Any] | None = None) -> dict[Any, tuple[tuple[str, Callable], ...]]:
    """{head: ((log name, fn), ...)}; weighted metrics whose name is among `unweighted`'s get "weighted_" (Keras)."""
    def resolve(head: Any, entries: Any) -> tuple[tuple[str, Callable], ...]:
        if isinstance(entries, (str, bytes)) or callable(entries):
            entries = [entries]
        taken = {name for name, _ in (unweighted or {}).get(head, ())}
        resolved = []
        for entry in entries:
            fn = metrics_lib.get(entry)
            name = entry if isinstance(entry, str) else getattr(fn, "__name__", "metric")
            resolved.append((f"weighted_{name}" if name in taken else name, fn))
        return tuple(resolved)

    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        unknown = [h for h in metrics if h not in losses]
        if unknown:
            raise ValueError(f"{argument} names unknown heads {unknown}; the loss heads are {list(losses)}")
        return {head: resolve(head, entries) for head, entries in metrics.items()}
    return {head: resolve(head, metrics) for head in losses}


def _check_metric_targets(losses: Mapping[Any, Callable], *metric_sets: Mapping[Any, Any]) -> None:
    """ValueError for an element-wise multi-label metric on a head whose targets are integer class labels."""
    for metric_set in metric_sets:
        for head, entries in metric_set.items():
            for name, fn in entries:
                if fn in metrics_lib.MULTI_LABEL and is_sparse(losses[head]):
                    raise ValueError(
                        f"metric {name!r} compares multi-hot targets (n, k) element-wise, but the loss "
                        "sparse_categorical_crossentropy takes integer class labels (n,); use 'accuracy' for one "
                        "label per example, or multi-hot targets with binary_crossentropy"
                    )


def _resolve_activations(model: nn.Module, losses: Mapping[Any, Callable], output_activation: Any) -> dict[Any, Callable]:
    declared = output_activation if output_activation is not None else getattr(model, "output_activation", None)
    result = {}
    for head, fn in losses.items():
        choice = declared.get(head) if isinstance(declared, Mapping) else declared
        result[head] = activations.get(choice) if choice is not None else _activation_for_loss(fn)
    return result


def _activation_for_loss(fn: Callable) -> Callable:
    """sigmoid for binary cross-entropy on logits, softmax for (sparse) categorical on logits, else linear."""
    base, options = fn, {}
    if hasattr(fn, "func") and hasattr(fn, "keywords"):
        base, options = fn.func, fn.keywords
    if options.get("from_logits", True):
        if base is losses_lib.binary_crossentropy:
            return activations.sigmoid
        if base in (losses_lib.categorical_crossentropy, losses_lib.sparse_categorical_crossentropy):
            return activations.softmax
    return activations.linear


def _check_fit_arguments(epochs, initial_epoch, validation_split, seed, verbose, shuffle, augment, callbacks,
                         state) -> None:
    _checks.check_number(epochs, "epochs", integer=True, positive=True)
    _checks.check_number(initial_epoch, "initial_epoch", integer=True, nonnegative=True)
    if initial_epoch >= epochs:
        raise ValueError(f"initial_epoch must be < epochs ({epochs}), got {initial_epoch}")
    _checks.check_number(validation_split, "validation_split", nonnegative=True)
    if not validation_split < 1:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)
    _checks.check_choice(verbose, "verbose", (0, 1, 2))
    if not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be a bool, got {_checks.describe(shuffle)}")
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be a function (key, x) -> x, got {_checks.describe(augment)}")
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be jdl.callbacks.Callback instances, got {_checks.describe(callback)}")
    if state is not None and not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState (or None for a fresh one), got {_checks.describe(state)}")
