"""Hyperparameters held in the optimizer state (optax.inject_hyperparams): read and set them inside jit.

jdl builds every optimizer with its learning rate and its other numeric hyperparameters
(momentum, clipnorm, clipvalue, weight_decay) injected into the state, so they are values, not
compile-time constants: callbacks change them between steps and sweeps share compiled code.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jdl import _checks

_INJECT_STATES = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)


def _is_inject(node: Any) -> bool:
    return isinstance(node, _INJECT_STATES)


def _injected(opt_state: Any) -> list[Any]:
    """The inject_hyperparams states holding a learning rate, in tree order."""
    return [
        node
        for node in jax.tree_util.tree_leaves(opt_state, is_leaf=_is_inject)
        if _is_inject(node) and "learning_rate" in node.hyperparams
    ]


def learning_rate(opt_state: Any) -> jax.Array | None:
    """The learning rate in `opt_state` (works inside jit); None when the state holds none.

    It is the rate of the latest update: with a constant η (or after `set_learning_rate`) the
    rate the next update uses; with a schedule, the rate the last update used (schedule(k-1)
    after k updates, schedule(0) before the first), e.g. the epoch's rate at the epoch's end.
    The state is searched through chains, partitions and masks; the first rate found is returned.
    """
    states = _injected(opt_state)
    return states[0].hyperparams["learning_rate"] if states else None


def set_learning_rate(opt_state: Any, value: Any) -> Any:
    """A new optimizer state whose next updates use learning rate `value` (a scalar ≥ 0).

    ValueError when the rate is scheduled (inject_hyperparams recomputes it every step, so,
    as in Keras, a callback cannot set it) or when the state holds no injected learning rate.
    """
    if hasattr(value, "shape"):
        if tuple(value.shape) != ():
            raise ValueError(f"value must be a scalar learning rate, got {_checks.describe(value)}")
        if _checks.is_concrete(value):
            _checks.check_number(float(value), "value", nonnegative=True)
    else:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"value must be a learning rate (a number >= 0), got {_checks.describe(value)}")
        _checks.check_number(value, "value", nonnegative=True)
    states = _injected(opt_state)
    if not states:
        raise ValueError(
            "opt_state holds no learning rate to set: build the optimizer with jdl.optim (or wrap a raw "
            "optax transformation in optax.inject_hyperparams)"
        )
    if any("learning_rate" in getattr(s, "hyperparams_states", {}) for s in states):
        raise ValueError(
            "the learning rate is a schedule and cannot be set in opt_state (as in Keras, a callback "
            "cannot set a scheduled rate); build the optimizer with a constant learning_rate"
        )

    def replace(node: Any) -> Any:
        if _is_inject(node) and "learning_rate" in node.hyperparams:
            old = jnp.asarray(node.hyperparams["learning_rate"])
            new = jnp.asarray(value, dtype=old.dtype)
            return node._replace(hyperparams={**node.hyperparams, "learning_rate": new})
        return node

    return jax.tree_util.tree_map(replace, opt_state, is_leaf=_is_inject)


def hyperparameters(opt_state: Any) -> dict[str, jax.Array]:
    """Every injected numeric hyperparameter of `opt_state` by name ({"learning_rate": ..., "momentum": ...})."""
    found: dict[str, jax.Array] = {}
    for node in jax.tree_util.tree_leaves(opt_state, is_leaf=_is_inject):
        if _is_inject(node):
            for key, value in node.hyperparams.items():
                found.setdefault(key, value)
    return found
