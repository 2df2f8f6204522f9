"""Functions with bound options that compare by value, so that what they configure compiles once.

`functools.partial` compares by identity: two `losses.get("huber", delta=2.0)` would key two
compiled steps. `Bound` is a partial equal to any other Bound of the same function and options.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


class Bound(functools.partial):
    """functools.partial(fn, **options), equal (and hashing equal) by (fn, args, options)."""

    def _key(self) -> tuple[Any, ...]:
        return (self.func, self.args, tuple(sorted(self.keywords.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bound) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.keywords.items())
        return f"{getattr(self.func, '__name__', self.func)}({options})"


def bind(fn: Callable[..., Any], **options: Any) -> Bound:
    """`fn` with keyword `options` bound, compared by value."""
    return Bound(fn, **options)
