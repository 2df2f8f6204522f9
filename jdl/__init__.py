"""jdl: a JAX functional deep-learning toolkit (Flax models, Optax training, gradient diagnostics).

Submodules load on first use (PEP 562), so `import jdl` costs almost nothing and `jdl.Trainer`
loads only the engine, not the diagnostics, the data sets or the checkpointing library.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("callbacks", "config", "constraints", "data", "diagnostics", "losses", "metrics", "models", "nn", "optim",
               "regularizers", "runs", "train")
_FROM_TRAIN = ("History", "TrainState", "Trainer")

__all__ = ["History", "TrainState", "Trainer", "__version__", "callbacks", "data", "diagnostics", "losses",
           "metrics", "models", "nn", "optim", "train"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"jdl.{name}")
    if name in _FROM_TRAIN:
        return getattr(importlib.import_module("jdl.train"), name)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("jdl")
        except PackageNotFoundError:  # running from a source tree that was not installed
            return "0.1.0"
    raise AttributeError(f"module 'jdl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
