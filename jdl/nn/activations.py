"""Activation functions of the course, Keras-spelled, and `get` by name.

All are element-wise `jnp` functions `(...) -> (...)` (softmax along `axis`),
differentiable with `jax.grad` except `step`, whose derivative is 0 almost
everywhere (the reason the perceptron rule is not gradient descent). "prelu"
has a learnable slope, so it is a layer: `layer("prelu")` inside a module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks, _fn
from jdl.nn.layers import PReLU

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


def leaky_relu(x: jax.Array, alpha: float | None = None, negative_slope: float | None = None) -> jax.Array:
    """Leaky ReLU max(αx, x) for 0 ≤ α < 1: x if x > 0 else αx, α = 0.01 by default.

    negative_slope: Keras 3's name for α (give at most one of the two; Keras' own default is 0.2).
    """
    if alpha is not None and negative_slope is not None:
        raise ValueError(f"leaky_relu takes alpha or its Keras name negative_slope, not both; got alpha={alpha!r} "
                         f"and negative_slope={negative_slope!r}")
    alpha = negative_slope if negative_slope is not None else 0.01 if alpha is None else alpha
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


def gelu(x: jax.Array, approximate: bool = False) -> jax.Array:
    """Gaussian error linear unit x·Φ(x), exact (erf) form as Keras' default.

    approximate=True: the tanh form 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))), as Keras' approximate=True.
    """
    if not isinstance(approximate, (bool, np.bool_)):
        raise TypeError(f"gelu approximate must be a bool, got {_checks.describe(approximate)}")
    return jax.nn.gelu(x, approximate=bool(approximate))


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


LAYERS = ("prelu",)  # activations with parameters: built by `layer`, not returned by `get`


def names() -> list[str]:
    """The activation names `get` accepts (`layer` accepts these and LAYERS)."""
    return sorted(_TABLE)


def get(name_or_callable: str | Activation | None, **options: Any) -> Activation:
    """Resolve a Keras-style activation name (or None -> linear) to a function.

    Options bind the function's parameters, e.g. get("leaky_relu", alpha=0.2);
    a callable is returned unchanged.
    """
    if name_or_callable is None:
        name_or_callable = "linear"
    if _is_layer_name(name_or_callable):
        raise ValueError(f"activation {name_or_callable!r} has a learnable slope, so it is a layer, not a function: "
                         "pass activation='prelu' to a layer (MLP, Dense, Conv2D), use jdl.nn.PReLU(), or "
                         "activations.layer('prelu') inside a module")
    fn = _checks.lookup("activation", name_or_callable, _TABLE)
    if options:
        if not isinstance(name_or_callable, str):
            raise TypeError("activation options can only be given with an activation name, not a callable")
        _checks.bind_options("activation", name_or_callable, fn, options)
        for key, value in options.items():
            if key == "approximate":
                if not isinstance(value, (bool, np.bool_)):
                    raise TypeError(f"{name_or_callable} approximate must be a bool, got {_checks.describe(value)}")
            else:
                _checks.check_number(value, f"{name_or_callable} {key}", integer=(key == "axis"))
        if "alpha" in options and "negative_slope" in options:
            raise ValueError(f"{name_or_callable} takes alpha or its Keras name negative_slope, not both; got "
                             f"alpha={options['alpha']!r} and negative_slope={options['negative_slope']!r}")
        fn = _fn.bind(fn, **options)
    return fn


def _is_layer_name(name_or_callable: Any) -> bool:
    return isinstance(name_or_callable, str) and name_or_callable.lower() in LAYERS


def check(name_or_callable: str | Activation | None, **options: Any) -> None:
    """ValueError/TypeError unless `layer(name_or_callable, **options)` would build (for a module's __post_init__)."""
    if not _is_layer_name(name_or_callable):
        get(name_or_callable, **options)
        return
    unknown = [k for k in options if k not in ("alpha_init", "shared_axes")]
    if unknown:
        raise TypeError(f"activation 'prelu' got unknown option(s) {unknown}; it accepts ['alpha_init', 'shared_axes']")


def layer(name_or_callable: str | Activation | None, **options: Any) -> Activation:
    """One layer's activation, built inside a Flax compact method: `get`'s function, or a fresh PReLU for "prelu".

    The PReLU has its own learnable α per unit (options alpha_init, shared_axes); call `layer` once
    per layer, so that layers do not share a slope.
    """
    if not _is_layer_name(name_or_callable):
        return get(name_or_callable, **options)
    check(name_or_callable, **options)
    return PReLU(**options)
