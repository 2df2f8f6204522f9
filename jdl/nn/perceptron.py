"""Rosenblatt's perceptron: a Linen module and its learning rule as a pure, jit-compiled function."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl.nn import activations, initializers


class Perceptron(nn.Module):
    """Weighted sum and step: ŷ = 1 if w·x + b > threshold else 0. x (batch, d) -> ŷ (batch,).

    Parameters: kernel (d, 1) and, with use_bias, bias (1,).
    """

    threshold: float = 0.0
    use_bias: bool = True
    kernel_init: initializers.Initializer = initializers.zeros()
    bias_init: initializers.Initializer = initializers.zeros()

    @nn.compact
    def weighted_sum(self, x: jax.Array) -> jax.Array:
        """Net input z = x·w + b: (batch, d) -> (batch,)."""
        x = _checks.as_array(x, "x", dtype_kind="float")
        _checks.check_ndim(x, "x", (2,))
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], 1), x.dtype)
        z = (x @ kernel)[:, 0]
        if self.use_bias:
            z = z + self.param("bias", self.bias_init, (1,), x.dtype)[0]
        return z

    def __call__(self, x: jax.Array) -> jax.Array:
        return activations.step(self.weighted_sum(x), self.threshold)


class PerceptronResult(NamedTuple):
    """Outcome of `perceptron_fit`: Perceptron params, convergence, and mistakes per epoch."""

    params: dict[str, Any]
    converged: bool
    epochs: int
    errors: np.ndarray


@functools.partial(jax.jit, static_argnames=("max_epochs", "shuffle"))
def perceptron_epochs(
    kernel: jax.Array,
    bias: jax.Array,
    x: jax.Array,
    y: jax.Array,
    learning_rate: jax.Array,
    threshold: jax.Array,
    key: jax.Array,
    *,
    max_epochs: int,
    shuffle: bool,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Run the perceptron rule until an epoch makes no mistake or max_epochs pass.

    Online rule, one example at a time: ŷ = step(w·x + b - θ); w += η(y - ŷ)x; b += η(y - ŷ).
    kernel (d,), bias (), x (n, d), y (n,) -> (kernel, bias, epochs run, mistakes (max_epochs,), -1 if not run).
    """
    n = x.shape[0]

    def example(carry, i):
        w, b = carry
        error = y[i] - activations.step(x[i] @ w + b, threshold)
        return (w + learning_rate * error * x[i], b + learning_rate * error), error != 0

    def epoch(carry):
        w, b, done_epochs, mistakes, key = carry
        key, subkey = jax.random.split(key)
        order = jax.random.permutation(subkey, n) if shuffle else jnp.arange(n)
        (w, b), wrong = jax.lax.scan(example, (w, b), order)
        mistakes = mistakes.at[done_epochs].set(wrong.sum())
        return w, b, done_epochs + 1, mistakes, key

    def running(carry):
        _, _, done_epochs, mistakes, _ = carry
        last = mistakes[jnp.maximum(done_epochs - 1, 0)]
        return (done_epochs < max_epochs) & ((done_epochs == 0) | (last > 0))

    start = (kernel, bias, jnp.asarray(0), jnp.full((max_epochs,), -1), key)
    w, b, done_epochs, mistakes, _ = jax.lax.while_loop(running, epoch, start)
    return w, b, done_epochs, mistakes


def perceptron_fit(
    x: Any,
    y: Any,
    *,
    learning_rate: float = 1.0,
    max_epochs: int = 100,
    threshold: float = 0.0,
    params: dict[str, Any] | None = None,
    shuffle: bool = False,
    seed: int = 0,
) -> PerceptronResult:
    """Train a `Perceptron` with the perceptron learning rule, stopping after a mistake-free epoch.

    x (n, d), y (n,) in {0, 1}. Converges on linearly separable data (AND, OR);
    on XOR it stops after `max_epochs` with converged=False. `params` (a
    Perceptron's variables) sets the starting weights, default zeros; with
    shuffle=True each epoch visits the examples in an order drawn from `seed`.
    """
    x = _checks.as_array(x, "x", dtype_kind="float")
    _checks.check_ndim(x, "x", (2,))
    y = _checks.as_array(y, "y", dtype_kind="float").astype(x.dtype)
    _checks.check_ndim(y, "y", (1,))
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y must have the same number of examples, got x {tuple(x.shape)} and y {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError("x must hold at least one example, got 0")
    if not np.all(np.isin(np.asarray(y), (0.0, 1.0))):
        raise ValueError(f"y must hold binary labels in {{0, 1}}, got values {np.unique(np.asarray(y))[:10].tolist()}")
    if not np.all(np.isfinite(np.asarray(x))):
        raise ValueError("x must be finite, got NaN or Inf")
    _checks.check_number(learning_rate, "learning_rate", positive=True)
    _checks.check_number(max_epochs, "max_epochs", integer=True, positive=True)
    _checks.check_number(threshold, "threshold")
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)
    if not isinstance(shuffle, bool):
        raise TypeError(f"shuffle must be a bool, got {_checks.describe(shuffle)}")

    d = x.shape[1]
    if params is None:
        kernel, bias = jnp.zeros((d,), x.dtype), jnp.zeros((), x.dtype)
    else:
        try:
            kernel = jnp.asarray(params["params"]["kernel"], x.dtype)
            bias = jnp.asarray(params["params"].get("bias", jnp.zeros((1,))), x.dtype)
        except (KeyError, TypeError) as err:
            raise ValueError("params must be a Perceptron's variables {'params': {'kernel': (d, 1), 'bias': (1,)}}") from err
        if kernel.shape != (d, 1) or bias.shape != (1,):
            raise ValueError(
                f"params must hold kernel of shape {(d, 1)} and bias of shape (1,), "
                f"got kernel {tuple(kernel.shape)} and bias {tuple(bias.shape)}"
            )
        kernel, bias = kernel[:, 0], bias[0]

    w, b, epochs, mistakes = perceptron_epochs(
        kernel, bias, x, y, jnp.asarray(learning_rate, x.dtype), jnp.asarray(threshold, x.dtype),
        jax.random.PRNGKey(seed), max_epochs=int(max_epochs), shuffle=shuffle,
    )
    epochs = int(epochs)
    errors = np.asarray(mistakes[:epochs])
    return PerceptronResult(
        params={"params": {"kernel": w[:, None], "bias": b[None]}},
        converged=bool(errors[-1] == 0),
        epochs=epochs,
        errors=errors,
    )
