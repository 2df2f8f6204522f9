"""Weight initializers of the course, usable as Flax `kernel_init`, and `get` by name.

Each factory returns `init(key, shape, dtype=float32) -> Array`. Fans follow
Flax and Keras: for a kernel of shape (..., fan_in_base, fan_out_base) the
leading axes are the receptive field, fan_in = receptive · shape[-2] and
fan_out = receptive · shape[-1] (Dense (in, out), Conv (kh, kw, in, out)).
"Normal" means a plain normal, not a truncated one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jdl import _checks

Initializer = Callable[..., jax.Array]


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel shape: receptive·shape[-2], receptive·shape[-1]."""
    shape = _check_shape(shape)
    if len(shape) < 2:
        raise ValueError(
            f"shape must have at least 2 dimensions (..., fan_in, fan_out) for a fan-based "
            f"initializer, got {shape}"
        )
    receptive = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    if fan_in == 0 or fan_out == 0:
        raise ValueError(f"shape must have non-zero fans for a fan-based initializer, got {shape}")
    return fan_in, fan_out


def _check_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of ints, got {_checks.describe(shape)}") from None
    for dim in shape:
        _checks.check_number(dim, "shape entries", integer=True, nonnegative=True)
    return tuple(int(d) for d in shape)


def _scaled(std_of_fans: Callable[[int, int], float], distribution: str) -> Initializer:
    """An initializer whose standard deviation is std_of_fans(fan_in, fan_out)."""

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        fan_in, fan_out = fans(shape)
        std = std_of_fans(fan_in, fan_out)
        if distribution == "normal":
            return std * jax.random.normal(key, shape, dtype)
        limit = math.sqrt(3.0) * std
        return jax.random.uniform(key, shape, dtype, -limit, limit)

    return init


def uniform() -> Initializer:
    """U(-1/√fan_in, 1/√fan_in): the notes' (and PyTorch Linear's) default."""
    return _scaled(lambda fi, fo: 1.0 / math.sqrt(3.0 * fi), "uniform")


def xavier_normal() -> Initializer:
    """Glorot/Xavier normal: N(0, σ²), σ = √(2 / (fan_in + fan_out))."""
    return _scaled(lambda fi, fo: math.sqrt(2.0 / (fi + fo)), "normal")


def xavier_uniform() -> Initializer:
    """Glorot/Xavier uniform: U(-√(6/(fan_in + fan_out)), +√(6/(fan_in + fan_out)))."""
    return _scaled(lambda fi, fo: math.sqrt(2.0 / (fi + fo)), "uniform")


def he_normal() -> Initializer:
    """He/Kaiming normal: N(0, σ²), σ = √(2 / fan_in)."""
    return _scaled(lambda fi, fo: math.sqrt(2.0 / fi), "normal")


def he_uniform() -> Initializer:
    """He/Kaiming uniform: U(-√(6/fan_in), +√(6/fan_in))."""
    return _scaled(lambda fi, fo: math.sqrt(2.0 / fi), "uniform")


def lecun_normal() -> Initializer:
    """LeCun normal: N(0, σ²), σ = √(1 / fan_in)."""
    return _scaled(lambda fi, fo: math.sqrt(1.0 / fi), "normal")


def lecun_uniform() -> Initializer:
    """LeCun uniform: U(-√(3/fan_in), +√(3/fan_in))."""
    return _scaled(lambda fi, fo: math.sqrt(1.0 / fi), "uniform")


def random_normal(stddev: float = 0.05, mean: float = 0.0) -> Initializer:
    """N(mean, stddev²) regardless of the fans (Keras RandomNormal)."""
    _checks.check_number(stddev, "stddev", nonnegative=True)
    _checks.check_number(mean, "mean")

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return mean + stddev * jax.random.normal(key, _check_shape(shape), dtype)

    return init


def random_uniform(minval: float = -0.05, maxval: float = 0.05) -> Initializer:
    """U(minval, maxval) regardless of the fans (Keras RandomUniform)."""
    _checks.check_number(minval, "minval")
    _checks.check_number(maxval, "maxval")
    if not minval < maxval:
        raise ValueError(f"minval must be < maxval, got minval={minval!r}, maxval={maxval!r}")

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, _check_shape(shape), dtype, minval, maxval)

    return init


def orthogonal(gain: float = 1.0) -> Initializer:
    """Orthogonal (Saxe et al. 2014): gain·Q, Q from the QR of a normal draw, over the last axis."""
    _checks.check_number(gain, "gain")

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        fans(shape)
        return jax.nn.initializers.orthogonal(scale=gain)(key, _check_shape(shape), dtype)

    return init


def constant(value: float) -> Initializer:
    """Every entry equal to `value`."""
    _checks.check_number(value, "value")

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        del key
        return jnp.full(_check_shape(shape), value, dtype)

    return init


def zeros() -> Initializer:
    """All zeros: every hidden unit starts (and stays) identical, the symmetry problem."""
    return constant(0.0)


def ones() -> Initializer:
    """All ones."""
    return constant(1.0)


_TABLE: dict[str, Callable[..., Initializer]] = {
    "uniform": uniform,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "random_normal": random_normal,
    "random_uniform": random_uniform,
    "orthogonal": orthogonal,
    "constant": constant,
    "zeros": zeros,
    "ones": ones,
}


def names() -> list[str]:
    """The initializer names `get` accepts."""
    return sorted(_TABLE)


def get(name_or_callable: str | Initializer, **options: Any) -> Initializer:
    """Resolve an initializer name (Keras or notes spelling) to `init(key, shape, dtype)`.

    Options go to the factory, e.g. get("random_normal", stddev=1.0); a
    callable is taken to be an initializer already and returned unchanged.
    """
    if callable(name_or_callable) and not isinstance(name_or_callable, str):
        if options:
            raise TypeError("initializer options can only be given with an initializer name, not a callable")
        return name_or_callable
    factory = _checks.lookup("initializer", name_or_callable, _TABLE)
    _checks.bind_options("initializer", name_or_callable, factory, options, skip=0)
    return factory(**options)
