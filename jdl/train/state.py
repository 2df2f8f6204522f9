"""The training state: one pytree holding everything a step reads and writes.

Its static part is the model (a hashable Flax module) and the optimizer's `Structure`, both
compared by value, so states of identically configured Trainers share compiled steps. Every
number that may differ between trials (the learning rate and the other injected hyperparameters)
lives in `opt_state`.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import optax
from flax import struct

from jdl import _checks
from jdl.nn.mode import mode_kwargs
from jdl.train import compiler
from jdl.optim import Structure, as_optimizer

TRANSIENT_COLLECTIONS = ("intermediates", "losses")


@struct.dataclass
class TrainState:
    """step, params, opt_state, model_state (e.g. batch_stats), rng and examples; model and optimizer are static.

    Dropout keys are folded from (rng, step), so a step's randomness depends only on the state.
    examples: the training-set size m of the L2 penalty λ/(2m)·Σ‖W‖², set by `fit` (0 until then:
    a step or an evaluation then uses its own number of examples).
    """

    step: jax.Array
    params: Any
    opt_state: Any
    model_state: dict[str, Any]
    rng: jax.Array
    examples: jax.Array
    model: nn.Module = struct.field(pytree_node=False)
    optimizer: Structure = struct.field(pytree_node=False)
    input_spec: tuple[tuple[str, tuple[int, ...], str], ...] = struct.field(pytree_node=False, default=())
    loss_scale: Any = None  # a jdl.train.loss_scale.LossScale under float16 (dynamic loss scaling), else None

    @property
    def apply_fn(self) -> Any:
        """`model.apply`."""
        return self.model.apply

    @property
    def tx(self) -> optax.GradientTransformation:
        """The optimizer's update (shared by every state of the same structure; see `Structure.build`)."""
        return self.optimizer.build()

    @property
    def variables(self) -> dict[str, Any]:
        """Flax variables {"params": ..., **model_state} for `model.apply`."""
        return {"params": self.params, **self.model_state}

    def arrays(self) -> dict[str, Any]:
        """The state's arrays (what a checkpoint stores): step, params, opt_state, model_state, rng (and loss_scale)."""
        arrays = {
            "step": self.step,
            "params": self.params,
            "opt_state": self.opt_state,
            "model_state": self.model_state,
            "rng": self.rng,
        }
        if self.loss_scale is not None:
            arrays["loss_scale"] = {"scale": self.loss_scale.scale, "good_steps": self.loss_scale.good_steps}
        return arrays

    def with_arrays(self, arrays: dict[str, Any]) -> TrainState:
        """A copy whose arrays are replaced by `arrays` (as returned by `arrays()`)."""
        arrays = dict(arrays)
        scale = arrays.pop("loss_scale", None)
        if scale is not None:
            arrays["loss_scale"] = self.loss_scale.replace(**scale)
        return self.replace(**arrays)


def check_model(model: Any) -> nn.Module:
    """TypeError unless `model` is a Flax Linen module; ValueError unless it is hashable (it keys compiled steps)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a flax.linen.Module, got {_checks.describe(model)}")
    try:
        hash(model)
    except TypeError as err:
        raise TypeError(
            f"model must be hashable (its fields key the compiled steps): use tuples, not lists, in its fields ({err})"
        ) from None
    return model


@functools.lru_cache(maxsize=32)
def _initializer(model: nn.Module, structure: Structure) -> Any:
    """jit(seed, sample, values) -> (params, model_state, opt_state, rng): one compile per model, optimizer structure and shape."""
    raw = structure.transformation is not None

    def init(seed, sample, values):
        params_key, dropout_key, rng = jax.random.split(jax.random.PRNGKey(seed), 3)
        variables = dict(model.init({"params": params_key, "dropout": dropout_key}, sample, **mode_kwargs(model, False)))
        params = variables.pop("params", {})
        for transient in TRANSIENT_COLLECTIONS:
            variables.pop(transient, None)
        tx = structure.transformation if raw else structure.assemble(values)
        return params, variables, tx.init(params), rng

    return jax.jit(init, compiler_options=compiler.once_options())


def create_state(
    model: nn.Module,
    sample_input: Any,
    optimizer: Any,
    seed: int = 0,
    *,
    steps_per_epoch: int | None = None,
) -> TrainState:
    """Initialise `model` on `sample_input` (a batch, or a pytree of batches) and its optimizer, in one compiled call.

    optimizer: a `jdl.optim.Optimizer`, a name such as "adam", or an optax GradientTransformation.
    steps_per_epoch converts epoch-counted learning-rate schedules to step schedules.
    """
    check_model(model)
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)
    leaves = jax.tree_util.tree_leaves(sample_input)
    if not leaves:
        raise ValueError("sample_input must hold at least one array, got an empty pytree")
    for leaf in leaves:
        if _dtype_kind(leaf) not in "biuf":
            raise TypeError(f"sample_input must hold numeric arrays, got {_checks.describe(leaf)}")
    opt = as_optimizer(optimizer)
    structure = opt.structure(steps_per_epoch)
    values = {k: np.float32(v) for k, v in opt.values().items() if v is not None}
    init = _initializer(model, structure)
    seed_array = np.uint32(seed)
    shapes = init.eval_shape(seed_array, sample_input, values)
    opt.check_params(shapes[0])
    params, model_state, opt_state, rng = init(seed_array, sample_input, values)
    return TrainState(
        step=jax.device_put(np.int32(0)),
        params=params,
        opt_state=opt_state,
        model_state=model_state,
        rng=rng,
        examples=jax.device_put(np.float32(0)),
        model=model,
        optimizer=structure,
        input_spec=input_spec(sample_input),
    )


def input_spec(x: Any) -> tuple[tuple[str, tuple[int, ...], str], ...]:
    """(path, shape without the batch axis, dtype kind) of every input leaf: what the model was built for."""
    flat = jax.tree_util.tree_flatten_with_path(x)[0]
    return tuple((jax.tree_util.keystr(path), tuple(np.shape(leaf)[1:]), _dtype_kind(leaf)) for path, leaf in flat)


def _dtype_kind(leaf: Any) -> str:
    """The NumPy dtype kind ("f", "i", ...) of an array or array-like, without moving it to a device."""
    return np.dtype(leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype).kind
