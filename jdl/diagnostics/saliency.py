"""Saliency and attributions: which input entries a model's class score depends on.

Every function takes `fn`, mapping a batch x (n, ...) to outputs (n, classes) (logits, usually),
and `target`, a class index or an (n,) array of class indices, and returns attributions of x's
shape. Each example is differentiated on its own (vmap of a one-example gradient), so any model
whose examples do not interact works: an MLP, a CNN, a Flax module's `apply` in inference mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks


def _check(fn: Any, x: Any, target: Any) -> tuple[jax.Array, jax.Array]:
    """x as a float array (n, ...) and target as (n,) int32, after checking them against fn's output shape."""
    if not callable(fn):
        raise TypeError(f"fn must be a function of a batch x (n, ...) -> outputs (n, classes), got {_checks.describe(fn)}")
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be a batch with a leading axis of n >= 1 examples, got shape {tuple(x.shape)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must be floating point (attributions are gradients with respect to x), got dtype {x.dtype}; "
                        "for token ids attribute the embedding's output instead")
    out = jax.eval_shape(fn, x)
    shape = tuple(getattr(out, "shape", ()))
    if len(shape) != 2 or shape[0] != x.shape[0]:
        raise ValueError(f"fn must map x of shape {tuple(x.shape)} to outputs (n, classes) = ({x.shape[0]}, classes), "
                         f"got shape {shape}")
    classes = shape[1]
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if not 0 <= int(target) < classes:
            raise ValueError(f"target must be a class index in [0, {classes}) for fn's {classes} outputs, got {target}")
        return x, jnp.full((x.shape[0],), int(target), jnp.int32)
    array = np.asarray(target)
    if array.shape != (x.shape[0],) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"target must be a class index or an integer array of shape ({x.shape[0]},), "
                         f"got {_checks.describe(target)}")
    bad = (array < 0) | (array >= classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"target[{i}] = {int(array[i])} is not a class index in [0, {classes}) for fn's {classes} outputs")
    return x, jnp.asarray(array, jnp.int32)


