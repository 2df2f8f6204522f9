"""The validated, jit-compiled public functions: per-example gradients, their exact norms and moments, fast-path coverage."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl import _tree
from jdl._tree import layer_name
from jdl.diagnostics.per_example import cache, contract, core

METHODS = ("auto", "fast", "vmap")


def _check(loss_fn: Any, params: Any, batch: Any, chunk_size: Any = None) -> tuple[Callable, tuple[Any, ...], int]:
    """(loss_fn in its one-example form, batch as a tuple, n) after checking every argument, before any FLOP."""
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable loss_fn(params, x_i, y_i) -> scalar (one example) or "
                        f"loss_fn(params, x, y) -> (n,) losses, got {_checks.describe(loss_fn)}")
    contract.check_params(params)
    if not isinstance(batch, (tuple, list)):
        raise TypeError(f"batch must be a tuple of per-example arguments such as (x, y), got {_checks.describe(batch)}")
    leaves = jax.tree_util.tree_leaves(batch)
    if not leaves:
        raise ValueError("batch must hold at least one array with a leading example axis, got none")
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in leaves}
    if -1 in sizes:
        raise ValueError("every array in batch must have a leading example axis (n, ...), got a scalar")
    if len(sizes) > 1:
        raise ValueError(f"every array in batch must have the same number of examples, got sizes {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ValueError("batch must hold at least one example, got 0")
    if chunk_size is not None:
        _checks.check_number(chunk_size, "chunk_size", integer=True, positive=True)
    batch = tuple(batch)
    return contract.example_form(loss_fn, params, batch, n), batch, n


def _check_method(method: Any) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return method


def _planned(core_fn: Callable, loss_fn: Callable, chunk_size: int | None) -> Callable:
    """build(plan) -> jit(core_fn(loss_fn, params, batch, plan, chunk_size)) as a function of (params, batch)."""
    return lambda plan: jax.jit(functools.partial(core_fn, loss_fn, plan=plan, chunk_size=chunk_size))


def per_example_grads(loss_fn: Callable[..., jax.Array], params: Any, batch: Sequence[Any], *,
                      chunk_size: int | None = None) -> Any:
    """∇_θ ℓ(θ; example_i) for every example: a pytree like params with a leading (n,) axis.

    vmap(grad(loss_fn)) over the leading axis of every array in batch; chunk_size bounds memory.
    """
    loss_fn, batch, n = _check(loss_fn, params, batch, chunk_size)
    entry = cache.entry(loss_fn, params, batch, "vmap", chunk_size)
    fn = entry.function("grads", lambda plan: jax.jit(functools.partial(core.grads, loss_fn, chunk_size=chunk_size)))
    return fn(params, batch)


def per_example_grad_norms(loss_fn: Callable[..., jax.Array], params: Any, batch: Sequence[Any], *,
                           by_layer: bool = False, method: str = "auto",
                           chunk_size: int | None = None) -> jax.Array | dict[str, jax.Array]:
    """Exact ‖∇_θ ℓ(θ; example_i)‖₂ for every example: (n,), or {layer: (n,)} with by_layer.

    method: "vmap" (norms of vmap(grad)), "fast" (layer algebra, see `jdl.diagnostics.per_example`;
    other parameters by vmap in the same pass), "auto" (fast when the model has a layer it covers).
    """
    loss_fn, batch, n = _check(loss_fn, params, batch, chunk_size)
    method = _check_method(method)
    if not isinstance(by_layer, bool):
        raise TypeError(f"by_layer must be True or False, got {_checks.describe(by_layer)}")
    entry = cache.entry(loss_fn, params, batch, method, chunk_size)
    leaf_sq = entry.function("norms", _planned(core.leaf_sq_norms, loss_fn, chunk_size))(params, batch)
    if by_layer:
        return {name: jnp.sqrt(v) for name, v in _by_layer(params, leaf_sq).items()}
    return jnp.sqrt(sum(leaf_sq[1:], leaf_sq[0]))


def _by_layer(params: Any, leaf_values: Sequence[jax.Array]) -> dict[str, jax.Array]:
    """Sum per-leaf values (n,) into per-layer values {layer: (n,)}."""
    out: dict[str, jax.Array] = {}
    for (path, _), value in zip(jax.tree_util.tree_flatten_with_path(params)[0], leaf_values):
        name = layer_name(path)
        out[name] = out[name] + value if name in out else value
    return out


def per_example_moments(loss_fn: Callable[..., jax.Array], params: Any, batch: Sequence[Any], *,
                        method: str = "auto", chunk_size: int | None = None) -> tuple[Any, Any]:
    """(Σ_i g_i, Σ_i g_i²) per parameter entry, pytrees like params: what gradient variance and GSNR need.

    Var[g] = Σg²/n - (Σg/n)² per entry. The fast path forms each covered leaf's per-example
    gradient one example at a time from (a, δ) inside the pass, never holding n copies of it.
    """
    loss_fn, batch, n = _check(loss_fn, params, batch, chunk_size)
    method = _check_method(method)
    entry = cache.entry(loss_fn, params, batch, method, chunk_size)
    return entry.function("moments", _planned(core.moments, loss_fn, chunk_size))(params, batch)


def fast_path_coverage(loss_fn: Callable[..., jax.Array], params: Any, batch: Sequence[Any]) -> dict[str, list[str]]:
    """{"fast": layers whose per-example norms come from layer algebra, "vmap": layers that need vmap(grad)}."""
    loss_fn, batch, _ = _check(loss_fn, params, batch)
    plan = cache.entry(loss_fn, params, batch, "fast").plan
    paths = [layer_name(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    slow = {paths[i] for i in plan.leftover}
    names = _tree.layer_names(params, _tree.call_order(lambda p: loss_fn(p, *jax.tree_util.tree_map(lambda a: a[0], batch)), params))
    return {"fast": [n for n in names if n not in slow], "vmap": [n for n in names if n in slow]}


def layer_names(params: Any, order: Sequence[str] | None = None, *, model: Any = None, x: Any = None) -> list[str]:
    """The layers of params (the modules owning parameter leaves) in the order the network calls them.

    A compiled function returns dicts with sorted keys, so the order comes from model and x (inputs
    like x, only the shapes used: one abstract `model.init`), or from an explicit order of module
    paths (e.g. a probe's `layer_names`); without either, names sort naturally (Dense_2 < Dense_10).
    """
    if model is not None:
        if x is None:
            raise ValueError("layer_names(params, model=...) needs x, inputs like the model's (only shapes are used)")
        order = model_call_order(model, x)
    elif order is not None and (isinstance(order, str) or not all(isinstance(k, str) for k in order)):
        raise TypeError(f"order must be a list of layer names, got {_checks.describe(order)}")
    return _tree.layer_names(params, order)


def model_call_order(model: Any, x: Any) -> list[str]:
    """Module paths of a Flax model in call order, from one abstract `model.init` on inputs shaped like x."""
    from jdl.nn.mode import mode_kwargs

    sample = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct((1,) + tuple(np.shape(a))[1:], np.asarray(a).dtype
                                                                   if not hasattr(a, "dtype") else a.dtype), x)

    def init(s):
        keys = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
        return model.init(keys, s, **mode_kwargs(model, False))

    return _tree.call_order(init, sample)
