"""Weight regularizers per layer, as Keras' `keras.regularizers`: l1, l2, l1_l2, summed into the cost.

    R(W) = l1·Σ|w| + l2·Σw²                     convention="keras" (Keras: l2(λ) adds λ·Σw²)
    R(W) = (l1·Σ|w| + l2·Σw²) / (2m)            convention="notes" (the notes' J + λ/(2m)·Σ‖W‖², m examples)

A layer takes one as `kernel_regularizer=l2(0.01)` (jdl.nn.Dense); a model declares its
(parameter path, regularizer) pairs with `declared_regularizers()` (jdl.models.Sequential does),
and the Trainer's Objective adds `total(pairs, params, m)` to the cost, in training and evaluation
(not in per-example losses), with m the training-set size. Regularizers are frozen, hashable values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jdl import _checks

CONVENTIONS = ("keras", "notes")


def _factor(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise TypeError(f"{name} must be a non-negative number, got {_checks.describe(value)}")
    value = float(value)
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number (the penalty's λ), got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Regularizer:
    """R(W) = l1·Σ|w| + l2·Σw², divided by 2m with convention="notes"; `penalty(w, m)` returns the scalar.

    l1, l2: the factors λ (finite, ≥ 0); convention: "keras" (default) or "notes" (λ/(2m), m the
    number of training examples). Gradient: l1·sign(w) + 2·l2·w (notes: divided by 2m), with the
    subgradient sign(0) = 0 of L1 at w = 0 (TensorFlow's; jnp.abs would give 1).
    """

    l1: float = 0.0
    l2: float = 0.0
    convention: str = "keras"

    def __post_init__(self) -> None:
        object.__setattr__(self, "l1", _factor(self.l1, "l1"))
        object.__setattr__(self, "l2", _factor(self.l2, "l2"))
        if not isinstance(self.convention, str) or self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {list(CONVENTIONS)}, got {self.convention!r}")

    def __call__(self, w: jax.Array, m: Any = None) -> jax.Array:
        """The scalar this regularizer adds to the cost for weights w (any shape); m is used by "notes" only."""
        return self.penalty(w, m)

    def penalty(self, w: jax.Array, m: Any = None) -> jax.Array:
        """The scalar this regularizer adds to the cost for weights w (any shape); m is used by "notes" only."""
        w = jnp.asarray(w)
        total = jnp.zeros((), jnp.result_type(w, jnp.float32))
        if self.l1:
            total = total + self.l1 * jnp.sum(jnp.sign(w) * w)  # |w|, whose gradient is sign(w): 0 at w = 0
        if self.l2:
            total = total + self.l2 * jnp.sum(jnp.square(w))
        if self.convention == "notes":
            if m is None:
                raise ValueError('convention="notes" needs m, the number of training examples, got None')
            total = total / (2 * m)
        return total


def l1(l1: float = 0.01, *, convention: str = "keras") -> Regularizer:
    """L1 (lasso): l1·Σ|w| (Keras default l1 = 0.01); convention="notes" divides by 2m."""
    return Regularizer(l1=l1, convention=convention)


def l2(l2: float = 0.01, *, convention: str = "keras") -> Regularizer:
    """L2 (ridge, weight decay): l2·Σw² (Keras default l2 = 0.01); convention="notes": λ/(2m)·Σw²."""
    return Regularizer(l2=l2, convention=convention)


def l1_l2(l1: float = 0.0, l2: float = 0.0, *, convention: str = "keras") -> Regularizer:
    """L1 + L2 (elastic net): l1·Σ|w| + l2·Σw² (Keras 3 defaults 0.0 for both)."""
    return Regularizer(l1=l1, l2=l2, convention=convention)


_NAMES = {"l1": l1, "l2": l2, "l1_l2": l1_l2, "l1l2": l1_l2}


def get(spec: Any) -> Regularizer | None:
    """None, a Regularizer, or a Keras name ("l1", "l2", "l1_l2", with Keras' default factors) as a Regularizer."""
    if spec is None or isinstance(spec, Regularizer):
        return spec
    if isinstance(spec, str):
        return _checks.lookup("regularizer", spec, _NAMES)()
    raise TypeError(
        f"regularizer must be None, a name {sorted(_NAMES)} or a jdl.regularizers regularizer such as l2(0.01), "
        f"got {_checks.describe(spec)}"
    )


Declared = tuple[tuple[tuple[str, ...], Regularizer], ...]


def declared(model: Any) -> Declared:
    """The (params path, regularizer) pairs `model.declared_regularizers()` returns, () for a model without any."""
    method = getattr(model, "declared_regularizers", None)
    return tuple(method()) if callable(method) else ()


def _leaf(params: Any, path: Sequence[str]) -> jax.Array:
    node = params
    for key in path:
        if not hasattr(node, "__getitem__") or key not in node:
            raise KeyError(f"a regularizer's parameter {'/'.join(path)} is not in the model's parameters")
        node = node[key]
    return node


def total(pairs: Declared, params: Any, m: Any = None) -> jax.Array:
    """Σ over (path, regularizer) pairs of regularizer.penalty(params[path], m): the scalar added to the cost."""
    result = jnp.zeros((), jnp.float32)
    for path, regularizer in pairs:
        result = result + regularizer.penalty(_leaf(params, path), m)
    return result


__all__ = ["CONVENTIONS", "Regularizer", "declared", "get", "l1", "l1_l2", "l2", "total"]
