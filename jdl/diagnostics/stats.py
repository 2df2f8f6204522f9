"""Gradient and activation statistics, per layer: pure functions of gradients, moments and parameters.

Layers are the modules that own parameters ("Dense_0", "MultiHeadDotProductAttention_0/query"),
named as in `jdl.diagnostics.layer_names`. Every function returns plain dicts of JAX scalars or
arrays, so it runs inside `jax.jit` and inside a training step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jdl import _checks
from jdl._tree import layer_name


def _per_layer(tree: Any, reduce_leaf: Callable[[jax.Array], jax.Array]) -> dict[str, jax.Array]:
    """Σ over each layer's leaves of reduce_leaf(leaf)."""
    out: dict[str, jax.Array] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = layer_name(path)
        value = reduce_leaf(leaf)
        out[name] = out[name] + value if name in out else value
    return out


def _sq(leaf: jax.Array) -> jax.Array:
    leaf = leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32))
    return jnp.sum(leaf * leaf)


def layer_norms(tree: Any) -> dict[str, jax.Array]:
    """‖θ_l‖₂ of each layer's leaves taken together (gradients, parameters or updates)."""
    return {name: jnp.sqrt(v) for name, v in _per_layer(tree, _sq).items()}


def global_norm(tree: Any) -> jax.Array:
    """‖θ‖₂ over every leaf."""
    return jnp.sqrt(sum(_sq(leaf) for leaf in jax.tree_util.tree_leaves(tree)))


def update_ratios(old_params: Any, new_params: Any) -> dict[str, jax.Array]:
    """‖θ_new − θ_old‖ / ‖θ_old‖ per layer (≈ 1e-3 is the usual healthy order for a step)."""
    delta = layer_norms(jax.tree_util.tree_map(jnp.subtract, new_params, old_params))
    size = layer_norms(old_params)
    return {name: delta[name] / jnp.maximum(size[name], 1e-30) for name in delta}


def distance_from_init(params: Any, initial_params: Any) -> dict[str, jax.Array]:
    """‖θ − θ₀‖ per layer: how far training has moved each layer from its initialization."""
    return layer_norms(jax.tree_util.tree_map(jnp.subtract, params, initial_params))


def norm_distribution(norms: jax.Array, k: int = 5) -> dict[str, jax.Array]:
    """Summary of per-example gradient norms (n,): mean, std, 5/25/50/75/95% quantiles, the k largest and their indices."""
    _checks.check_number(k, "k", integer=True, positive=True)
    norms = jnp.asarray(norms)
    if norms.ndim != 1 or norms.shape[0] == 0:
        raise ValueError(f"norms must have shape (n,) with n >= 1, got shape {tuple(norms.shape)}")
    k = min(int(k), norms.shape[0])
    values, indices = jax.lax.top_k(norms, k)
    qs = jnp.quantile(norms, jnp.asarray([0.05, 0.25, 0.5, 0.75, 0.95]))
    return {"mean": norms.mean(), "std": norms.std(), "quantiles": qs, "top_values": values, "top_indices": indices}


def _check_moments(total: Any, squares: Any, n: Any) -> None:
    if jax.tree_util.tree_structure(total) != jax.tree_util.tree_structure(squares):
        raise ValueError("total and squares must be pytrees of the same structure (from per_example_moments)")
    if _checks.is_concrete(n):
        _checks.check_number(n, "n", integer=True, positive=True)
        if int(n) < 2:
            raise ValueError(f"n must be at least 2 to estimate a variance, got {n}")


def gradient_variance(total: Any, squares: Any, n: int) -> Any:
    """Unbiased per-entry variance of per-example gradients: (Σg² − (Σg)²/n) / (n − 1)."""
    _check_moments(total, squares, n)
    return jax.tree_util.tree_map(lambda s, q: jnp.maximum(q - s * s / n, 0.0) / (n - 1), total, squares)


def gsnr(total: Any, squares: Any, n: int, eps: float = 1e-30) -> dict[str, jax.Array]:
    """Gradient signal-to-noise ratio per layer: mean over the layer's entries of E[g]² / Var[g] (Liu et al. 2020)."""
    variance = gradient_variance(total, squares, n)
    ratio = jax.tree_util.tree_map(lambda s, v: (s / n) ** 2 / (v + eps), total, variance)
    sums = _per_layer(ratio, jnp.sum)
    sizes = _per_layer(ratio, lambda leaf: jnp.asarray(leaf.size, jnp.float32))
    return {name: sums[name] / sizes[name] for name in sums}


