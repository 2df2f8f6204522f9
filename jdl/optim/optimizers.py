"""Optimizers by name: `get("sgd", momentum=0.9)`, `names()`, and `as_optimizer` for a name, an `Optimizer`
or a raw optax transformation; the public home of `Optimizer` and its factories (`jdl.optim.factories`)."""

from __future__ import annotations

from typing import Any

import optax

from jdl import _checks
from jdl.optim.factories import (  # noqa: F401  (re-exported)
    _FACTORIES,
    INJECTED,
    OPTIONS,
    Optimizer,
    adadelta,
    adagrad,
    adam,
    adamw,
    gd,
    rmsprop,
    sgd,
)
from jdl.optim.structure import Structure  # noqa: F401  (re-exported)


def names() -> list[str]:
    """The optimizer names `get` accepts."""
    return sorted(_FACTORIES)


def as_optimizer(x: Any) -> Optimizer:
    """An Optimizer from an Optimizer (as is), a name, or a raw optax.GradientTransformation.

    A raw transformation is wrapped so that `build` returns it unchanged; it takes no options,
    and `learning_rate(state)` is None for it unless it was made with optax.inject_hyperparams.
    """
    if isinstance(x, Optimizer):
        return x
    if isinstance(x, str):
        return get(x)
    if isinstance(x, optax.GradientTransformation):
        return Optimizer("custom", transformation=x)
    hint = " (call the optax factory, e.g. optax.adam(1e-3))" if callable(x) else ""
    raise TypeError(
        f"optimizer must be a name, an Optimizer or an optax.GradientTransformation{hint}, got {_checks.describe(x)}"
    )


def get(identifier: str | Optimizer | optax.GradientTransformation, **options: Any) -> Optimizer:
    """Resolve a Keras-style optimizer name; keywords go to its factory, e.g. get("sgd", momentum=0.9)."""
    if not isinstance(identifier, str):
        if options:
            raise TypeError(f"optimizer options {sorted(options)} can only be given with an optimizer name")
        return as_optimizer(identifier)
    factory = _checks.lookup("optimizer", identifier, _FACTORIES)
    _checks.bind_options("optimizer", identifier, factory, options, skip=0)
    return factory(**options)
