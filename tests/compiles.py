"""Count XLA backend compiles with JAX's own monitoring events (an independent view of what compiled)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

EVENT = "/jax/core/compile/backend_compile_duration"
_seen = {"count": 0, "seconds": 0.0}


def _listen(event: str, duration: float, **_: object) -> None:
    if event == EVENT:
        _seen["count"] += 1
        _seen["seconds"] += duration


jax.monitoring.register_event_duration_secs_listener(_listen)


class Counted:
    """The compiles seen inside a `counting()` block: count and seconds."""

    count = 0
    seconds = 0.0


@contextlib.contextmanager
def counting() -> Iterator[Counted]:
    """with counting() as c: ...; then c.count is the number of backend compiles inside the block."""
    result = Counted()
    before = dict(_seen)
    try:
        yield result
    finally:
        result.count = _seen["count"] - before["count"]
        result.seconds = _seen["seconds"] - before["seconds"]
