"""`Trainer`: Keras-style fit / evaluate / predict over pure, jit-compiled steps with explicit state."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks, metrics as metrics_lib, optim
from jdl import losses as losses_lib
from jdl.nn import activations
from jdl.train import callbacks as callbacks_lib
from jdl.train import sharding
from jdl.train.state import TrainState, check_model, create_state, mode_kwargs
from jdl.train.step import SINGLE, Objective, forward, is_sparse, per_example_loss, predict_chunk, score, train_chunk, train_step

MAX_STEPS_PER_EXECUTION = 256
EVAL_BATCH_SIZE = 1024


@dataclasses.dataclass
class History:
    """Per-epoch logs of a fit, as Keras: history[key] is a list over epochs; epoch lists their indices."""

    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    epoch: list[int] = dataclasses.field(default_factory=list)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    stop_reason: str | None = None

    def append(self, epoch: int, logs: Mapping[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def to_dict(self) -> dict[str, Any]:
        return {"history": self.history, "epoch": self.epoch, "params": self.params, "stop_reason": self.stop_reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        return cls(dict(data["history"]), list(data["epoch"]), dict(data.get("params", {})), data.get("stop_reason"))


@dataclasses.dataclass
class Data:
    """A validated data set on the host: inputs x (pytree), targets y (array or dict), weights w (n,)."""

    x: Any
    y: Any
    w: np.ndarray

    @property
    def size(self) -> int:
        return int(self.w.shape[0])

    def take(self, index: np.ndarray | slice) -> Data:
        pick = lambda a: a[index]  # noqa: E731
        return Data(jax.tree_util.tree_map(pick, self.x), jax.tree_util.tree_map(pick, self.y), self.w[index])


def _leading_size(tree: Any, name: str) -> int:
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in jax.tree_util.tree_leaves(tree)}
    if not sizes:
        raise ValueError(f"{name} must hold at least one array, got {_checks.describe(tree)}")
    if -1 in sizes:
        raise ValueError(f"{name} must have a leading example axis (n, ...), got a scalar")
    if len(sizes) > 1:
        raise ValueError(f"all arrays in {name} must have the same number of examples, got sizes {sorted(sizes)}")
    return sizes.pop()


def _to_host(tree: Any, name: str) -> Any:
    def convert(leaf):
        array = np.asarray(leaf)
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numeric arrays, got an array of dtype {array.dtype}")
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)):
                bad = np.argwhere(~np.isfinite(array))[0]
                raise ValueError(f"{name} must be finite, got NaN or Inf (first at index {tuple(int(i) for i in bad)})")
            if array.dtype == np.float64 and not jax.config.read("jax_enable_x64"):
                array = array.astype(np.float32)
        return array

    if isinstance(tree, (str, bytes)) or tree is None:
        raise TypeError(f"{name} must be an array or a pytree of arrays, got {_checks.describe(tree)}")
    return jax.tree_util.tree_map(convert, tree)


class Trainer:
    """Train a Flax model with a loss, an optimizer and metrics; state is explicit, steps are pure.

    loss: a name ("sparse_categorical_crossentropy"), a jdl loss, a callable fn(y_true, y_pred) ->
    per-example loss, or a dict {head: loss} for a model returning a dict of outputs.
    optimizer: a `jdl.optim` optimizer, a name, or an optax GradientTransformation.
    metrics: names or callables fn(y_true, y_pred, sample_weight=...), a list for every head or a dict per head.
    output_activation: applied by `predict` and before metrics; by default the model's
    `output_activation` attribute, else sigmoid/softmax for cross-entropies on logits, else linear.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: Any,
        optimizer: Any = "adam",
        metrics: Sequence[Any] | Mapping[Any, Sequence[Any]] = (),
        loss_weights: Mapping[Any, float] | None = None,
        *,
        output_activation: Any = None,
        steps_per_execution: int | None = None,
    ) -> None:
        self.model = check_model(model)
        self.optimizer = optim.as_optimizer(optim.get(optimizer) if isinstance(optimizer, str) else optimizer)
        self.losses = self._resolve_losses(loss)
        self.loss_weights = self._resolve_loss_weights(loss_weights)
        self.metrics = self._resolve_metrics(metrics)
        self.activations = self._resolve_activations(output_activation)
        if steps_per_execution is not None:
            _checks.check_number(steps_per_execution, "steps_per_execution", integer=True, positive=True)
        self.steps_per_execution = steps_per_execution
        self.mesh = sharding.data_mesh()
        self._objectives: dict[Any, Objective] = {}
        self.penalty_examples: int | None = None

    # -- configuration --------------------------------------------------------------------------

    @staticmethod
    def _resolve_losses(loss: Any) -> dict[Any, Callable]:
        if isinstance(loss, Mapping):
            if not loss:
                raise ValueError("loss must name at least one head when given as a dict, got {}")
            return {head: losses_lib.get(fn) for head, fn in loss.items()}
        if loss is None:
            raise TypeError("loss must be a loss name, a callable or a dict {head: loss}, got None")
        return {SINGLE: losses_lib.get(loss)}

    def _resolve_loss_weights(self, loss_weights: Mapping[Any, float] | None) -> dict[Any, float]:
        if loss_weights is None:
            return {head: 1.0 for head in self.losses}
        if not isinstance(loss_weights, Mapping):
            if self.losses.keys() == {SINGLE} and isinstance(loss_weights, (int, float)):
                loss_weights = {SINGLE: loss_weights}
            else:
                raise TypeError(f"loss_weights must be a dict {{head: weight}}, got {_checks.describe(loss_weights)}")
        unknown = [h for h in loss_weights if h not in self.losses]
        if unknown:
            raise ValueError(f"loss_weights names unknown heads {unknown}; the loss heads are {list(self.losses)}")
        for head, weight in loss_weights.items():
            _checks.check_number(weight, f"loss_weights[{head!r}]", nonnegative=True)
        return {head: float(loss_weights.get(head, 1.0)) for head in self.losses}

    def _resolve_metrics(self, metrics: Any) -> dict[Any, tuple[tuple[str, Callable], ...]]:
        def resolve(entries: Any) -> tuple[tuple[str, Callable], ...]:
            if isinstance(entries, (str, bytes)) or callable(entries):
                entries = [entries]
            resolved = []
            for entry in entries:
                fn = metrics_lib.get(entry)
                name = entry if isinstance(entry, str) else getattr(fn, "__name__", "metric")
                resolved.append((name, fn))
            return tuple(resolved)

        if metrics is None:
            return {}
        if isinstance(metrics, Mapping):
            unknown = [h for h in metrics if h not in self.losses]
            if unknown:
                raise ValueError(f"metrics names unknown heads {unknown}; the loss heads are {list(self.losses)}")
            return {head: resolve(entries) for head, entries in metrics.items()}
        return {head: resolve(metrics) for head in self.losses}

    def _resolve_activations(self, output_activation: Any) -> dict[Any, Callable]:
        declared = output_activation if output_activation is not None else getattr(self.model, "output_activation", None)
        result = {}
        for head, fn in self.losses.items():
            choice = declared.get(head) if isinstance(declared, Mapping) else declared
            result[head] = activations.get(choice) if choice is not None else _activation_for_loss(fn)
        return result

    def objective(self, augment: Callable | None = None, probe: Any = None) -> Objective:
        """The Objective a step scores with (cached per augmentation and monitor probe, so steps compile once)."""
        if (augment, probe) not in self._objectives:
            self._objectives[(augment, probe)] = Objective(
                losses=self.losses,
                loss_weights=self.loss_weights,
                metrics=self.metrics,
                activations=self.activations,
                penalty=self.optimizer.penalty,
                train_kwargs=mode_kwargs(self.model, True),
                eval_kwargs=mode_kwargs(self.model, False),
                mesh=self.mesh,
                augment=augment,
                probe=probe,
            )
        return self._objectives[(augment, probe)]

    # -- state ----------------------------------------------------------------------------------

    def init(self, x: Any, seed: int = 0, *, steps_per_epoch: int | None = None) -> TrainState:
        """A fresh TrainState for inputs like `x` (only the first example's shape is used)."""
        x = _to_host(x, "x")
        _leading_size(x, "x")
        sample = jax.tree_util.tree_map(lambda a: a[:1], x)
        return create_state(self.model, sample, self.optimizer, seed, steps_per_epoch=steps_per_epoch)

    # -- the functional core --------------------------------------------------------------------

    @functools.cached_property
    def _train_step(self) -> Callable:
        return jax.jit(lambda state, x, y, w, m: train_step(self.objective(), state, x, y, w, m))

    def _examples(self, batch_size: int) -> jax.Array:
        """m of the L2 penalty: the training-set size of the last fit, else the batch's size."""
        return jnp.asarray(self.penalty_examples or batch_size, jnp.float32)

    def train_step(self, state: TrainState, batch: Sequence[Any]) -> tuple[TrainState, dict[str, jax.Array]]:
        """One pure, jit-compiled optimizer step on batch (x, y) or (x, y, sample_weight).

        A non-finite loss or gradient leaves the state unchanged and sets metrics["finite"] False.
        """
        x, y, w = _unpack_batch(batch)
        return self._train_step(state, x, y, w, self._examples(w.shape[0]))

    @functools.cached_property
    def _eval_step(self) -> Callable:
        def step(state, x, y, w, m):
            outputs, _, added = _forward_eval(self.objective(), state, x)
            cost, logs = score(self.objective(), y, outputs, w, added)
            return {"loss": cost + self.optimizer.penalty(state.params, m), **logs}

        return jax.jit(step)

    def eval_step(self, state: TrainState, batch: Sequence[Any]) -> dict[str, jax.Array]:
        """Loss and metrics of one batch in inference mode (dropout off, batch-norm running statistics)."""
        x, y, w = _unpack_batch(batch)
        return self._eval_step(state, x, y, w, self._examples(w.shape[0]))

    # -- data validation ------------------------------------------------------------------------

    def _data(self, x: Any, y: Any, sample_weight: Any, *, name: str = "") -> Data:
        x = _to_host(x, f"{name}x")
        n = _leading_size(x, f"{name}x")
        if y is None:
            raise TypeError(f"{name}y must be given (targets for the loss), got None")
        y = _to_host(y, f"{name}y")
        if self.losses.keys() == {SINGLE}:
            if isinstance(y, Mapping):
                raise ValueError(f"{name}y is a dict {list(y)}, but the loss has a single head; pass a dict of losses")
        elif not isinstance(y, Mapping) or set(y) != set(self.losses):
            got = list(y) if isinstance(y, Mapping) else _checks.describe(y)
            raise ValueError(f"{name}y must be a dict with one target per loss head {list(self.losses)}, got {got}")
        m = _leading_size(y, f"{name}y")
        if m != n:
            raise ValueError(f"{name}x and {name}y must have the same number of examples, got {n} and {m}")
        if n == 0:
            raise ValueError(f"{name}x must hold at least one example, got 0")
        if sample_weight is None:
            w = np.ones((n,), np.float32)
        else:
            w = np.asarray(_to_host(sample_weight, f"{name}sample_weight"), np.float32)
            if w.shape != (n,):
                raise ValueError(f"{name}sample_weight must have shape ({n},), one weight per example, got {w.shape}")
            if np.any(w < 0):
                raise ValueError(f"{name}sample_weight must be non-negative, got minimum {w.min().item()}")
        return Data(x, y, w)

    def _check_inputs(self, state: TrainState, x: Any, name: str = "") -> Any:
        """ValueError unless x's shapes match the inputs the model was built for; returns output shapes."""
        spec = {path: shape for path, shape, _ in state.input_spec}
        flat = jax.tree_util.tree_flatten_with_path(x)[0]
        got = {jax.tree_util.keystr(path): tuple(np.shape(leaf)[1:]) for path, leaf in flat}
        if spec and got != spec:
            def show(shapes):
                return ", ".join(f"{p or 'x'} (n, {', '.join(map(str, s))})" for p, s in shapes.items())

            raise ValueError(f"{name}x does not match the inputs the model was built for: expected {show(spec)}, got {show(got)}")
        sample = jax.tree_util.tree_map(lambda a: a[:1], x)
        outputs = jax.eval_shape(lambda s, v: _forward_eval(self.objective(), s, v)[0], state, sample)
        if self.losses.keys() == {SINGLE}:
            return {SINGLE: outputs}
        if not isinstance(outputs, Mapping) or set(outputs) != set(self.losses):
            got_heads = list(outputs) if isinstance(outputs, Mapping) else "a single array"
            raise ValueError(f"the model returns {got_heads}, but the loss names heads {list(self.losses)}")
        return outputs

    def _check_against_model(self, state: TrainState, data: Data, name: str = "") -> Data:
        """Check inputs against what the model was built for and targets against its outputs."""
        outputs = self._check_inputs(state, data.x, name)
        y = {SINGLE: data.y} if self.losses.keys() == {SINGLE} else data.y
        checked = {head: _check_targets(self.losses[head], y[head], outputs[head], _y_name(name, head))
                   for head in self.losses}
        return Data(data.x, checked[SINGLE] if self.losses.keys() == {SINGLE} else checked, data.w)

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
        callbacks: Sequence[callbacks_lib.Callback] = (),
        verbose: int = 1,
        seed: int = 0,
        state: TrainState | None = None,
        augment: Callable[[jax.Array, Any], Any] | None = None,
    ) -> tuple[TrainState, History]:
        """Train for `epochs` and return (state, History). Keras semantics, explicit state.

        validation_split takes the last fraction of (x, y) before shuffling. batch_size None is
        full-batch gradient descent; 1 is SGD; the last partial batch is trained on, not dropped
        (it compiles once more for its shape). Epoch e visits the examples in a permutation drawn
        from (seed, e), so a fit resumed at epoch e continues exactly. `augment(key, x)` is applied
        to each training batch on the device.
        """
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
        callbacks = list(callbacks)
        for callback in callbacks:
            if not isinstance(callback, callbacks_lib.Callback):
                raise TypeError(f"callbacks must be jdl.callbacks.Callback instances, got {_checks.describe(callback)}")
        if state is not None and not isinstance(state, TrainState):
            raise TypeError(f"state must be a TrainState (or None for a fresh one), got {_checks.describe(state)}")

        data = self._data(x, y, sample_weight)
        if class_weight is not None:
            if self.losses.keys() != {SINGLE}:
                raise ValueError("class_weight is only supported for single-output models; use sample_weight per head")
            data.w = data.w * np.asarray(losses_lib.class_weight_to_sample_weight(data.y, class_weight))
        validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    f"validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight), got {_checks.describe(validation_data)}"
                )
            validation = self._data(*validation_data, *([None] * (3 - len(validation_data))), name="validation_data ")
        elif validation_split > 0:
            split_at = int(math.floor(data.size * (1.0 - validation_split)))
            if split_at == 0 or split_at == data.size:
                raise ValueError(
                    f"validation_split={validation_split} leaves {data.size - split_at} of {data.size} examples "
                    "for validation and needs at least one for each of training and validation"
                )
            data, validation = data.take(slice(0, split_at)), data.take(slice(split_at, None))

        n = data.size
        if batch_size is None:
            batch_size = n
        _checks.check_number(batch_size, "batch_size", integer=True, positive=True)
        if batch_size > n:
            raise ValueError(f"batch_size must be <= the number of training examples ({n}), got {batch_size}")
        sharding.check_batch_size(batch_size, self.mesh)
        steps_per_epoch = math.ceil(n / batch_size)
        self.penalty_examples = n

        if state is None:
            state = self.init(data.x, seed, steps_per_epoch=steps_per_epoch)
        elif state.tx is not self.optimizer.build(steps_per_epoch):
            warnings.warn(
                "state was built with another optimizer transformation than this Trainer's (or another "
                "steps_per_epoch for its schedule); fit continues with the state's own optimizer, state.tx",
                RuntimeWarning, stacklevel=2,
            )
        data = self._check_against_model(state, data)
        if validation is not None:
            validation = self._check_against_model(state, validation, name="validation_data ")

        history = History(params={"epochs": epochs, "batch_size": batch_size, "steps": steps_per_epoch,
                                  "samples": n, "verbose": verbose})
        if verbose and not any(isinstance(c, callbacks_lib.ProgressBar) for c in callbacks):
            callbacks.append(callbacks_lib.ProgressBar(verbose))
        context = callbacks_lib.FitContext(
            trainer=self, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
            batch_size=batch_size, history=history,
        )
        callback_list = callbacks_lib.CallbackList(callbacks, context)
        plan = _EpochPlan(n, batch_size, self.steps_per_execution, shuffle, seed, self.mesh)
        state = sharding.replicate(state, self.mesh)
        device_data = sharding.replicate((data.x, data.y, data.w), self.mesh)
        probes = [c.bind(self.model) for c in callbacks if callable(getattr(c, "bind", None))]
        if len(probes) > 1:
            raise ValueError(f"callbacks may hold at most one GradientMonitor, got {len(probes)}")
        objective = self.objective(augment, probes[0] if probes else None)
        run_chunk = _jitted_train_chunk(objective)

        try:
            state = self._fit_epochs(state, callback_list, context, plan, device_data, validation, run_chunk, objective)
        finally:
            callback_list.close()
        return state, history

    def _fit_epochs(self, state, callback_list, context, plan, device_data, validation, run_chunk, objective):
        """The epoch loop of fit: dispatch chunks, gather logs once per epoch, run callbacks."""
        history, epochs = context.history, context.epochs
        examples = self._examples(plan.n)
        state = callback_list.on_train_begin(state, {})
        epoch = context.initial_epoch
        while epoch < epochs and not context.stop_training:
            state = callback_list.on_epoch_begin(epoch, state, {})
            start_step = state.step
            halted = jnp.asarray(False)
            chunk_logs = []
            for indices, masks in plan.chunks(epoch):
                state, halted, logs = run_chunk(state, halted, device_data, indices, masks, examples)
                chunk_logs.append(logs)
                state = callback_list.on_train_batch_end(int(indices.shape[0]), state, logs)
            epoch_logs = _epoch_means(objective, chunk_logs)
            if validation is not None:
                val_logs = self._evaluate_data(state, validation, batch_size=None)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            learning_rate = optim.learning_rate(state.opt_state)
            host = jax.device_get({"logs": epoch_logs, "halted": halted, "start": start_step,
                                   "lr": learning_rate, "chunks": [c["nonfinite"] for c in chunk_logs]})
            logs = {k: float(v) for k, v in host["logs"].items()}
            if host["lr"] is not None:
                logs["lr"] = float(host["lr"])
            history.append(epoch, logs)
            if host["halted"]:
                history.stop_reason = self._nonfinite_report(state, device_data, plan, epoch, host)
                warnings.warn(history.stop_reason, RuntimeWarning, stacklevel=3)
                context.stop_training = True
                context.nonfinite = history.stop_reason
            state = callback_list.on_epoch_end(epoch, state, logs)
            epoch += 1
        return callback_list.on_train_end(state, {})

    def _nonfinite_report(self, state: TrainState, data: Any, plan: _EpochPlan, epoch: int, host: Mapping) -> str:
        """Where the first non-finite loss or gradient appeared: epoch, step, batch and first layer."""
        flags = np.concatenate([np.asarray(c).reshape(-1) for c in host["chunks"]])
        batch = int(np.argmax(flags))
        step = int(host["start"]) + batch
        indices, masks = plan.batch(epoch, batch)
        x, y, w = jax.tree_util.tree_map(lambda a: jnp.take(a, indices, axis=0), data)
        w = w * masks
        objective = self.objective()

        def cost(params):
            key = jax.random.fold_in(state.rng, state.step)
            outputs, _, added = forward(state, params, x, objective=objective, train=True, key=key)
            return score(objective, y, outputs, w, added)[0] + self.optimizer.penalty(params, self._examples(plan.n))

        loss, grads = jax.value_and_grad(cost)(state.params)
        where = "the loss itself" if not np.isfinite(float(loss)) else "no layer (the loss and gradients are finite when recomputed)"
        for path, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]:
            if not np.all(np.isfinite(np.asarray(leaf))):
                where = f"the gradient of {'/'.join(str(getattr(k, 'key', k)) for k in path)}"
                if not np.isfinite(float(loss)):
                    where = f"the loss (value {float(loss)}) and " + where
                break
        return (
            f"Non-finite loss or gradient at epoch {epoch} (0-based), global step {step}, batch {batch} of the epoch; "
            f"first non-finite: {where}. Training stopped; the returned state is the one after the last finite step."
        )

    # -- evaluate / predict -----------------------------------------------------------------------

    def _plan(self, n: int, batch_size: int | None) -> tuple[jax.Array, jax.Array]:
        batch_size = min(n, EVAL_BATCH_SIZE) if batch_size is None else batch_size
        _checks.check_number(batch_size, "batch_size", integer=True, positive=True)
        count = sharding.device_count(self.mesh)
        batch_size = int(math.ceil(batch_size / count) * count)
        batches = math.ceil(n / batch_size)
        flat = np.arange(batches * batch_size)
        return (jnp.asarray(np.minimum(flat, n - 1).reshape(batches, batch_size)),
                jnp.asarray((flat < n).reshape(batches, batch_size)))

    def _evaluate_data(self, state: TrainState, data: Data, batch_size: int | None) -> dict[str, jax.Array]:
        indices, masks = self._plan(data.size, batch_size)
        device = sharding.replicate((data.x, data.y, data.w), self.mesh)
        return _jitted_evaluate(self.objective(), data.size)(state, device, indices, masks, self._examples(data.size))

    def evaluate(self, state: TrainState, x: Any, y: Any, *, batch_size: int | None = None,
                 sample_weight: Any = None) -> dict[str, float]:
        """Loss and metrics over the whole of (x, y) in inference mode: {"loss": ..., "<metric>": ...}.

        Metrics are computed once on all predictions (exact F1/AUC), not averaged over batches.
        """
        _check_state(state)
        data = self._check_against_model(state, self._data(x, y, sample_weight))
        return {k: float(v) for k, v in jax.device_get(self._evaluate_data(state, data, batch_size)).items()}

    def predict(self, state: TrainState, x: Any, *, batch_size: int | None = None) -> Any:
        """Model outputs after the output activation (probabilities for classifiers): (n, ...)."""
        _check_state(state)
        x = _to_host(x, "x")
        n = _leading_size(x, "x")
        self._check_inputs(state, x)
        indices, masks = self._plan(n, batch_size)
        outputs = _jitted_predict(self.objective(), n)(state, sharding.replicate(x, self.mesh), indices, masks)
        if self.losses.keys() == {SINGLE}:
            return self.activations[SINGLE](outputs)
        return {head: self.activations[head](out) for head, out in outputs.items()}