def _score(fn: Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """s(x_i, t_i) = fn(x_i[None])[0, t_i]: one example's class score."""
    return lambda xi, ti: fn(xi[None])[0, ti]


def gradient(fn: Callable[[jax.Array], jax.Array], x: Any, *, target: Any) -> jax.Array:
    """Vanilla gradient (Simonyan et al. 2014): ∂ fn(x)[i, t_i] / ∂ x_i, shape of x."""
    x, target = _check(fn, x, target)
    return jax.jit(jax.vmap(jax.grad(_score(fn))))(x, target)


def gradient_x_input(fn: Callable[[jax.Array], jax.Array], x: Any, *, target: Any) -> jax.Array:
    """Gradient × input (Shrikumar et al. 2016): x ⊙ ∂ fn(x)[i, t_i] / ∂ x_i, shape of x."""
    x, target = _check(fn, x, target)
    return jax.jit(lambda x, t: x * jax.vmap(jax.grad(_score(fn)))(x, t))(x, target)


def integrated_gradients(fn: Callable[[jax.Array], jax.Array], x: Any, *, target: Any, baseline: Any = None,
                         steps: int = 64) -> jax.Array:
    """Integrated gradients (Sundararajan et al. 2017): (x − x') ⊙ ∫₀¹ ∇s(x' + α(x − x')) dα, shape of x.

    s is the target class score and x' the baseline (zeros by default; shape x or x[0]). The
    integral is a `steps`-point Gauss–Legendre rule on [0, 1]; completeness Σ attributions =
    s(x) − s(x') holds up to its error. Each example's `steps` path points go through fn as one batch.
    """
    x, target = _check(fn, x, target)
    _checks.check_number(steps, "steps", integer=True, positive=True)
    if baseline is None:
        baseline = jnp.zeros_like(x)
    else:
        baseline = jnp.asarray(baseline, x.dtype)
        if baseline.shape == x.shape[1:]:
            baseline = jnp.broadcast_to(baseline, x.shape)
        if baseline.shape != x.shape:
            raise ValueError(f"baseline must have x's shape {tuple(x.shape)} or one example's {tuple(x.shape[1:])}, "
                             f"got {tuple(baseline.shape)}")
    nodes, weights = np.polynomial.legendre.leggauss(int(steps))
    alphas = jnp.asarray((nodes + 1) / 2, x.dtype)
    weights = jnp.asarray(weights / 2, x.dtype)

    def one(xi, bi, ti):
        def path_score(points):
            return jnp.sum(weights * fn(points)[:, ti])

        points = bi[None] + alphas.reshape((-1,) + (1,) * xi.ndim) * (xi - bi)[None]
        return (xi - bi) * jnp.sum(jax.grad(path_score)(points), axis=0)

    return jax.jit(jax.vmap(one))(x, baseline, target)


def smoothgrad(fn: Callable[[jax.Array], jax.Array], x: Any, *, target: Any, noise: float = 0.15, samples: int = 32,
               seed: int = 0) -> jax.Array:
    """SmoothGrad (Smilkov et al. 2017): mean over `samples` draws of ∇s(x_i + ε), ε ~ N(0, σ²), shape of x.

    σ = noise · (max x_i − min x_i), per example. Draws come from `seed` (same seed, same result).
    """
    x, target = _check(fn, x, target)
    _checks.check_number(noise, "noise", nonnegative=True)
    _checks.check_number(samples, "samples", integer=True, positive=True)
    _checks.check_number(seed, "seed", integer=True)
    keys = jax.random.split(jax.random.key(int(seed)), x.shape[0])
    grad = jax.grad(_score(fn))

    def one(xi, ti, key):
        sigma = noise * (jnp.max(xi) - jnp.min(xi))
        eps = sigma * jax.random.normal(key, (int(samples), *xi.shape), xi.dtype)
        return jnp.mean(jax.vmap(grad, in_axes=(0, None))(xi[None] + eps, ti), axis=0)

    return jax.jit(jax.vmap(one))(x, target, keys)


def embedding_attributions(apply: Callable[..., jax.Array], tokens: Any, *, target: Any,
                           embed_type: type | None = None) -> jax.Array:
    """Gradient × input per token for a Flax model on token ids (n, T): Σ_features e ⊙ ∂ s / ∂ e, shape (n, T).

    apply(tokens) -> (n, classes) runs the Flax model; e is the output of its first embedding layer
    (flax.linen.Embed unless `embed_type` says otherwise), perturbed through `nn.intercept_methods`,
    so the model needs no change.
    """
    import flax.linen as nn

    tokens = jnp.asarray(tokens)
    if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(f"tokens must be integer ids of shape (n, T), got {_checks.describe(tokens)}")
    embed_type = embed_type or nn.Embed
    found: dict[str, Any] = {}

    def capture(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if isinstance(context.module, embed_type) and context.method_name == "__call__" and "shape" not in found:
            found["shape"] = jax.ShapeDtypeStruct(out.shape, out.dtype)
        return out

    with nn.intercept_methods(capture):
        jax.eval_shape(apply, tokens)
    if "shape" not in found:
        raise ValueError(f"the model has no {embed_type.__name__} layer to attribute tokens through")
    shape = found["shape"]

    def scores(delta):
        state = {"done": False}

        def add(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            if isinstance(context.module, embed_type) and context.method_name == "__call__" and not state["done"]:
                state["done"] = True
                found["embedding"] = out
                return out + delta
            return out

        with nn.intercept_methods(add):
            out = apply(tokens)
        return out, found["embedding"]

    out_shape = jax.eval_shape(lambda d: scores(d)[0], jnp.zeros(shape.shape, shape.dtype)).shape
    _, target = _check(lambda _: jnp.zeros(out_shape), jnp.zeros(tokens.shape, jnp.float32), target)
    delta = jnp.zeros(shape.shape, shape.dtype)

    def picked(d):
        out, embedding = scores(d)
        return jnp.sum(out[jnp.arange(out.shape[0]), target]), embedding

    grads, embedding = jax.grad(picked, has_aux=True)(delta)
    return jnp.sum(grads * jax.lax.stop_gradient(embedding), axis=-1)


__all__ = ["embedding_attributions", "gradient", "gradient_x_input", "integrated_gradients", "smoothgrad"]