def noise_parts(total: Any, squares: Any, n: int) -> tuple[jax.Array, jax.Array]:
    """(|G|², tr(Σ)): the unbiased estimates ‖ḡ‖² − tr(Σ)/n and Σ per-entry variances (McCandlish et al. 2018, App. A).

    Their running averages, divided afterwards, estimate B_simple more stably than per-step ratios.
    """
    variance = gradient_variance(total, squares, n)
    trace = sum(jnp.sum(v) for v in jax.tree_util.tree_leaves(variance))
    mean_sq = sum(jnp.sum((s / n) ** 2) for s in jax.tree_util.tree_leaves(total))
    return mean_sq - trace / n, trace


def noise_scale(total: Any, squares: Any, n: int) -> jax.Array:
    """Simple gradient noise scale B_simple = tr(Σ) / ‖G‖² (McCandlish et al. 2018).

    tr(Σ) is the summed unbiased per-entry variance of per-example gradients; ‖G‖² the unbiased
    estimate ‖ḡ‖² − tr(Σ)/n of the true gradient's squared norm; NaN when that estimate is not
    positive (the batch's mean gradient is indistinguishable from noise, e.g. near convergence).
    """
    signal, trace = noise_parts(total, squares, n)
    return jnp.where(signal > 0, trace / jnp.where(signal > 0, signal, 1.0), jnp.nan)


# -- activations -------------------------------------------------------------------------------

SATURATION = {"sigmoid": 0.99, "tanh": 0.99, "bipolar_sigmoid": 0.99}


def preactivations(apply_fn: Callable[..., Any], variables: Mapping[str, Any], x: Any,
                   layer_types: tuple[type, ...] = (nn.Dense, nn.Conv, nn.BatchNorm),
                   **kwargs: Any) -> dict[str, jax.Array]:
    """Outputs of the Dense/Conv layers in call order, BatchNorm's instead where one follows: {layer: (n, ..., units)}.

    These are the pre-activations z that an element-wise activation then squashes. The last layer
    (the output head) is dropped. Captured by intercepting the layers' calls (no model change).
    """
    return captured_preactivations(lambda: apply_fn(variables, x, **kwargs), layer_types)


def captured_preactivations(run: Callable[[], Any],
                            layer_types: tuple[type, ...] = (nn.Dense, nn.Conv, nn.BatchNorm)) -> dict[str, jax.Array]:
    """`preactivations` of whatever Flax model run() calls (a model's apply, or a loss function calling one)."""
    found: dict[str, jax.Array] = {}

    def interceptor(next_fun, args, kwargs_, context):
        out = next_fun(*args, **kwargs_)
        if isinstance(context.module, layer_types) and context.method_name == "__call__":
            name = "/".join(context.module.path)
            normalizes = isinstance(context.module, nn.BatchNorm)
            if normalizes and found:
                found.pop(next(reversed(found)))
            found[name] = out
        return out

    with nn.intercept_methods(interceptor):
        run()
    return dict(list(found.items())[:-1])


def activation_stats(z: jax.Array, activation: str) -> dict[str, jax.Array]:
    """Statistics of a = activation(z) for pre-activations z (n, ..., units).

    mean and std of a; saturated: the fraction of |a| beyond 0.99 of its range (sigmoid: a < 0.01 or
    a > 0.99; tanh: |a| > 0.99), 0 for unbounded activations; dead: the fraction of units whose
    output is 0 for every example (ReLU), 0 for activations that never output a constant zero.
    """
    from jdl.nn import activations

    fn = activations.get(activation)
    a = fn(z)
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", "")
    units = a.reshape(-1, a.shape[-1])
    if name == "sigmoid":
        saturated = jnp.mean((a < 0.01) | (a > 0.99))
    elif name in ("tanh", "bipolar_sigmoid"):
        saturated = jnp.mean(jnp.abs(a) > 0.99)
    else:
        saturated = jnp.zeros(())
    dead = jnp.mean(jnp.all(units <= 0, axis=0)) if name in ("relu", "step") else jnp.zeros(())
    return {"mean": a.mean(), "std": a.std(), "saturated": saturated.astype(jnp.float32), "dead": dead.astype(jnp.float32)}