# -- helpers --------------------------------------------------------------------------------------


class _EpochPlan:
    """Which examples each step of an epoch sees: full batches in chunks of k steps, then the remainder."""

    def __init__(self, n: int, batch_size: int, steps_per_execution: int | None, shuffle: bool, seed: int, mesh: Any):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.full = n // batch_size
        self.remainder = n - self.full * batch_size
        count = sharding.device_count(mesh)
        self.padded_remainder = int(math.ceil(self.remainder / count) * count) if self.remainder else 0
        self.per_chunk = min(self.full, steps_per_execution or MAX_STEPS_PER_EXECUTION) if self.full else 0
        self.key = jax.random.fold_in(jax.random.PRNGKey(seed), 0x5EED)

    def order(self, epoch: int) -> jax.Array:
        """The permutation of examples for `epoch` (identity without shuffle)."""
        if not self.shuffle:
            return jnp.arange(self.n)
        return _permutation(self.key, epoch, self.n)

    def chunks(self, epoch: int):
        """Yield (indices (steps, batch), masks (steps, batch)) for each dispatch of the epoch."""
        order = self.order(epoch)
        if self.full:
            full = order[: self.full * self.batch_size].reshape(self.full, self.batch_size)
            ones = jnp.ones((self.per_chunk, self.batch_size), bool)
            start = 0
            while start + self.per_chunk <= self.full:
                yield full[start : start + self.per_chunk], ones
                start += self.per_chunk
            if start < self.full:
                yield full[start:], jnp.ones((self.full - start, self.batch_size), bool)
        if self.remainder:
            rest = order[self.full * self.batch_size :]
            pad = self.padded_remainder - self.remainder
            indices = jnp.concatenate([rest, jnp.zeros((pad,), rest.dtype)])[None]
            masks = (jnp.arange(self.padded_remainder) < self.remainder)[None]
            yield indices, masks

    def batch(self, epoch: int, index: int) -> tuple[jax.Array, jax.Array]:
        """(indices, mask) of batch `index` of `epoch`."""
        for indices, masks in self.chunks(epoch):
            if index < indices.shape[0]:
                return indices[index], masks[index].astype(jnp.float32)
            index -= indices.shape[0]
        raise IndexError(index)


