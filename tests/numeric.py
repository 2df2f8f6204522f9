"""Independent numerical references for the tests: float64 central finite differences.

`central_difference` evaluates f at x ± εe_i one entry at a time; it serves functions JAX cannot trace (NumPy loops,
host code). `jax_central_difference` and `jax_directional_differences` form the same float64 points in NumPy and
evaluate all of them in ONE jit-compiled, vmapped call of a jax.numpy function, instead of 2n calls, each of which
(for eager code) dispatches, and on a new shape compiles, every operation on its own. They need 64-bit JAX types, i.e.
the `x64` fixture of tests/conftest.py, and refuse to run without them rather than difference in float32.

`random_variables` gives a model's variables without running (or compiling) its initializers, for tests whose
reference holds for any parameter values: compiling random initializers costs about a second per kernel on XLA:CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def central_difference(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂x by (f(x + εe_i) - f(x - εe_i)) / 2ε for every entry i, in float64 NumPy."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += eps
        minus[index] -= eps
        grad[index] = (float(f(plus)) - float(f(minus))) / (2 * eps)
    return grad


def jax_directional_differences(f: Callable, x: np.ndarray, directions: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(f(x + εd) - f(x - εd)) / 2ε for every row d of `directions`: all the points in one vmapped call of f.

    f maps a float64 array shaped like x to a scalar and is written in jax.numpy. The points are formed in float64
    NumPy, exactly as `central_difference` forms them; only f's evaluations run in JAX.
    """
    if not jax.config.jax_enable_x64:
        raise RuntimeError("jax_directional_differences needs float64: run under the x64 fixture")
    x = np.array(x, dtype=np.float64)
    directions = np.asarray(directions, dtype=np.float64).reshape((-1,) + x.shape)
    points = np.concatenate([x + eps * directions, x - eps * directions])
    values = np.asarray(jax.jit(jax.vmap(f))(points))
    if values.shape != (points.shape[0],) or values.dtype != np.float64:
        raise TypeError(f"f must return a float64 scalar per point, got {values.dtype} values of shape "
                        f"{values.shape[1:]}")
    count = directions.shape[0]
    return (values[:count] - values[count:]) / (2 * eps)


def jax_central_difference(f: Callable, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂x by (f(x + εe_i) - f(x - εe_i)) / 2ε for every entry i, in float64, in one vmapped call of f."""
    x = np.asarray(x, dtype=np.float64)
    basis = np.eye(x.size).reshape((x.size,) + x.shape)
    return jax_directional_differences(f, x, basis, eps).reshape(x.shape)


def random_variables(module: Any, *inputs: Any, seed: int = 0, scale: float = 0.5, dtype: Any = None) -> Any:
    """Variables of the shapes `module.init(key, *inputs)` gives, floats drawn N(0, scale²) in NumPy (no init compile).

    The initializers only run abstractly (jax.eval_shape), so the module's shape checks still run. Float leaves get
    `dtype` (default: their own); other leaves (integer counters) are zeros.
    """
    shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), *inputs)
    rng = np.random.default_rng(seed)

    def fill(leaf):
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            return jnp.asarray(np.zeros(leaf.shape, leaf.dtype))
        return jnp.asarray((scale * rng.standard_normal(leaf.shape)).astype(dtype or leaf.dtype))

    return jax.tree_util.tree_map(fill, shapes)
