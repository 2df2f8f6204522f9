"""The notes' exponentially weighted average and iteration count per epoch."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks


def check_unit_interval(value: Any, name: str) -> None:
    """Decay rates (momentum, rho, beta_1, beta_2, beta) must lie in [0, 1)."""
    _checks.check_number(value, name, nonnegative=True)
    if not value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def check_bool(value: Any, name: str) -> None:
    """TypeError unless `value` is a bool (Python or NumPy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_checks.describe(value)}")


def ewma(values: Any, beta: float = 0.9, bias_correction: bool = True, *, start: str = "zero") -> jax.Array:
    """Exponentially weighted average along axis 0: v_t = β·v_{t-1} + (1-β)·a_t. (T, ...) -> (T, ...).

    start="zero": v_0 = 0, and with bias_correction v_t / (1 - β^t) (t = 1..T).
    start="first": v_1 = a_1 (the notes' golden: β = 0.95 gives v_2 = 0.95·a_1 + 0.05·a_2);
    there is no zero-start bias, so bias_correction does not apply. A jax.lax.scan; jit-able.
    """
    values = _checks.as_array(values, "values", dtype_kind="float")
    if values.ndim < 1:
        raise ValueError(f"values must have shape (T, ...) with a time axis first, got {_checks.describe(values)}")
    check_unit_interval(beta, "beta")
    check_bool(bias_correction, "bias_correction")
    _checks.check_choice(start, "start", ("zero", "first"))
    if values.shape[0] == 0:
        return values

    def step(v: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
        v = beta * v + (1.0 - beta) * a
        return v, v

    if start == "first":
        _, rest = jax.lax.scan(step, values[0], values[1:])
        return jnp.concatenate([values[:1], rest])
    _, averages = jax.lax.scan(step, jnp.zeros_like(values[0]), values)
    if not bias_correction:
        return averages
    t = jnp.arange(1, values.shape[0] + 1, dtype=values.dtype)
    return averages / (1.0 - beta**t).reshape((-1,) + (1,) * (values.ndim - 1))


def steps_per_epoch(n: int, batch_size: int | None) -> int:
    """Iterations per epoch, ⌈n / batch_size⌉; batch_size None (full batch) gives 1.

    The notes' examples: 100000 / 1000 = 100, 34000 / 500 = 68, 1000 / 500 = 2.
    """
    _checks.check_number(n, "n", integer=True, positive=True)
    if batch_size is None:
        return 1
    _checks.check_number(batch_size, "batch_size", integer=True, positive=True)
    return int(-(-int(n) // int(batch_size)))
