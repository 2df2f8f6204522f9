"""The ROC curve and its area (AUC) for binary scores, ties handled as scikit-learn does."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl._checks import (
    is_concrete,
)
from jdl.metrics._inputs import (_check_binary_values, _int_labels, _not_empty, _ones_if_none, _real, _sample_weight)


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
