"""Pytree helpers shared by every layer of jdl: the layer names of parameter trees."""

from __future__ import annotations

from typing import Any

import jax


def layer_name(path: tuple[Any, ...]) -> str:
    """"Dense_0" for params path (Dense_0, kernel): the '/'-joined path of the leaf's module."""
    keys = [str(getattr(k, "key", getattr(k, "idx", k))) for k in path]
    return "/".join(keys[:-1]) or keys[0]


def layer_names(params: Any) -> list[str]:
    """The layers of params in order: the modules that own parameter leaves."""
    names: list[str] = []
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = layer_name(path)
        if name not in names:
            names.append(name)
    return names