@functools.partial(jax.jit, static_argnums=(2,))
def _permutation(key: jax.Array, epoch: int, n: int) -> jax.Array:
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


@functools.lru_cache(maxsize=64)
def _jitted_train_chunk(objective: Objective) -> Callable:
    return jax.jit(functools.partial(train_chunk, objective))


def _forward_eval(objective: Objective, state: TrainState, x: Any) -> tuple[Any, dict, jax.Array]:
    return forward(state, state.params, x, objective=objective, train=False, key=state.rng)


@functools.lru_cache(maxsize=64)
def _jitted_predict(objective: Objective, n: int) -> Callable:
    def run(state, x, indices, masks):
        outputs, _ = predict_chunk(objective, state, x, indices, masks)
        return jax.tree_util.tree_map(lambda a: a[:n], outputs)

    return jax.jit(run)


@functools.lru_cache(maxsize=64)
def _jitted_evaluate(objective: Objective, n: int) -> Callable:
    def run(state, data, indices, masks, examples):
        x, y, w = data
        outputs, added = jax.tree_util.tree_map(lambda a: a[:n], predict_chunk(objective, state, x, indices, masks))
        cost, logs = score(objective, y, outputs, w, added)
        return {"loss": cost + objective.penalty(state.params, examples), **logs}

    return jax.jit(run)


