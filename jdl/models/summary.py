"""Keras' `model.summary()` and `count_params()` for any Flax model: one row per top-level layer, from an abstract trace.

The model is initialised on `sample_input` with `jax.eval_shape` (no FLOPs, no memory): each
call of a direct sublayer records its output shape, and its variables are counted, trainable
("params") and non-trainable (every other collection, e.g. BatchNorm's batch_stats).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from jdl import _checks
from jdl.nn.mode import mode_kwargs
from jdl.models.sequential import keras_name

_TRANSIENT = ("intermediates", "losses")


@dataclasses.dataclass(frozen=True)
class Row:
    """One layer of the table: name, type, output shape(s) (batch axis None), trainable and non-trainable counts."""

    name: str
    kind: str
    output_shape: Any
    trainable: int
    non_trainable: int

    @property
    def params(self) -> int:
        return self.trainable + self.non_trainable


@dataclasses.dataclass(frozen=True)
class Table:
    """The summary's rows and totals (counts and bytes); `str()` is the Keras-style table."""

    title: str
    rows: tuple[Row, ...]
    trainable: int
    non_trainable: int
    trainable_bytes: int
    non_trainable_bytes: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def __str__(self) -> str:
        head = ("Layer (type)", "Output Shape", "Param #")
        cells = [(f"{r.name} ({r.kind})", _shape_text(r.output_shape), f"{r.params:,}") for r in self.rows]
        w0 = max([len(head[0]), *(len(c[0]) for c in cells)]) + 2
        w1 = max([len(head[1]), *(len(c[1]) for c in cells)]) + 2
        w2 = max([len(head[2]), *(len(c[2]) for c in cells)])
        rule = "=" * (w0 + w1 + w2)
        lines = [f'Model: "{self.title}"', rule, f"{head[0]:<{w0}}{head[1]:<{w1}}{head[2]:>{w2}}", rule]
        lines += [f"{a:<{w0}}{b:<{w1}}{c:>{w2}}" for a, b, c in cells]
        lines += [rule,
                  f"Total params: {self.total:,} ({_bytes(self.trainable_bytes + self.non_trainable_bytes)})",
                  f"Trainable params: {self.trainable:,} ({_bytes(self.trainable_bytes)})",
                  f"Non-trainable params: {self.non_trainable:,} ({_bytes(self.non_trainable_bytes)})"]
        return "\n".join(lines)


def _bytes(n: int) -> str:
    """Keras' readable size: 896.00 B, 9.23 KB, 1.76 MB (powers of 1024)."""
    size, unit = float(n), "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            break
        size /= 1024
    return f"{size:.2f} {unit}"


def _shape_text(shape: Any) -> str:
    if isinstance(shape, tuple) and all(isinstance(d, (int, type(None))) for d in shape):
        return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
    if isinstance(shape, (tuple, list)):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return str(shape)


def _output_shape(out: Any) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(out)
    shapes = [(None, *tuple(np.shape(leaf))[1:]) if np.ndim(leaf) else () for leaf in leaves]
    return shapes[0] if len(shapes) == 1 else tuple(shapes)


def _count(tree: Any) -> tuple[int, int]:
    leaves = jax.tree_util.tree_leaves(tree)
    return (sum(math.prod(leaf.shape) for leaf in leaves),
            sum(math.prod(leaf.shape) * np.dtype(leaf.dtype).itemsize for leaf in leaves))


def _check(model: Any, sample_input: Any, who: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model of {who} must be a flax.linen.Module, got {_checks.describe(model)}")
    if sample_input is None:
        raise TypeError(
            f"{who} needs sample_input, a batch like the model's inputs (e.g. x[:1]): jdl builds a model's "
            f"parameters from the shapes of its input, so {who}(model) alone cannot know them"
        )
    leaves = jax.tree_util.tree_leaves(sample_input)
    if not leaves:
        raise ValueError(f"sample_input of {who} must hold at least one array, got {_checks.describe(sample_input)}")
    for leaf in leaves:
        _checks.as_array(leaf, "sample_input")
        if np.ndim(leaf) < 1:
            raise ValueError(f"sample_input of {who} must have a leading batch axis (batch, ...), got a scalar")


def table(model: nn.Module, sample_input: Any) -> Table:
    """The summary of `model` built on `sample_input` (a batch, or a pytree of batches, like the model's inputs)."""
    _check(model, sample_input, "summary")
    calls: dict[str, tuple[str, Any]] = {}
    depth = [0]

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name != "__call__":
            return next_fun(*args, **kwargs)
        depth[0] += 1
        try:
            out = next_fun(*args, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0] == 1 and context.module.name is not None and context.module.name not in calls:
            calls[context.module.name] = (type(context.module).__name__, _output_shape(out))
        return out

    def init(x):
        with nn.intercept_methods(interceptor):
            return model.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(0)}, x,
                              **mode_kwargs(model, False))

    variables = dict(jax.eval_shape(init, sample_input))
    for transient in _TRANSIENT:
        variables.pop(transient, None)
    params = variables.pop("params", {})
    rows = []
    for name, (kind, shape) in calls.items():
        trainable = _count(params.get(name, {}))[0]
        non_trainable = sum(_count(collection.get(name, {}))[0] for collection in variables.values())
        rows.append(Row(name, kind, shape, trainable, non_trainable))
    (trainable, trainable_bytes), (non_trainable, non_trainable_bytes) = _count(params), _count(variables)
    title = getattr(model, "name", None) or keras_name(type(model))
    return Table(title, tuple(rows), trainable, non_trainable, trainable_bytes, non_trainable_bytes)


def summary(model: nn.Module, sample_input: Any = None, *, print_fn: Callable[[str], Any] | None = print) -> str:
    """Print Keras' summary table of `model` on `sample_input` (layer (type), output shape, Param #; totals); returns it.

    Param # counts a layer's trainable and non-trainable variables; "Total" is their sum, as Keras.
    Output shapes show the batch axis as None. print_fn: where the text goes (None: nowhere).
    """
    text = str(table(model, sample_input))
    if print_fn is not None:
        print_fn(text)
    return text


def count_params(model: nn.Module, sample_input: Any = None) -> int:
    """The number of scalars in `model`'s variables on `sample_input`: trainable + non-trainable (Keras' count_params)."""
    _check(model, sample_input, "count_params")
    return table(model, sample_input).total


__all__ = ["Row", "Table", "count_params", "summary", "table"]
