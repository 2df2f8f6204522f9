"""One bounded cache of plans with their compiled functions, keyed by value (never by id).

Key: (loss_fn, method, chunk_size, tree structure with shapes and dtypes of params and of batch).
Two calls with equal keys (an equal-by-value loss_fn included) share one plan and its compiled
functions; beyond `maxsize` entries the least recently used goes.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp

from jdl.diagnostics.per_example import core
from jdl.diagnostics.per_example.plan import Plan

MAXSIZE = 64


@dataclasses.dataclass(eq=False)
class Entry:
    """A plan (None: vmap) and the jitted functions built on it, by name."""

    plan: Plan | None
    compiled: dict[str, Callable] = dataclasses.field(default_factory=dict)

    def function(self, name: str, build: Callable[[Plan | None], Callable]) -> Callable:
        """The compiled function `name`, built once as build(plan)."""
        if name not in self.compiled:
            self.compiled[name] = build(self.plan)
        return self.compiled[name]


class LRUCache:
    """A mapping of at most maxsize entries; a lookup makes its entry the most recent."""

    def __init__(self, maxsize: int):
        self.maxsize = maxsize
        self._entries: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The entry of key, built by build() when missing (nothing is stored when build raises)."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = build()
        self._entries[key] = value
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def clear(self) -> None:
        self._entries.clear()


CACHE = LRUCache(MAXSIZE)


def signature(tree: Any) -> tuple[Any, ...]:
    """(tree structure, ((shape, dtype) of each leaf)): what a compiled function depends on."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((jnp.shape(leaf), jnp.result_type(leaf)) for leaf in leaves)


def key(loss_fn: Callable, method: str, chunk_size: int | None, params: Any, batch: Any) -> tuple[Any, ...]:
    """The cache key of a call: loss_fn itself (hashed by its own __hash__/__eq__), never an id."""
    return loss_fn, method, chunk_size, signature(params), signature(batch)


def entry(loss_fn: Callable, params: Any, batch: tuple[Any, ...], method: str, chunk_size: int | None = None) -> Entry:
    """The cached Entry of these arguments, its plan made by `core.make_plan` on first use."""
    return CACHE.get(key(loss_fn, method, chunk_size, params, batch),
                     lambda: Entry(core.make_plan(loss_fn, params, batch, method)))
