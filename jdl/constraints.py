"""Weight constraints, as Keras' `keras.constraints`: max_norm, non_neg, unit_norm, applied after every update.

    max_norm(c):  W ← W · clip(‖W‖, 0, c) / (ε + ‖W‖)     (norms along `axis`, ε = 1e-7 as Keras)
    unit_norm():  W ← W / (ε + ‖W‖)
    non_neg():    W ← max(W, 0)

For a Dense kernel (in, out) axis=0 takes the norm of each column, the incoming weights of one
unit (Keras' default); for a Conv2D kernel (h, w, c, filters) use axis=(0, 1, 2). A layer takes one
as `kernel_constraint=max_norm(2)` (jdl.nn.Dense); a model declares its (parameter path,
constraint) pairs with `declared_constraints()`, and the Trainer's compiled step applies
`project(model, params)` after each optimizer update. Constraints are frozen, hashable values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jdl import _checks

EPSILON = 1e-7  # keras.backend.epsilon()


def _axis(axis: Any) -> int | tuple[int, ...]:
    if isinstance(axis, int) and not isinstance(axis, bool):
        return int(axis)
    if isinstance(axis, Sequence) and not isinstance(axis, (str, bytes)) and axis and all(
            isinstance(a, int) and not isinstance(a, bool) for a in axis):
        return tuple(int(a) for a in axis)
    raise TypeError(f"axis must be an int or a non-empty sequence of ints, got {_checks.describe(axis)}")


def _norms(w: jax.Array, axis: int | tuple[int, ...]) -> jax.Array:
    axes = (axis,) if isinstance(axis, int) else axis
    if any(not -w.ndim <= a < w.ndim for a in axes):
        raise ValueError(f"axis {axis} of a weight constraint is out of range for a parameter of shape {tuple(w.shape)}")
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=axis, keepdims=True))


class Constraint:
    """A projection W -> constraint(W) applied to a parameter after each optimizer update."""

    def __call__(self, w: jax.Array) -> jax.Array:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class MaxNorm(Constraint):
    """W · clip(‖W‖, 0, max_value) / (ε + ‖W‖): every norm along `axis` at most max_value (Keras MaxNorm)."""

    max_value: float = 2.0
    axis: int | tuple[int, ...] = 0

    def __post_init__(self) -> None:
        _checks.check_number(self.max_value, "max_value", positive=True)
        if not math.isfinite(float(self.max_value)):
            raise ValueError(f"max_value must be finite, got {self.max_value!r}")
        object.__setattr__(self, "axis", _axis(self.axis))

    def __call__(self, w: jax.Array) -> jax.Array:
        w = jnp.asarray(w)
        norms = _norms(w, self.axis)
        return w * (jnp.clip(norms, 0, self.max_value) / (EPSILON + norms))


@dataclasses.dataclass(frozen=True)
class UnitNorm(Constraint):
    """W / (ε + ‖W‖): unit norm along `axis` (Keras UnitNorm)."""

    axis: int | tuple[int, ...] = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis", _axis(self.axis))

    def __call__(self, w: jax.Array) -> jax.Array:
        w = jnp.asarray(w)
        return w / (EPSILON + _norms(w, self.axis))


@dataclasses.dataclass(frozen=True)
class NonNeg(Constraint):
    """max(W, 0): non-negative weights (Keras NonNeg)."""

    def __call__(self, w: jax.Array) -> jax.Array:
        return jnp.maximum(jnp.asarray(w), 0)


def max_norm(max_value: float = 2.0, axis: int | Sequence[int] = 0) -> MaxNorm:
    """Keras' `max_norm`: norms along axis clipped to max_value (the notes' "limit the weights")."""
    return MaxNorm(max_value, axis)


def unit_norm(axis: int | Sequence[int] = 0) -> UnitNorm:
    """Keras' `unit_norm`: norms along axis scaled to 1."""
    return UnitNorm(axis)


def non_neg() -> NonNeg:
    """Keras' `non_neg`: negative weights set to 0."""
    return NonNeg()


_NAMES = {"max_norm": max_norm, "unit_norm": unit_norm, "non_neg": non_neg}


def get(spec: Any) -> Constraint | None:
    """None, a Constraint, or a Keras name ("max_norm", "unit_norm", "non_neg", with Keras' defaults) as a Constraint."""
    if spec is None or isinstance(spec, Constraint):
        return spec
    if isinstance(spec, str):
        return _checks.lookup("constraint", spec, _NAMES)()
    raise TypeError(
        f"constraint must be None, a name {sorted(_NAMES)} or a jdl.constraints constraint such as max_norm(2), "
        f"got {_checks.describe(spec)}"
    )


Declared = tuple[tuple[tuple[str, ...], Constraint], ...]


def declared(model: Any) -> Declared:
    """The (params path, constraint) pairs `model.declared_constraints()` returns, () for a model without any."""
    method = getattr(model, "declared_constraints", None)
    return tuple(method()) if callable(method) else ()


def apply(pairs: Declared, params: Any) -> Any:
    """params with constraint(params[path]) in place of each declared leaf (a new tree; others unchanged)."""
    if not pairs:
        return params
    by_path = {tuple(path): constraint for path, constraint in pairs}
    found: set[tuple[str, ...]] = set()

    def project(keys, leaf):
        path = tuple(str(getattr(k, "key", getattr(k, "idx", k))) for k in keys)
        constraint = by_path.get(path)
        if constraint is None:
            return leaf
        found.add(path)
        return constraint(leaf).astype(leaf.dtype)

    result = jax.tree_util.tree_map_with_path(project, params)
    missing = set(by_path) - found
    if missing:
        raise KeyError(f"constrained parameters {sorted('/'.join(p) for p in missing)} are not in the model's parameters")
    return result


def project(model: Any, params: Any) -> Any:
    """params after the constraints `model` declares (unchanged for a model without any)."""
    return apply(declared(model), params)


__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "apply", "declared", "get", "max_norm", "non_neg",
           "project", "unit_norm"]
