"""Multi-label metrics: k independent yes/no labels per example, multi-hot targets (n, k), one sigmoid per label.

y_true holds 0/1 indicators (..., k); y_pred holds scores (..., k), predicted 1 where
y_pred > threshold, or 0/1 (integer or bool) predictions. sample_weight has the leading shape
(...,), one weight per example. Per example i: tp_i = Σ_k t·p, fp_i = Σ_k (1-t)·p, fn_i = Σ_k t·(1-p).
Defined as Keras (`binary_accuracy`) and scikit-learn (the rest, with zero_division=0) define them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl._checks import check_choice, check_number, is_concrete
from jdl.metrics._inputs import _check_binary_values, _not_empty, _real, _safe_div, _sample_weight

MULTI_LABEL_AVERAGES = ("samples", "micro", "macro", "weighted")


def _indicators(y_true: Any, y_pred: Any, threshold: Any, name: str) -> tuple[jax.Array, jax.Array]:
    """(t, p): float 0/1 arrays (m, k), the examples flattened, after validating shapes and values."""
    check_number(threshold, "threshold")
    yt, yp = _real(y_true, "y_true"), _real(y_pred, "y_pred")
    _not_empty(yp, "y_pred")
    if yt.shape != yp.shape:
        if yp.ndim >= 2 and yp.shape[-1] == 1 and yt.shape == yp.shape[:-1]:
            yt = yt[..., None]
        elif yt.ndim == yp.ndim - 1 and yt.shape == yp.shape[:-1]:
            raise ValueError(
                f"{name} compares multi-hot targets element-wise, so y_true must have y_pred's shape "
                f"{tuple(yp.shape)} (one 0/1 indicator per label), got integer class labels of shape "
                f"{tuple(yt.shape)}; for one class per example use 'accuracy' (sparse categorical), or one-hot "
                "encode the labels"
            )
        else:
            raise ValueError(f"{name} needs y_true with y_pred's shape {tuple(yp.shape)}, got {tuple(yt.shape)}")
    if yp.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    _check_binary_values(yt, "y_true", f"{name} takes multi-hot 0/1 targets")
    if jnp.issubdtype(yp.dtype, jnp.floating):
        p = yp > threshold
    else:
        _check_binary_values(yp, "y_pred", "integer y_pred holds 0/1 predictions")
        p = yp != 0
    k = yp.shape[-1]
    return yt.reshape(-1, k).astype(jnp.float32), p.reshape(-1, k).astype(jnp.float32)


def _weights(sample_weight: Any, y_pred: Any) -> jax.Array | None:
    shape = tuple(np.shape(y_pred))
    leading = shape[:-1] if len(shape) >= 2 else shape
    w = _sample_weight(sample_weight, leading, positive_sum=False)
    return None if w is None else w.reshape(-1).astype(jnp.float32)


def _weighted_mean(per_example: jax.Array, w: jax.Array | None) -> jax.Array:
    if w is None:
        return jnp.mean(per_example)
    return _safe_div(jnp.sum(w * per_example), jnp.sum(w))


def binary_accuracy(y_true: Any, y_pred: Any, *, threshold: float = 0.5, sample_weight: Any = None) -> jax.Array:
    """Keras' binary accuracy: Σ_i w_i·mean_k [t_ik == (y_pred_ik > threshold)] / Σ_i w_i.

    For multi-hot targets (n, k) with one sigmoid per label, and for binary targets (n,) / (n, 1).
    Integer class labels (n,) against (n, k) scores are refused (use `accuracy`). Returns a scalar.
    """
    t, p = _indicators(y_true, y_pred, threshold, "binary_accuracy")
    return _weighted_mean(jnp.mean((t == p).astype(jnp.float32), axis=-1), _weights(sample_weight, y_pred))


def subset_accuracy(y_true: Any, y_pred: Any, *, threshold: float = 0.5, sample_weight: Any = None) -> jax.Array:
    """Exact-match ratio: Σ_i w_i [every label of example i right] / Σ_i w_i (scikit-learn's multilabel accuracy_score)."""
    t, p = _indicators(y_true, y_pred, threshold, "subset_accuracy")
    return _weighted_mean(jnp.all(t == p, axis=-1).astype(jnp.float32), _weights(sample_weight, y_pred))


def _score(kind: str, tp: jax.Array, fp: jax.Array, fn: jax.Array) -> jax.Array:
    if kind == "precision":
        return _safe_div(tp, tp + fp)
    if kind == "recall":
        return _safe_div(tp, tp + fn)
    if kind == "f1":
        return _safe_div(2 * tp, 2 * tp + fp + fn)
    return _safe_div(tp, tp + fp + fn)


def _multilabel_score(kind: str, y_true: Any, y_pred: Any, average: Any, threshold: Any,
                      sample_weight: Any) -> jax.Array:
    check_choice(average, "average", MULTI_LABEL_AVERAGES)
    t, p = _indicators(y_true, y_pred, threshold, f"multi-label {kind}")
    w = _weights(sample_weight, y_pred)
    if average == "samples":
        return _weighted_mean(_score(kind, (t * p).sum(-1), ((1 - t) * p).sum(-1), (t * (1 - p)).sum(-1)), w)
    ww = jnp.ones((t.shape[0], 1), jnp.float32) if w is None else w[:, None]
    tp, fp, fn = (ww * t * p).sum(0), (ww * (1 - t) * p).sum(0), (ww * t * (1 - p)).sum(0)
    if average == "micro":
        return _score(kind, tp.sum(), fp.sum(), fn.sum())
    per_label = _score(kind, tp, fp, fn)
    if average == "macro":
        return jnp.mean(per_label)
    support = tp + fn
    return _safe_div(jnp.sum(per_label * support), support.sum())


def multilabel_precision(y_true: Any, y_pred: Any, *, average: str = "samples", threshold: float = 0.5,
                         sample_weight: Any = None) -> jax.Array:
    """Precision TP/(TP+FP) of multi-label predictions, 0 where nothing is predicted.

    average: "samples" (each example's tp_i/(tp_i+fp_i), weighted mean over examples), "micro"
    (counts summed over examples and labels), "macro" (mean over the k labels) or "weighted"
    (labels weighted by their support). Returns a scalar.
    """
    return _multilabel_score("precision", y_true, y_pred, average, threshold, sample_weight)


def multilabel_recall(y_true: Any, y_pred: Any, *, average: str = "samples", threshold: float = 0.5,
                      sample_weight: Any = None) -> jax.Array:
    """Recall TP/(TP+FN) of multi-label predictions, 0 where no label is true; average as `multilabel_precision`."""
    return _multilabel_score("recall", y_true, y_pred, average, threshold, sample_weight)


def multilabel_f1(y_true: Any, y_pred: Any, *, average: str = "samples", threshold: float = 0.5,
                  sample_weight: Any = None) -> jax.Array:
    """F1 = 2TP/(2TP+FP+FN) of multi-label predictions, 0 where that is 0/0; average as `multilabel_precision`."""
    return _multilabel_score("f1", y_true, y_pred, average, threshold, sample_weight)


def jaccard_score(y_true: Any, y_pred: Any, *, average: str = "samples", threshold: float = 0.5,
                  sample_weight: Any = None) -> jax.Array:
    """Jaccard index |T∩P|/|T∪P| = TP/(TP+FP+FN), 0 where that is 0/0; average as `multilabel_precision`."""
    return _multilabel_score("jaccard", y_true, y_pred, average, threshold, sample_weight)


def is_multi_hot(y: Any) -> bool:
    """True for concrete targets (..., k), k > 1, whose rows are not all one-hot or probabilities (sum ≠ 1)."""
    if not is_concrete(y) or np.ndim(y) < 2 or np.shape(y)[-1] < 2:
        return False
    values = np.asarray(y, np.float64)
    return bool(values.size) and not np.allclose(values.sum(axis=-1), 1.0, atol=1e-6)
