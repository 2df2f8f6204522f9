"""Argument validation shared by jdl's public entry points.

Every check runs on Python values or on array shapes and dtypes, so it raises
before JAX traces anything. Checks on array *values* (label ranges, signs) run
only when the array is concrete; inside `jax.jit` they are skipped and the
caller (e.g. the Trainer) validates the data once, at entry.
"""

from __future__ import annotations

import difflib
import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when `x` holds values Python can read (not a JAX tracer)."""
    return not isinstance(x, jax.core.Tracer)


def describe(x: Any) -> str:
    """A short description of what arrived: shape and dtype for arrays."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"an array of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"


def as_array(x: Any, name: str, *, dtype_kind: str | None = None) -> jax.Array:
    """`x` as a JAX array; TypeError naming `name` when it is not numeric.

    dtype_kind: None (any numeric), "float" (inexact; ints are promoted to the
    default float dtype) or "int" (integer or bool, or floats holding whole
    numbers when concrete).
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a numeric array, got {describe(x)}")
    if not hasattr(x, "dtype"):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a numeric array, got {describe(x)}") from err
        if x.dtype == object or not (
            np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)
        ):
            raise TypeError(f"{name} must be a numeric array, got an array of dtype {x.dtype}")
    kind = np.dtype(x.dtype).kind
    if kind not in "biufc":
        raise TypeError(f"{name} must be a numeric array, got {describe(x)}")
    if dtype_kind == "float" and kind in "biu":
        return jnp.asarray(x, dtype=jnp.result_type(float))
    if dtype_kind == "int" and kind in "fc":
        if not is_concrete(x):
            raise TypeError(f"{name} must hold integer class labels, got {describe(x)}")
        values = np.asarray(x)
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        return jnp.asarray(values.astype(np.int32))
    return jnp.asarray(x)


def check_same_shape(a: jax.Array, b: jax.Array, name_a: str, name_b: str) -> None:
    """ValueError unless `a` and `b` have identical shapes."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {name_a} "
            f"{tuple(a.shape)} and {name_b} {tuple(b.shape)}"
        )


def check_ndim(x: jax.Array, name: str, allowed: Iterable[int]) -> None:
    """ValueError unless `x.ndim` is one of `allowed`."""
    allowed = tuple(allowed)
    if x.ndim not in allowed:
        expected = " or ".join(str(n) for n in allowed)
        raise ValueError(
            f"{name} must have {expected} dimensions, got shape {tuple(x.shape)} ({x.ndim} dimensions)"
        )


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> None:
    """ValueError unless `value` is one of `choices`."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_number(
    value: Any,
    name: str,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    integer: bool = False,
) -> None:
    """TypeError/ValueError unless `value` is a finite real (int) with the asked sign."""
    wanted = "an integer" if integer else "a real number"
    if isinstance(value, bool) or not isinstance(
        value, numbers.Integral if integer else numbers.Real
    ):
        raise TypeError(f"{name} must be {wanted}, got {describe(value)}")
    if not np.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def check_nonnegative_values(x: jax.Array, name: str) -> None:
    """ValueError when a concrete `x` has a negative or non-finite entry."""
    if not is_concrete(x):
        return
    values = np.asarray(x)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite, got non-finite values")
    if np.any(values < 0):
        raise ValueError(
            f"{name} must be non-negative, got minimum {values.min().item()!r}"
        )


def check_int_range(labels: jax.Array, name: str, upper: int) -> None:
    """ValueError when concrete integer `labels` fall outside [0, upper)."""
    if not is_concrete(labels) or labels.size == 0:
        return
    values = np.asarray(labels)
    low, high = values.min().item(), values.max().item()
    if low < 0 or high >= upper:
        raise ValueError(
            f"{name} must be integer class labels in [0, {upper - 1}] "
            f"({upper} classes), got values from {low} to {high}"
        )


def lookup(kind: str, name: Any, table: Mapping[str, Callable]) -> Callable:
    """Resolve `name` (a string, or a callable returned as is) in `table`.

    ValueError listing the valid names, with the closest matches first, for an
    unknown name; TypeError for anything that is neither a string nor callable.
    """
    if callable(name) and not isinstance(name, str):
        return name
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a name (str) or a callable, got {describe(name)}")
    key = name.lower()
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, table.keys(), n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown {kind} {name!r}.{hint} Valid names: {', '.join(sorted(table))}"
    )


def bind_options(kind: str, name: str, fn: Callable, options: Mapping[str, Any], skip: int = 1) -> None:
    """TypeError when `options` are not keyword arguments of `fn` (after its first `skip`)."""
    keywordable = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    accepted = [p.name for p in list(inspect.signature(fn).parameters.values())[skip:] if p.kind in keywordable]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise TypeError(f"{kind} {name!r} got unknown option(s) {unknown}; it accepts {accepted}")
