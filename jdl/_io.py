"""Atomic file writes and JSON-safe conversion: what every writer of a run directory shares.

A file is written to a temporary sibling, flushed to disk and renamed over the target, so a crash
or a kill leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically: temporary file, fsync, rename. Returns the path."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """`payload` as indented JSON (non-finite floats as "nan"/"inf"/"-inf", arrays as lists), written atomically."""
    return atomic_write_text(path, json.dumps(json_safe(payload), indent=2) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file written by `write_json`, with "nan"/"inf"/"-inf" strings turned back into floats."""
    return json_restore(json.loads(Path(path).read_text(encoding="utf-8")))


def json_safe(value: Any) -> Any:
    """`value` as plain JSON data: dict keys as str, tuples and arrays as lists, NumPy scalars as Python, non-finite floats as str."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if hasattr(value, "tolist") and hasattr(value, "shape"):
        return json_safe(np.asarray(value).tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def json_restore(value: Any) -> Any:
    """The inverse of `json_safe` for floats: "nan", "inf" and "-inf" strings become floats again."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, Mapping):
        return {k: json_restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_restore(v) for v in value]
    return value
