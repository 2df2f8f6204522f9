"""Deprecated alias (one release): batch runs moved to the command layer, `jdl.runs`."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    import warnings

    from jdl import runs

    warnings.warn("jdl.train.run moved to jdl.runs", DeprecationWarning, stacklevel=2)
    return getattr(runs, name)
