"""Accuracy, the confusion matrix, precision, recall and F1 (binary/macro/micro/weighted), as scikit-learn defines them."""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jdl._checks import (
    check_choice,
    check_number,
)
from jdl.metrics._inputs import (AVERAGES, _check_binary_values, _flat_labels, _num_classes,
                                 _ones_if_none, _resolve_labels, _safe_div, _sample_weight, _scatter_confusion)


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
    (argmax; multi-hot y_true warns and points to `binary_accuracy`). sample_weight: shaped
    like the labels, e.g. (n,). Returns a scalar.
    """
    labels = _resolve_labels(y_true, y_pred, threshold)
    weights = _sample_weight(sample_weight, labels.label_shape, positive_sum=True)
    if labels.true_onehot:
        from jdl.metrics.multilabel import is_multi_hot

        if is_multi_hot(labels.true):
            warnings.warn("accuracy takes the argmax over the classes (categorical accuracy, as Keras), but y_true "
                          "is multi-hot (rows do not sum to 1); for multi-label targets use binary_accuracy",
                          UserWarning, stacklevel=2)
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
    if average == "samples":
        from jdl.metrics.multilabel import _multilabel_score

        return _multilabel_score(kind, y_true, y_pred, average, threshold, sample_weight)
    check_choice(average, "average", (*AVERAGES, "samples"))
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
    TP, FP summed over classes) or "weighted" (mean weighted by support);
    "samples" treats y_true as multi-hot targets (`multilabel_precision`).
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
