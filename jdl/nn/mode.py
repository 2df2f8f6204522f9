"""Training vs inference mode of a Flax module: the keyword its `__call__` takes for it."""

from __future__ import annotations

import inspect

import flax.linen as nn


def mode_kwargs(model: nn.Module, train: bool) -> dict[str, bool]:
    """The keyword that switches `model` between training and inference: train=, deterministic= or training=."""
    params = inspect.signature(type(model).__call__).parameters
    if "train" in params:
        return {"train": train}
    if "deterministic" in params:
        return {"deterministic": not train}
    if "training" in params:
        return {"training": train}
    return {}
