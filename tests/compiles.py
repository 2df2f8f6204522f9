"""Count XLA backend compiles with JAX's own monitoring events (an independent view of what compiled)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

EVENT = "/jax/core/compile/backend_compile_duration"
_seen = {"count": 0, "seconds": 0.0}
_names: list[str] = []


def _listen(event: str, duration: float, fun_name: str = "", **_: object) -> None:
    if event == EVENT:
        _seen["count"] += 1
        _seen["seconds"] += duration
        _names.append(fun_name)


jax.monitoring.register_event_duration_secs_listener(_listen)


class Counted:
    """The compiles seen inside a `counting()` block: count, seconds and the compiled functions' names."""

    count = 0
    seconds = 0.0
    names: tuple[str, ...] = ()


@contextlib.contextmanager
def counting() -> Iterator[Counted]:
    """with counting() as c: ...; then c.count is the number of backend compiles inside the block."""
    result = Counted()
    before = dict(_seen)
    first = len(_names)
    try:
        yield result
    finally:
        result.names = tuple(_names[first:])
        result.count = _seen["count"] - before["count"]
        result.seconds = _seen["seconds"] - before["seconds"]
