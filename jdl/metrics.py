"""Classification and regression metrics as pure `jax.numpy` functions, checked against scikit-learn."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdl._checks import (
    as_array,
    check_choice,
    check_int_range,
    check_ndim,
    check_nonnegative_values,
    check_number,
    check_same_shape,
    describe,
    is_concrete,
    lookup,
)

__all__ = [
    "accuracy",
    "auc",
    "confusion_matrix",
    "f1",
    "f1_score",
    "get",
    "mae",
    "mse",
    "precision",
    "r2",
    "r2_score",
    "recall",
    "rmse",
    "roc_auc",
    "roc_curve",
]

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


@partial(jax.jit, static_argnames=("true_onehot", "pred_mode"))
def _accuracy_kernel(true, pred, weights, threshold, *, true_onehot, pred_mode):
    true, pred = _flat_labels(true, pred, threshold, true_onehot, pred_mode)
    weights = weights.reshape(-1)
    return jnp.sum(jnp.where(true == pred, weights, 0.0)) / jnp.sum(weights)


def accuracy(y_true: Any, y_pred: Any, *, threshold: float = 0.5, sample_weight: Any = None) -> jax.Array:
    """Weighted fraction of correct predictions: sum_i w_i [t_i == p_i] / sum_i w_i.

    y_pred: integer labels with y_true's shape; float scores (..., C) with C > 1
    (argmax over the last axis); or float scores (n,) / (n, 1) for one class
    (predicted 1 where y_pred > threshold). y_true: integer labels shaped like the
    labels y_pred resolves to, or one-hot/probabilities shaped like float y_pred
    (argmax). sample_weight: shaped like the labels, e.g. (n,). Returns a scalar.
    """
    labels = _resolve_labels(y_true, y_pred, threshold)
    weights = _sample_weight(sample_weight, labels.label_shape, positive_sum=True)
    return _accuracy_kernel(
        labels.true,
        labels.pred,
        _ones_if_none(weights, labels.label_shape),
        threshold,
        true_onehot=labels.true_onehot,
        pred_mode=labels.pred_mode,
    )


@partial(jax.jit, static_argnames=("true_onehot", "pred_mode", "num_classes"))
def _confusion_kernel(true, pred, weights, threshold, *, true_onehot, pred_mode, num_classes):
    true, pred = _flat_labels(true, pred, threshold, true_onehot, pred_mode)
    return _scatter_confusion(true, pred, num_classes, weights)


def confusion_matrix(
    y_true: Any,
    y_pred: Any,
    num_classes: int | None = None,
    *,
    threshold: float = 0.5,
    sample_weight: Any = None,
) -> jax.Array:
    """Confusion matrix M (C, C) with M[i, j] = sum of weights of samples of true class i predicted as j.

    Labels and scores resolve as in `accuracy`; labels are class indices in
    [0, C). C = num_classes, else y_pred's class axis (or 2 for one-class
    scores), else max label + 1 from concrete data; under `jax.jit` with integer
    labels num_classes must be given (static). Integer counts without
    sample_weight, float sums with it.
    """
    labels = _resolve_labels(y_true, y_pred, threshold)
    classes = _num_classes(labels, num_classes)
    weights = _sample_weight(sample_weight, labels.label_shape, positive_sum=False)
    return _confusion_kernel(
        labels.true,
        labels.pred,
        weights,
        threshold,
        true_onehot=labels.true_onehot,
        pred_mode=labels.pred_mode,
        num_classes=classes,
    )


@partial(jax.jit, static_argnames=("true_onehot", "pred_mode", "num_classes", "kind", "average", "pos_label"))
def _score_kernel(true, pred, weights, threshold, *, true_onehot, pred_mode, num_classes, kind, average, pos_label):
    true, pred = _flat_labels(true, pred, threshold, true_onehot, pred_mode)
    cm = _scatter_confusion(true, pred, num_classes, weights)
    tp = jnp.diagonal(cm)
    support = cm.sum(axis=1)
    fp = cm.sum(axis=0) - tp
    fn = support - tp
    if average == "binary":
        tp, fp, fn = tp[pos_label], fp[pos_label], fn[pos_label]
    elif average == "micro":
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    if kind == "precision":
        score = _safe_div(tp, tp + fp)
    elif kind == "recall":
        score = _safe_div(tp, tp + fn)
    else:
        score = _safe_div(2 * tp, 2 * tp + fp + fn)
    if average == "macro":
        counts = _scatter_confusion(true, pred, num_classes, None)
        present = (counts.sum(axis=0) + counts.sum(axis=1)) > 0
        return jnp.sum(jnp.where(present, score, 0.0)) / jnp.maximum(present.sum(), 1)
    if average == "weighted":
        return _safe_div(jnp.sum(score * support), support.sum())
    return score


def _classification_score(
    kind: str,
    y_true: Any,
    y_pred: Any,
    average: Any,
    num_classes: Any,
    threshold: Any,
    pos_label: Any,
    sample_weight: Any,
) -> jax.Array:
    check_choice(average, "average", AVERAGES)
    check_number(pos_label, "pos_label", integer=True)
    labels = _resolve_labels(y_true, y_pred, threshold)
    if average == "binary":
        check_choice(pos_label, "pos_label", (0, 1))
        if num_classes is not None:
            check_number(num_classes, "num_classes", integer=True, positive=True)
        if num_classes is not None and num_classes != 2:
            raise ValueError(
                f"num_classes must be 2 for average='binary', got num_classes={num_classes}; "
                "use average='macro', 'micro' or 'weighted' for multiclass"
            )
        if labels.classes is not None and labels.classes != 2:
            raise ValueError(
                f"average='binary' needs 2 classes, but y_pred has {labels.classes} classes (shape "
                f"{tuple(labels.pred.shape)}); use average='macro', 'micro' or 'weighted'"
            )
        why = "average='binary' (use 'macro', 'micro' or 'weighted' for multiclass)"
        if not labels.true_onehot:
            _check_binary_values(labels.true, "y_true", why)
        if labels.pred_mode == "labels":
            _check_binary_values(labels.pred, "y_pred", why)
        num_classes = 2
    classes = _num_classes(labels, num_classes)
    weights = _sample_weight(sample_weight, labels.label_shape, positive_sum=False)
    return _score_kernel(
        labels.true,
        labels.pred,
        _ones_if_none(weights, labels.label_shape),
        threshold,
        true_onehot=labels.true_onehot,
        pred_mode=labels.pred_mode,
        num_classes=classes,
        kind=kind,
        average=average,
        pos_label=int(pos_label) if average == "binary" else 0,
    )


def precision(
    y_true: Any,
    y_pred: Any,
    *,
    average: str = "binary",
    num_classes: int | None = None,
    threshold: float = 0.5,
    pos_label: int = 1,
    sample_weight: Any = None,
) -> jax.Array:
    """Precision TP / (TP + FP), 0 where TP + FP = 0.

    average: "binary" (class pos_label; labels must be in {0, 1}), "macro"
    (unweighted mean over classes present in y_true or y_pred), "micro" (from
    TP, FP summed over classes) or "weighted" (mean weighted by support).
    Shapes, labels and num_classes as in `confusion_matrix`. Returns a scalar.
    """
    return _classification_score(
        "precision", y_true, y_pred, average, num_classes, threshold, pos_label, sample_weight
    )


def recall(
    y_true: Any,
    y_pred: Any,
    *,
    average: str = "binary",
    num_classes: int | None = None,
    threshold: float = 0.5,
    pos_label: int = 1,
    sample_weight: Any = None,
) -> jax.Array:
    """Recall TP / (TP + FN), 0 where TP + FN = 0.

    average, shapes and labels as in `precision`. Returns a scalar.
    """
    return _classification_score(
        "recall", y_true, y_pred, average, num_classes, threshold, pos_label, sample_weight
    )


def f1_score(
    y_true: Any,
    y_pred: Any,
    *,
    average: str = "binary",
    num_classes: int | None = None,
    threshold: float = 0.5,
    pos_label: int = 1,
    sample_weight: Any = None,
) -> jax.Array:
    """F1 = 2 / (1/P + 1/R) = 2PR / (P + R) = 2TP / (2TP + FP + FN), 0 where 2TP + FP + FN = 0.

    Macro and weighted averages take the mean of per-class F1 (as scikit-learn),
    not the F1 of averaged P and R. average, shapes and labels as in `precision`.
    Returns a scalar.
    """
    return _classification_score(
        "f1", y_true, y_pred, average, num_classes, threshold, pos_label, sample_weight
    )


def _binary_scores(
    y_true: Any, y_score: Any, sample_weight: Any
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    s = _real(y_score, "y_score", dtype_kind="float")
    _not_empty(s, "y_score")
    if not (s.ndim == 1 or (s.ndim == 2 and s.shape[1] == 1)):
        raise ValueError(
            f"y_score must have shape (n,) or (n, 1) (one score per sample), got shape {tuple(s.shape)}"
        )
    n = int(s.shape[0])
    t = _real(y_true, "y_true")
    if tuple(t.shape) not in ((n,), (n, 1)):
        raise ValueError(
            f"y_true must have shape ({n},) or ({n}, 1) to match y_score {tuple(s.shape)}, "
            f"got y_true {tuple(t.shape)}"
        )
    t = _int_labels(t, "y_true")
    _check_binary_values(t, "y_true", "ROC analysis is binary")
    if is_concrete(s) and not np.all(np.isfinite(np.asarray(s))):
        raise ValueError("y_score must be finite, got NaN or infinite values")
    w = _sample_weight(sample_weight, (n,), positive_sum=False)
    if is_concrete(t) and (w is None or is_concrete(w)):
        labels = np.asarray(t).reshape(n)
        weights = np.ones(n) if w is None else np.asarray(w)
        if not (weights[labels == 1].sum() > 0 and weights[labels == 0].sum() > 0):
            raise ValueError(
                "y_true must contain both classes 0 and 1 (with positive weight); ROC is undefined "
                f"when only one class is present, got values {np.unique(labels).tolist()}"
            )
    return t, s, w


def roc_curve(
    y_true: Any, y_score: Any, *, sample_weight: Any = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """ROC curve (fpr, tpr, thresholds), as scikit-learn's `roc_curve(..., drop_intermediate=False)`.

    y_true: binary labels (n,) in {0, 1}; y_score: scores (n,); sample_weight:
    (n,), zero-weight samples dropped. Returns three (k + 1,) arrays for the k
    distinct scores in descending order, starting at threshold inf, (0, 0):
    tpr[i] = sum of positive weights with score >= thresholds[i] / total positive
    weight, fpr likewise for negatives. The length depends on the data, so this
    runs eagerly only, on the host (not under `jax.jit`/`vmap`); use `roc_auc`
    inside jit.
    """
    for name, value in (("y_true", y_true), ("y_score", y_score), ("sample_weight", sample_weight)):
        if not is_concrete(value):
            raise ValueError(
                f"roc_curve needs concrete arrays because its output length depends on the data; "
                f"{name} is traced (inside jax.jit or vmap). Call it outside jit, or use roc_auc"
            )
    t, s, w = _binary_scores(y_true, y_score, sample_weight)
    labels, scores = np.asarray(t, np.float64).reshape(-1), np.asarray(s).reshape(-1)
    w = np.ones_like(labels) if w is None else np.asarray(w, np.float64)
    keep = w != 0
    labels, scores, w = labels[keep], scores[keep], w[keep]
    order = np.argsort(scores, kind="stable")[::-1]
    labels, scores, w = labels[order], scores[order], w[order]
    ends = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.r_[0.0, np.cumsum(labels * w)[ends]]
    fps = np.r_[0.0, np.cumsum((1 - labels) * w)[ends]]
    thresholds = np.r_[np.array([np.inf], scores.dtype), scores[ends]]
    dtype = jnp.result_type(float)
    fpr = jnp.asarray(fps / fps[-1], dtype)
    tpr = jnp.asarray(tps / tps[-1], dtype)
    return fpr, tpr, jnp.asarray(thresholds)


@jax.jit
def _roc_auc_kernel(t, s, w):
    s = s.reshape(-1)
    n = s.shape[0]
    order = jnp.argsort(s)
    s = s[order]
    t = t.reshape(-1)[order].astype(s.dtype)
    w = w[order]
    pos = t * w
    neg = (1 - t) * w
    starts = jnp.concatenate([jnp.ones(1, bool), s[1:] != s[:-1]])
    group = jnp.cumsum(starts) - 1
    group_neg = jax.ops.segment_sum(neg, group, num_segments=n)
    below = jnp.cumsum(group_neg) - group_neg
    u = jnp.sum(pos * (below[group] + 0.5 * group_neg[group]))
    return u / (jnp.sum(pos) * jnp.sum(neg))


def roc_auc(y_true: Any, y_score: Any, *, sample_weight: Any = None) -> jax.Array:
    """Area under the ROC curve, exact with ties: P(score of a positive > score of a negative), ties counted 1/2.

    AUC = sum_{i pos, j neg} w_i w_j ([s_i > s_j] + [s_i = s_j] / 2) / (W_pos W_neg),
    the Mann-Whitney U statistic with average ranks, equal to scikit-learn's
    trapezoidal `roc_auc_score`. O(n log n) and jit-able. y_true: (n,) labels in
    {0, 1}, both present (checked when concrete; NaN under jit otherwise);
    y_score: (n,) scores; sample_weight: (n,). Returns a scalar.
    """
    t, s, w = _binary_scores(y_true, y_score, sample_weight)
    return _roc_auc_kernel(t, s, _ones_if_none(w, (s.shape[0],)))


def _regression_inputs(
    y_true: Any, y_pred: Any, sample_weight: Any, min_samples: int = 1
) -> tuple[jax.Array, jax.Array, jax.Array]:
    yt = _real(y_true, "y_true", dtype_kind="float")
    yp = _real(y_pred, "y_pred", dtype_kind="float")
    check_ndim(yt, "y_true", (1, 2))
    check_ndim(yp, "y_pred", (1, 2))
    check_same_shape(yt, yp, "y_true", "y_pred")
    n = int(yt.shape[0])
    if n < min_samples or yt.size == 0:
        raise ValueError(
            f"y_true and y_pred must hold at least {min_samples} sample(s) with at least one output, "
            f"got shape {tuple(yt.shape)}"
        )
    w = _sample_weight(sample_weight, (n,), positive_sum=True)
    return yt, yp, _ones_if_none(w, (n,))


def _average_rows(x: jax.Array, w: jax.Array) -> jax.Array:
    return jnp.sum(w[:, None] * x, axis=0) / jnp.sum(w)


@jax.jit
def _regression_kernel(yt, yp, w):
    """{name: score} for mae, mse, rmse and r2; XLA drops the unused ones under jit."""
    yt = yt.reshape(yt.shape[0], -1)
    yp = yp.reshape(yt.shape)
    per_output_mse = _average_rows(jnp.square(yt - yp), w)
    ss_tot = _average_rows(jnp.square(yt - _average_rows(yt, w)), w)
    per_output_r2 = jnp.where(
        ss_tot > 0,
        1 - per_output_mse / jnp.where(ss_tot > 0, ss_tot, 1),
        jnp.where(per_output_mse > 0, 0.0, 1.0),
    )
    return {
        "mae": jnp.mean(_average_rows(jnp.abs(yt - yp), w)),
        "mse": jnp.mean(per_output_mse),
        "rmse": jnp.mean(jnp.sqrt(per_output_mse)),
        "r2": jnp.mean(per_output_r2),
    }


def mae(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> jax.Array:
    """Mean absolute error: mean over outputs of sum_i w_i |y_i - yhat_i| / sum_i w_i.

    y_true, y_pred: (n,) or (n, k), same shape; sample_weight: (n,). Returns a scalar.
    """
    return _regression_kernel(*_regression_inputs(y_true, y_pred, sample_weight))["mae"]


def mse(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> jax.Array:
    """Mean squared error: mean over outputs of sum_i w_i (y_i - yhat_i)^2 / sum_i w_i.

    y_true, y_pred: (n,) or (n, k), same shape; sample_weight: (n,). Returns a scalar.
    """
    return _regression_kernel(*_regression_inputs(y_true, y_pred, sample_weight))["mse"]


def rmse(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> jax.Array:
    """Root mean squared error: mean over outputs of sqrt(MSE of that output), as scikit-learn.

    y_true, y_pred: (n,) or (n, k), same shape; sample_weight: (n,). Returns a scalar.
    """
    return _regression_kernel(*_regression_inputs(y_true, y_pred, sample_weight))["rmse"]


def r2_score(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> jax.Array:
    """Coefficient of determination: mean over outputs of 1 - SS_res / SS_tot.

    SS_res = sum_i w_i (y_i - yhat_i)^2, SS_tot = sum_i w_i (y_i - ybar_w)^2.
    A constant output (SS_tot = 0) scores 1 if predicted exactly, else 0 (as
    scikit-learn's force_finite=True). y_true, y_pred: (n,) or (n, k) with
    n >= 2, same shape; sample_weight: (n,). Returns a scalar.
    """
    return _regression_kernel(*_regression_inputs(y_true, y_pred, sample_weight, min_samples=2))["r2"]


f1 = f1_score
auc = roc_auc
r2 = r2_score

TABLE: dict[str, Callable[..., Any]] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1_score,
    "f1_score": f1_score,
    "auc": roc_auc,
    "roc_auc": roc_auc,
    "mae": mae,
    "mean_absolute_error": mae,
    "mse": mse,
    "mean_squared_error": mse,
    "rmse": rmse,
    "root_mean_squared_error": rmse,
    "r2": r2_score,
    "r2_score": r2_score,
}


def get(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The metric function named `name_or_callable` (Keras-style names, case-insensitive); callables pass through."""
    return lookup("metric", name_or_callable, TABLE)
