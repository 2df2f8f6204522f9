"""Pytree helpers shared by every layer of jdl: the layer names of parameter trees, in the order the network calls them.

`jax.jit`, `tree_map` and every flatten sort dict keys, so a parameter tree returned by a compiled
function lists "Dense_10" before "Dense_2" and a named embedding after every "Dense_k". The call
order is not in the tree: it comes from one abstract pass of the model (`call_order`) and is
carried as an explicit list; without it, names are sorted naturally (Dense_2 before Dense_10).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jax


def layer_name(path: tuple[Any, ...]) -> str:
    """"Dense_0" for params path (Dense_0, kernel): the '/'-joined path of the leaf's module."""
    keys = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
    return "/".join(keys[:-1]) or keys[0]


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key reading digit runs as numbers: Dense_2 < Dense_10."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part)


def tree_layer_names(params: Any) -> list[str]:
    """The layers of params in tree (flatten) order: the modules that own parameter leaves."""
    return list(dict.fromkeys(layer_name(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]))


def layer_names(params: Any, order: Sequence[str] | None = None) -> list[str]:
    """The layers of params (modules owning parameter leaves) in network call order.

    order: module paths in call order (from `call_order`); layers it does not name follow in natural
    order. Without order, natural order of the names (which is call order for auto-named layers).
    """
    names = tree_layer_names(params)
    rank = {name: k for k, name in enumerate(order or ())}

    def key(name: str) -> tuple[Any, ...]:
        for prefix in _prefixes(name):
            if prefix in rank:
                return (0, rank[prefix], natural_key(name))
        return (1, 0, natural_key(name))

    return sorted(names, key=key)


def _prefixes(name: str) -> list[str]:
    """"a/b/c", "a/b", "a": a layer's own path first, then its ancestors'."""
    parts = name.split("/")
    return ["/".join(parts[:k]) for k in range(len(parts), 0, -1)]


def ordered(values: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """values re-keyed in the order of names (keys not in names follow in natural order)."""
    rank = {name: k for k, name in enumerate(names)}
    return {k: values[k] for k in sorted(values, key=lambda k: (rank.get(k, len(rank)), natural_key(k)))}


def call_order(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[str]:
    """The '/'-joined paths of the Flax modules fn(*args) calls, in the order of their first call.

    Abstract: fn runs under `jax.eval_shape` (no FLOPs), its module calls seen through
    `flax.linen.intercept_methods`. args may be arrays or `jax.ShapeDtypeStruct`s.
    """
    import flax.linen as nn

    seen: dict[str, None] = {}

    def interceptor(next_fun, call_args, call_kwargs, context):
        if context.method_name != "setup":
            seen.setdefault("/".join(context.module.path), None)
        return next_fun(*call_args, **call_kwargs)

    def run(*a):
        with nn.intercept_methods(interceptor):
            return fn(*a, **kwargs)

    jax.eval_shape(run, *args)
    return [name for name in seen if name]