def _epoch_means(objective: Objective, chunk_logs: list[dict]) -> dict[str, jax.Array]:
    """Weighted means over an epoch's steps of every logged quantity (weights: Σw of each batch)."""
    weights = jnp.concatenate([c["weight"].reshape(-1) for c in chunk_logs])
    total = jnp.maximum(weights.sum(), 1e-30)
    means = {}
    for name in objective.log_names():
        values = jnp.concatenate([c[name].reshape(-1) for c in chunk_logs])
        means[name] = jnp.sum(jnp.where(weights > 0, values * weights, 0.0)) / total
    return means


def _activation_for_loss(fn: Callable) -> Callable:
    """sigmoid for binary cross-entropy on logits, softmax for (sparse) categorical on logits, else linear."""
    base, options = fn, {}
    if isinstance(fn, functools.partial):
        base, options = fn.func, fn.keywords
    if options.get("from_logits", True):
        if base is losses_lib.binary_crossentropy:
            return activations.sigmoid
        if base in (losses_lib.categorical_crossentropy, losses_lib.sparse_categorical_crossentropy):
            return activations.softmax
    return activations.linear


def _y_name(prefix: str, head: Any) -> str:
    return f"{prefix}y" if head is SINGLE else f"{prefix}y[{head!r}]"


def _check_targets(fn: Callable, y: np.ndarray, output: jax.ShapeDtypeStruct, name: str) -> np.ndarray:
    """Targets reshaped to the model's output (a trailing axis of 1 added) and validated for the loss."""
    out_shape = tuple(output.shape[1:])
    y = np.asarray(y)
    if is_sparse(fn):
        if y.ndim == len(out_shape) + 1 and y.shape[-1] == 1 and len(out_shape) >= 1:
            y = y[..., 0]
        if tuple(y.shape[1:]) != out_shape[:-1]:
            raise ValueError(
                f"{name} must hold integer class labels of shape (n{''.join(', ' + str(d) for d in out_shape[:-1])}) "
                f"for a model that outputs (batch, {', '.join(map(str, out_shape))}), got shape {y.shape}"
            )
        if y.dtype.kind == "f" and np.any(y != np.round(y)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        y = y.astype(np.int32)
        _checks.check_int_range(y, name, out_shape[-1])
        return y
    if tuple(y.shape[1:]) != out_shape:
        if tuple(y.shape[1:]) + (1,) == out_shape:
            y = y[..., None]
        else:
            raise ValueError(
                f"{name} has shape {y.shape}, but the model outputs (batch, {', '.join(map(str, out_shape))}); "
                "targets must have the output's shape (class labels need sparse_categorical_crossentropy)"
            )
    y = y.astype(np.dtype(output.dtype)) if y.dtype.kind in "biu" else y
    probe = slice(0, min(len(y), 4096))
    try:
        per_example_loss(fn, jnp.asarray(y[probe]), jnp.zeros((len(y[probe]),) + out_shape, output.dtype))
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    return y


def _unpack_batch(batch: Sequence[Any]) -> tuple[Any, Any, jax.Array]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError(f"batch must be (x, y) or (x, y, sample_weight), got {_checks.describe(batch)}")
    x, y = batch[0], batch[1]
    n = jax.tree_util.tree_leaves(x)[0].shape[0]
    w = jnp.ones((n,), jnp.float32) if len(batch) == 2 else jnp.asarray(batch[2], jnp.float32)
    return x, y, w


def _check_state(state: Any) -> None:
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState (from fit or Trainer.init), got {_checks.describe(state)}")
