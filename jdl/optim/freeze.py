"""Parameter paths and freezing: which leaves an optimizer may update, by glob patterns over '/'-joined paths."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

import jax

from jdl import _checks


def check_patterns(patterns: Any, name: str) -> tuple[str, ...]:
    """Glob patterns as a tuple of non-empty strings (a single string is one pattern)."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    if not isinstance(patterns, Iterable) or hasattr(patterns, "shape"):
        raise TypeError(f"{name} must be a sequence of glob patterns (str), got {_checks.describe(patterns)}")
    patterns = tuple(patterns)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{name} must hold glob patterns (str), got {_checks.describe(pattern)}")
        if not pattern.strip("/"):
            raise ValueError(f"{name} must hold non-empty glob patterns, got {pattern!r}")
    return patterns


def path_of(keys: Any) -> str:
    """The '/'-joined path of a pytree key path, e.g. "Dense_0/kernel"."""
    return jax.tree_util.keystr(keys, simple=True, separator="/")


def parameter_paths(params: Any) -> list[str]:
    """The '/'-joined path of every leaf of `params`, e.g. ["Dense_0/bias", "Dense_0/kernel"]."""
    return [path_of(keys) for keys, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


@functools.lru_cache(maxsize=None)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Regex of a path glob: '*' and '?' stay within one '/'-segment, '**' crosses segments.

    The pattern also matches everything below a matched path, so "Dense_0" freezes the module.
    """
    parts, i = [], 0
    pattern = pattern.rstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        else:
            parts.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])))
            i += 1
    return re.compile("".join(parts) + "(?:/.*)?")


def frozen_mask(params: Any, patterns: Any) -> Any:
    """Pytree of bools like `params`: True where the leaf's path matches any glob pattern.

    Paths are '/'-joined keys ("Dense_0/kernel"); '*' and '?' match within one segment, '**'
    across segments ("encoder/**", "**/bias"), and a pattern matching a module's path matches
    all its leaves ("Dense_0" = "Dense_0/**").
    """
    regexes = [glob_regex(p) for p in check_patterns(patterns, "patterns")]
    return jax.tree_util.tree_map_with_path(
        lambda keys, _: any(r.fullmatch(path_of(keys)) for r in regexes), params
    )


def freeze_labels(params: Any, patterns: tuple[str, ...]) -> Any:
    return jax.tree.map(lambda frozen: "frozen" if frozen else "trainable", frozen_mask(params, patterns))
