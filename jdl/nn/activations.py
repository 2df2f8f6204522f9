"""Activation functions of the course, Keras-spelled, and `get` by name.

All are element-wise `jnp` functions `(...) -> (...)` (softmax along `axis`),
differentiable with `jax.grad` except `step`, whose derivative is 0 almost
everywhere (the reason the perceptron rule is not gradient descent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jdl import _checks, _fn

Activation = Callable[[jax.Array], jax.Array]


def step(x: jax.Array, threshold: float = 0.0) -> jax.Array:
    """Heaviside step: 1 if x > threshold else 0 (the perceptron's output)."""
    x = jnp.asarray(x)
    return (x > threshold).astype(jnp.result_type(x, float))


def linear(x: jax.Array) -> jax.Array:
    """Identity: f(x) = x."""
    return jnp.asarray(x)


def sigmoid(x: jax.Array, steepness: float = 1.0) -> jax.Array:
    """Logistic sigmoid 1 / (1 + exp(-λx)); derivative λ·f(1-f) ∈ (0, λ/4]."""
    return jax.nn.sigmoid(steepness * jnp.asarray(x))


def bipolar_sigmoid(x: jax.Array, steepness: float = 1.0) -> jax.Array:
    """Bipolar sigmoid 2 / (1 + exp(-λx)) - 1 = tanh(λx/2), range (-1, 1)."""
    return jnp.tanh(0.5 * steepness * jnp.asarray(x))


def tanh(x: jax.Array) -> jax.Array:
    """Hyperbolic tangent (e^x - e^-x)/(e^x + e^-x); derivative 1 - f² ∈ (0, 1]."""
    return jnp.tanh(x)


def relu(x: jax.Array) -> jax.Array:
    """Rectified linear unit max(0, x); derivative 1 for x > 0, else 0."""
    return jax.nn.relu(x)


def leaky_relu(x: jax.Array, alpha: float = 0.01) -> jax.Array:
    """Leaky ReLU max(αx, x) for 0 ≤ α < 1: x if x > 0 else αx."""
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, alpha * x)


def elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """Exponential linear unit: x if x > 0 else α(e^x - 1)."""
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, alpha * jnp.expm1(jnp.minimum(x, 0.0)))


def selu(x: jax.Array) -> jax.Array:
    """Scaled ELU (Klambauer et al. 2017): 1.0507·elu(x, 1.67326)."""
    return jax.nn.selu(x)


def swish(x: jax.Array) -> jax.Array:
    """Swish / SiLU: x·sigmoid(x)."""
    return jax.nn.silu(x)


def gelu(x: jax.Array) -> jax.Array:
    """Gaussian error linear unit x·Φ(x), exact (erf) form as in Keras."""
    return jax.nn.gelu(x, approximate=False)


def softplus(x: jax.Array) -> jax.Array:
    """Softplus log(1 + e^x), computed stably."""
    return jax.nn.softplus(x)


def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Softmax e^{x_i} / Σ_j e^{x_j} along `axis`, shifted by the max for stability."""
    return jax.nn.softmax(x, axis=axis)


_TABLE: dict[str, Activation] = {
    "step": step,
    "linear": linear,
    "sigmoid": sigmoid,
    "bipolar_sigmoid": bipolar_sigmoid,
    "tanh": tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "swish": swish,
    "silu": swish,
    "gelu": gelu,
    "softplus": softplus,
    "softmax": softmax,
}


def names() -> list[str]:
    """The activation names `get` accepts."""
    return sorted(_TABLE)


def get(name_or_callable: str | Activation | None, **options: Any) -> Activation:
    """Resolve a Keras-style activation name (or None -> linear) to a function.

    Options bind the function's parameters, e.g. get("leaky_relu", alpha=0.2);
    a callable is returned unchanged.
    """
    if name_or_callable is None:
        name_or_callable = "linear"
    fn = _checks.lookup("activation", name_or_callable, _TABLE)
    if options:
        if not isinstance(name_or_callable, str):
            raise TypeError("activation options can only be given with an activation name, not a callable")
        _checks.bind_options("activation", name_or_callable, fn, options)
        for key, value in options.items():
            _checks.check_number(value, f"{name_or_callable} {key}", integer=(key == "axis"))
        fn = _fn.bind(fn, **options)
    return fn
