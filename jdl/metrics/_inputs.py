"""Validation and label handling shared by the metrics: labels from scores, sample weights, confusion counts."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdl._checks import (
    as_array,
    check_int_range,
    check_nonnegative_values,
    check_number,
    check_same_shape,
    describe,
    is_concrete,
)

AVERAGES = ("binary", "macro", "micro", "weighted")


def _real(x: Any, name: str, dtype_kind: str | None = None) -> jax.Array:
    arr = as_array(x, name, dtype_kind=dtype_kind)
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise TypeError(f"{name} must be a real-valued array, got {describe(arr)}")
    return arr


def _int_labels(x: jax.Array, name: str) -> jax.Array:
    """Integer labels; float labels are checked to be whole numbers when concrete, rounded under jit."""
    arr = _real(x, name)
    if jnp.issubdtype(arr.dtype, jnp.floating) and not is_concrete(arr):
        return jnp.round(arr).astype(jnp.int32)
    return _real(arr, name, dtype_kind="int")


def _not_empty(x: jax.Array, name: str) -> None:
    if x.ndim == 0:
        raise ValueError(f"{name} must have at least 1 dimension, got a scalar {describe(x)}")
    if x.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")


def _shape_error(y_true: jax.Array, y_pred: jax.Array, accepted: list[tuple[int, ...]]) -> ValueError:
    options = " or ".join(str(s) for s in dict.fromkeys(accepted))
    return ValueError(
        f"y_true and y_pred have incompatible shapes: y_pred has shape {tuple(y_pred.shape)}, "
        f"so y_true must have shape {options}, got y_true {tuple(y_true.shape)}"
    )


class _Labels(NamedTuple):
    """Validated classification inputs; `_flat_labels` turns them into label vectors inside jit."""

    true: jax.Array
    pred: jax.Array
    true_onehot: bool
    pred_mode: str
    classes: int | None
    label_shape: tuple[int, ...]


def _resolve_labels(y_true: Any, y_pred: Any, threshold: Any) -> _Labels:
    check_number(threshold, "threshold")
    yp = _real(y_pred, "y_pred")
    yt = _real(y_true, "y_true")
    _not_empty(yp, "y_pred")
    if not jnp.issubdtype(yp.dtype, jnp.floating):
        check_same_shape(yt, yp, "y_true", "y_pred")
        return _Labels(_int_labels(yt, "y_true"), yp, False, "labels", None, tuple(yp.shape))
    if yp.ndim >= 2 and yp.shape[-1] > 1:
        classes = int(yp.shape[-1])
        label_shape = tuple(yp.shape[:-1])
        if yt.shape == yp.shape:
            return _Labels(yt, yp, True, "argmax", classes, label_shape)
        if yt.shape not in (label_shape, label_shape + (1,)):
            raise _shape_error(yt, yp, [tuple(yp.shape), label_shape, label_shape + (1,)])
        true = _int_labels(yt, "y_true")
        check_int_range(true, "y_true", classes)
        return _Labels(true, yp, False, "argmax", classes, label_shape)
    label_shape = tuple(yp.shape[:-1]) if yp.ndim >= 2 else tuple(yp.shape)
    if yt.shape not in (tuple(yp.shape), label_shape):
        raise _shape_error(yt, yp, [tuple(yp.shape), label_shape])
    true = _int_labels(yt, "y_true")
    _check_binary_values(true, "y_true", "y_pred holds scores for one class (thresholded at `threshold`)")
    return _Labels(true, yp, False, "threshold", 2, label_shape)


def _flat_labels(
    true: jax.Array, pred: jax.Array, threshold: Any, true_onehot: bool, pred_mode: str
) -> tuple[jax.Array, jax.Array]:
    if true_onehot:
        true = jnp.argmax(true, axis=-1)
    if pred_mode == "argmax":
        pred = jnp.argmax(pred, axis=-1)
    elif pred_mode == "threshold":
        pred = pred > threshold
    return true.reshape(-1).astype(jnp.int32), pred.reshape(-1).astype(jnp.int32)


def _check_binary_values(labels: jax.Array, name: str, why: str) -> None:
    if not is_concrete(labels):
        return
    values = np.unique(np.asarray(labels))
    if not np.all(np.isin(values, (0, 1))):
        shown = values[:10].tolist()
        raise ValueError(
            f"{name} must hold binary labels in {{0, 1}} because {why}, got values {shown}"
            + (" ..." if values.size > 10 else "")
        )


def _sample_weight(sample_weight: Any, shape: tuple[int, ...], *, positive_sum: bool) -> jax.Array | None:
    if sample_weight is None:
        return None
    w = _real(sample_weight, "sample_weight", dtype_kind="float")
    shape = tuple(shape)
    squeezed = shape
    while len(squeezed) > 1 and squeezed[-1] == 1:
        squeezed = squeezed[:-1]
    if tuple(w.shape) not in (shape, squeezed):
        raise ValueError(
            f"sample_weight must have shape {squeezed} (one weight per sample, like the labels), "
            f"got shape {tuple(w.shape)}"
        )
    check_nonnegative_values(w, "sample_weight")
    if positive_sum and is_concrete(w) and not float(np.asarray(w).sum()) > 0:
        raise ValueError("sample_weight must have a positive sum, got all weights equal to 0")
    return w


def _num_classes(labels: _Labels, num_classes: Any) -> int:
    fixed = labels.classes
    if num_classes is not None:
        check_number(num_classes, "num_classes", integer=True, positive=True)
        num_classes = int(num_classes)
        if fixed is not None and num_classes != fixed:
            raise ValueError(
                f"num_classes must match the {fixed} classes implied by y_pred's shape, got num_classes={num_classes}"
            )
    elif fixed is not None:
        num_classes = fixed
    else:
        if not (is_concrete(labels.true) and is_concrete(labels.pred)):
            raise ValueError(
                "num_classes is required when the labels are traced (inside jax.jit or vmap), "
                "because the confusion matrix shape must be static; got num_classes=None"
            )
        for values, name in ((np.asarray(labels.true), "y_true"), (np.asarray(labels.pred), "y_pred")):
            if values.min() < 0:
                raise ValueError(f"{name} must be non-negative integer class labels, got minimum {values.min()}")
        num_classes = int(max(np.asarray(labels.true).max(), np.asarray(labels.pred).max())) + 1
    if not labels.true_onehot:
        check_int_range(labels.true, "y_true", num_classes)
    if labels.pred_mode == "labels":
        check_int_range(labels.pred, "y_pred", num_classes)
    return num_classes


def _scatter_confusion(true: jax.Array, pred: jax.Array, num_classes: int, weights: jax.Array | None) -> jax.Array:
    valid = (true >= 0) & (true < num_classes) & (pred >= 0) & (pred < num_classes)
    index = jnp.where(valid, true * num_classes + pred, 0)
    if weights is None:
        values = valid.astype(jnp.int32)
    else:
        values = jnp.where(valid, weights.reshape(-1), 0.0)
    flat = jnp.zeros(num_classes * num_classes, values.dtype).at[index].add(values)
    return flat.reshape(num_classes, num_classes)


def _ones_if_none(weights: jax.Array | None, shape: tuple[int, ...]) -> jax.Array:
    return jnp.ones(shape, jnp.result_type(float)) if weights is None else weights


def _safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
    nonzero = den > 0
    return jnp.where(nonzero, num / jnp.where(nonzero, den, 1), 0.0)
