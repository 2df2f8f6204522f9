"""The loss contract of per-example functions, checked abstractly before anything is computed.

A loss is accepted in either form:

    one example    loss_fn(params, x_i, y_i) -> scalar        x_i = x[i], without the batch axis
    per-example    loss_fn(params, x, y)     -> (n,) losses  what reduction="none" or
                                                               optax.softmax_cross_entropy_with_integer_labels give

The second is turned into the first by `OfBatch` (a batch of one). Which form a function has is
found by `jax.eval_shape` (no FLOPs) and remembered per (loss_fn, shapes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jdl import _checks
from jdl.diagnostics.per_example.cache import LRUCache, signature

FORMS = ("auto", "example", "batch")
_FORMS = LRUCache(64)


@dataclasses.dataclass(frozen=True)
class OfBatch:
    """One example's loss from a per-example-losses function: ℓ(θ; x_i, y_i) = loss_fn(θ, x_i[None], y_i[None])[0]."""

    loss_fn: Callable[..., jax.Array]

    def __call__(self, params: Any, *example: Any) -> jax.Array:
        batched = jax.tree_util.tree_map(lambda a: a[None], example)
        return self.loss_fn(params, *batched)[0]


def _dtype(leaf: Any) -> Any:
    return leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype


def check_params(params: Any, name: str = "params") -> None:
    """TypeError for a TrainState (or any leaf that is not floating point) where model parameters are expected."""
    if hasattr(params, "opt_state") and hasattr(params, "params"):
        raise TypeError(f"{name} must be the model's parameters (state.params), got a TrainState: pass state.params")
    if not jax.tree_util.tree_leaves(params):
        raise ValueError(f"{name} must hold at least one array, got {_checks.describe(params)}")
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        kind = np.dtype(_dtype(leaf)).kind
        if kind not in "fc":
            raise TypeError(f"{name} must hold floating-point arrays (the model's parameters), got "
                            f"{_checks.describe(leaf)} at {jax.tree_util.keystr(path)}; a TrainState's step or an "
                            "optimizer state is not differentiable: pass the params")


def _abstract(tree: Any, drop_axis: bool) -> Any:
    def one(a):
        shape = tuple(np.shape(a))
        return jax.ShapeDtypeStruct(shape[1:] if drop_axis else shape, _dtype(a))

    return jax.tree_util.tree_map(one, tree)


def _outcome(fn: Callable, *args: Any) -> tuple[tuple[int, ...] | None, str]:
    """(the output's shape or None, what happened in words)."""
    try:
        out = jax.eval_shape(fn, *args)
    except Exception as error:  # any failure of the user's function: reported in the contract error
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return None, f"failed with {type(error).__name__}: {text[:300]}"
    shape = getattr(out, "shape", None)
    if shape is None:
        return None, f"returned {type(out).__name__} (a tuple? without has_aux the loss must be one array)"
    return tuple(shape), f"returned shape {tuple(shape)}"


def contract_error(example_words: str, batch_words: str, n: int, shapes: Sequence[Any]) -> ValueError:
    """The error that says what a loss_fn must be, and what this one did in either form."""
    shown = ", ".join(str(tuple(s)) for s in shapes)
    return ValueError(
        "loss_fn must be either ONE example's loss, loss_fn(params, x_i, y_i) -> a scalar, where x_i = x[i] has no "
        "batch axis (e.g. -log_softmax(model.apply({'params': params}, x_i[None])[0])[y_i]), or the per-example "
        f"losses of a batch, loss_fn(params, x, y) -> shape (n,) = ({n},) (reduction='none', "
        "optax.softmax_cross_entropy_with_integer_labels without .mean()). "
        f"Batch arrays have shapes {shown}. On one example loss_fn {example_words}; "
        f"on the batch it {batch_words}."
    )


def example_form(loss_fn: Callable[..., jax.Array], params: Any, batch: tuple[Any, ...], n: int,
                 form: str = "auto") -> Callable[..., jax.Array]:
    """loss_fn in the one-example form (loss_fn itself, or `OfBatch(loss_fn)`); ValueError naming the contract otherwise.

    form: "example", "batch" or "auto" (the one-example form when it gives a scalar, else the
    per-example form when it gives (n,)).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {list(FORMS)}, got {form!r}")
    key = (loss_fn, form, signature(params), signature(batch))

    def detect():
        p = _abstract(params, False)
        one_shape, one_words = (None, "was not tried") if form == "batch" else _outcome(loss_fn, p, *_abstract(batch, True))
        if one_shape == ():
            return loss_fn
        batch_shape, batch_words = (None, "was not tried") if form == "example" else _outcome(loss_fn, p, *_abstract(batch, False))
        if batch_shape == (n,):
            return OfBatch(loss_fn)
        raise contract_error(one_words, batch_words, n, [np.shape(a) for a in jax.tree_util.tree_leaves(batch)])

    return _FORMS.get(key, detect)
