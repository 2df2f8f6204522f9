"""The training state: one pytree holding everything a step reads and writes."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jdl import _checks


@struct.dataclass
class TrainState:
    """step, params, opt_state, model_state (e.g. batch_stats) and rng; apply_fn and tx are static.

    Dropout keys are folded from (rng, step), so a step's randomness depends only on the state.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    model_state: dict[str, Any]
    rng: jax.Array
    apply_fn: Callable[..., Any] = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    input_spec: tuple[tuple[str, tuple[int, ...], str], ...] = struct.field(pytree_node=False, default=())

    @property
    def variables(self) -> dict[str, Any]:
        """Flax variables {"params": ..., **model_state} for `model.apply`."""
        return {"params": self.params, **self.model_state}

    def arrays(self) -> dict[str, Any]:
        """The state's arrays (what a checkpoint stores): step, params, opt_state, model_state, rng."""
        return {
            "step": self.step,
            "params": self.params,
            "opt_state": self.opt_state,
            "model_state": self.model_state,
            "rng": self.rng,
        }

    def with_arrays(self, arrays: dict[str, Any]) -> TrainState:
        """A copy whose arrays are replaced by `arrays` (as returned by `arrays()`)."""
        return self.replace(**arrays)


def mode_kwargs(model: nn.Module, train: bool) -> dict[str, bool]:
    """The keyword that switches `model` between training and inference: train= or deterministic=."""
    params = inspect.signature(type(model).__call__).parameters
    if "train" in params:
        return {"train": train}
    if "deterministic" in params:
        return {"deterministic": not train}
    if "training" in params:
        return {"training": train}
    return {}


def check_model(model: Any) -> nn.Module:
    """TypeError unless `model` is a Flax Linen module."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a flax.linen.Module, got {_checks.describe(model)}")
    return model


def _init_function(model: nn.Module) -> Callable[..., Any]:
    """model.init in inference mode, jit-compiled once per (hashable) model."""
    try:
        hash(model)
    except TypeError:
        return _compile_init(model)
    return _cached_init(model)


def _compile_init(model: nn.Module) -> Callable[..., Any]:
    return jax.jit(lambda keys, x: model.init(keys, x, **mode_kwargs(model, False)))


_cached_init = functools.lru_cache(maxsize=32)(_compile_init)


def create_state(
    model: nn.Module,
    sample_input: Any,
    optimizer: Any,
    seed: int = 0,
    *,
    steps_per_epoch: int | None = None,
) -> TrainState:
    """Initialise `model` on `sample_input` (a batch, or a pytree of batches) and its optimizer.

    optimizer: a `jdl.optim.Optimizer`, a name such as "adam", or an optax GradientTransformation.
    steps_per_epoch converts epoch-counted learning-rate schedules to step schedules.
    """
    from jdl import optim

    check_model(model)
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)
    leaves = jax.tree_util.tree_leaves(sample_input)
    if not leaves:
        raise ValueError("sample_input must hold at least one array, got an empty pytree")
    for leaf in leaves:
        _checks.as_array(leaf, "sample_input")
    opt = optim.as_optimizer(optimizer)
    params_key, dropout_key, rng = jax.random.split(jax.random.PRNGKey(seed), 3)
    variables = _init_function(model)({"params": params_key, "dropout": dropout_key}, sample_input)
    variables = dict(variables)
    params = variables.pop("params", {})
    for transient in ("intermediates", "losses"):
        variables.pop(transient, None)
    opt.check_params(params)
    tx = opt.build(steps_per_epoch)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        model_state=variables,
        rng=rng,
        apply_fn=model.apply,
        tx=tx,
        input_spec=input_spec(sample_input),
    )


def input_spec(x: Any) -> tuple[tuple[str, tuple[int, ...], str], ...]:
    """(path, shape without the batch axis, dtype kind) of every input leaf: what the model was built for."""
    flat = jax.tree_util.tree_flatten_with_path(x)[0]
    return tuple(
        (jax.tree_util.keystr(path), tuple(jnp.shape(leaf)[1:]), jnp.asarray(leaf).dtype.kind) for path, leaf in flat
    )
