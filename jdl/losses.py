"""Losses of the course: per-example loss, (weighted) mean cost.

Every loss has the Keras argument order `loss(y_true, y_pred, *, sample_weight=None,
reduction="mean")`. The per-example loss has shape `y_true.shape[:-1]` when the
targets carry a last (feature/class) axis and `y_true.shape` for 1-D targets
(one value per example); `reduction="none"` returns it, `"sum"` sums it,
`"mean"` gives the cost Σ wᵢ·Lᵢ / Σ wᵢ (plain mean without weights) and
`"sum_over_batch_size"`, Keras' default, Σ wᵢ·Lᵢ / n (the same without weights). Sample
weights have the per-example loss's leading shape, e.g. (batch,) for (batch, time)
losses. Cross-entropies use natural logarithms.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import xlogy

from jdl import _checks, _fn

EPSILON = 1e-7
REDUCTIONS = ("mean", "sum", "none", "sum_over_batch_size")

Loss = Callable[..., jax.Array]


def _float_pair(y_true: Any, y_pred: Any, *, class_axis: bool = False) -> tuple[jax.Array, jax.Array]:
    """Validated float arrays of one shape, with a batch axis (and a class axis if asked)."""
    y_pred = _checks.as_array(y_pred, "y_pred", dtype_kind="float")
    y_true = _checks.as_array(y_true, "y_true", dtype_kind="float").astype(y_pred.dtype)
    _checks.check_same_shape(y_true, y_pred, "y_true", "y_pred")
    minimum = 2 if class_axis else 1
    if y_pred.ndim < minimum:
        expected = "(batch, ..., classes)" if class_axis else "(batch, ...)"
        raise ValueError(
            f"y_pred must have shape {expected} with at least {minimum} dimension(s), "
            f"got shape {tuple(y_pred.shape)}"
        )
    return y_true, y_pred


def _per_example(elementwise: jax.Array, *, combine: str = "mean") -> jax.Array:
    """Reduce the last (feature/class) axis of an element-wise loss; 1-D stays per example."""
    if elementwise.ndim < 2:
        return elementwise
    return elementwise.sum(axis=-1) if combine == "sum" else elementwise.mean(axis=-1)


def _check_reduction(reduction: Any) -> None:
    _checks.check_choice(reduction, "reduction", REDUCTIONS)


def _weights(sample_weight: Any, loss_shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Sample weights broadcast to the per-example loss shape, validated."""
    w = _checks.as_array(sample_weight, "sample_weight", dtype_kind="float").astype(dtype)
    if w.ndim == len(loss_shape) + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim == 0 or w.shape != loss_shape[: w.ndim]:
        raise ValueError(
            f"sample_weight must have shape {loss_shape[:1]} (one weight per example) or a "
            f"leading part of the per-example loss shape {loss_shape}, got shape {tuple(w.shape)}"
        )
    _checks.check_nonnegative_values(w, "sample_weight")
    return jnp.broadcast_to(w.reshape(w.shape + (1,) * (len(loss_shape) - w.ndim)), loss_shape)


def reduce_loss(per_example: jax.Array, sample_weight: Any = None, reduction: str = "mean") -> jax.Array:
    """Weights and reduction: none -> w·L, sum -> Σ w·L, mean -> Σ w·L / Σ w, sum_over_batch_size -> Σ w·L / n."""
    _check_reduction(reduction)
    if sample_weight is None:
        if reduction == "none":
            return per_example
        return per_example.sum() if reduction == "sum" else per_example.mean()
    w = _weights(sample_weight, per_example.shape, per_example.dtype)
    weighted = w * per_example
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction == "sum_over_batch_size":
        return weighted.sum() / max(per_example.size, 1)
    total = w.sum()
    return jnp.where(total > 0, weighted.sum() / jnp.where(total > 0, total, 1), 0.0)


def _loss(per_example_fn: Callable[..., jax.Array]) -> Loss:
    """Give a per-example loss the shared `sample_weight`/`reduction` handling."""

    @functools.wraps(per_example_fn)
    def loss(y_true: Any, y_pred: Any, *, sample_weight: Any = None, reduction: str = "mean", **options: Any) -> jax.Array:
        _check_reduction(reduction)
        return reduce_loss(per_example_fn(y_true, y_pred, **options), sample_weight, reduction)

    signature = inspect.signature(per_example_fn)
    shared = [
        inspect.Parameter("sample_weight", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("reduction", inspect.Parameter.KEYWORD_ONLY, default="mean"),
    ]
    params = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if i >= 2 else p
        for i, p in enumerate(signature.parameters.values())
    ]
    loss.__signature__ = signature.replace(parameters=params[:2] + shared + params[2:])
    return loss


# -- regression -------------------------------------------------------------------------------


@_loss
def mean_squared_error(y_true: Any, y_pred: Any) -> jax.Array:
    """MSE: mean over the last axis of (y - ŷ)². Shapes (batch, ...) -> (batch[, ...])."""
    y_true, y_pred = _float_pair(y_true, y_pred)
    return _per_example(jnp.square(y_pred - y_true))


@_loss
def mean_absolute_error(y_true: Any, y_pred: Any) -> jax.Array:
    """MAE: mean over the last axis of |y - ŷ|."""
    y_true, y_pred = _float_pair(y_true, y_pred)
    return _per_example(jnp.abs(y_pred - y_true))


def _safe_sqrt(x: jax.Array) -> jax.Array:
    """√x with gradient 0 instead of NaN at x = 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def root_mean_squared_error(
    y_true: Any, y_pred: Any, *, sample_weight: Any = None, reduction: str = "mean"
) -> jax.Array:
    """RMSE: cost √(Σ wᵢ·MSEᵢ / Σ wᵢ); per example ("none") √MSEᵢ, "sum" Σ wᵢ√MSEᵢ."""
    _check_reduction(reduction)
    per_example_mse = mean_squared_error(y_true, y_pred, reduction="none")
    if reduction == "mean":
        return _safe_sqrt(reduce_loss(per_example_mse, sample_weight, "mean"))
    return reduce_loss(_safe_sqrt(per_example_mse), sample_weight, reduction)


@_loss
def huber(y_true: Any, y_pred: Any, delta: float = 1.0) -> jax.Array:
    """Huber: mean over the last axis of ½e² if |e| ≤ δ else δ|e| - ½δ², e = ŷ - y."""
    _checks.check_number(delta, "delta", positive=True)
    y_true, y_pred = _float_pair(y_true, y_pred)
    return _per_example(optax.losses.huber_loss(y_pred, y_true, delta=delta))


@_loss
def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> jax.Array:
    """MSLE: mean over the last axis of (log(1+y) - log(1+ŷ))²; negatives clipped to 0 (Keras)."""
    y_true, y_pred = _float_pair(y_true, y_pred)
    return _per_example(jnp.square(jnp.log1p(jnp.maximum(y_pred, 0)) - jnp.log1p(jnp.maximum(y_true, 0))))


# -- binary -----------------------------------------------------------------------------------


def _smooth_binary(y_true: jax.Array, label_smoothing: float) -> jax.Array:
    _checks.check_number(label_smoothing, "label_smoothing", nonnegative=True)
    if label_smoothing > 1:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    return y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing


@_loss
def binary_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = True, label_smoothing: float = 0.0
) -> jax.Array:
    """Binary cross-entropy -[y ln p + (1-y) ln(1-p)], mean over the last axis.

    from_logits=True (default): p = sigmoid(z), computed as max(z,0) - z·y + ln(1+e^-|z|).
    from_logits=False: p clipped to [1e-7, 1 - 1e-7]. Shapes (batch,) or (batch, k).
    """
    y_true, y_pred = _float_pair(y_true, y_pred)
    y_true = _smooth_binary(y_true, label_smoothing)
    if from_logits:
        elementwise = optax.losses.sigmoid_binary_cross_entropy(y_pred, y_true)
    else:
        p = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        elementwise = -(y_true * jnp.log(p) + (1.0 - y_true) * jnp.log1p(-p))
    return _per_example(elementwise)


@_loss
def hinge(y_true: Any, y_pred: Any) -> jax.Array:
    """Hinge: mean over the last axis of max(0, 1 - t·y), labels t ∈ {-1, 1}, y raw scores."""
    y_true, y_pred = _float_pair(y_true, y_pred)
    if _checks.is_concrete(y_true):
        _check_hinge_labels(y_true)
    return _per_example(optax.losses.hinge_loss(y_pred, y_true))


def _check_hinge_labels(y_true: Any) -> None:
    values = np.unique(np.asarray(y_true))
    if values.size and not np.all(np.isin(values, (-1.0, 1.0))):
        raise ValueError(f"y_true must hold hinge labels in {{-1, 1}}, got values {values[:10].tolist()}")


def check_target_values(fn: Loss, y_true: Any) -> None:
    """The checks a loss makes of its targets' values (not shapes), on host arrays: hinge labels in {-1, 1}.

    Shape checks run when the loss is traced; value checks need concrete targets, so a caller that
    only traces the loss (e.g. the Trainer, with `jax.eval_shape`) runs these on the data once.
    """
    base = fn.func if isinstance(fn, functools.partial) else fn
    if base is hinge:
        _check_hinge_labels(y_true)


# -- multi-class ------------------------------------------------------------------------------


def _log_probs(y_pred: jax.Array, from_logits: bool) -> jax.Array:
    """ln p over the last axis: log-softmax of logits, or the log of normalised, clipped probabilities."""
    if from_logits:
        return jax.nn.log_softmax(y_pred, axis=-1)
    p = y_pred / jnp.sum(y_pred, axis=-1, keepdims=True)
    return jnp.log(jnp.clip(p, EPSILON, 1.0 - EPSILON))


@_loss
def categorical_crossentropy(
    y_true: Any, y_pred: Any, from_logits: bool = True, label_smoothing: float = 0.0
) -> jax.Array:
    """Categorical cross-entropy -Σ_c y_c ln p_c with one-hot y. (batch, ..., C) -> (batch, ...).

    from_logits=True (default): ln p = z - logsumexp(z), whose gradient is p - y.
    """
    y_true, y_pred = _float_pair(y_true, y_pred, class_axis=True)
    _checks.check_number(label_smoothing, "label_smoothing", nonnegative=True)
    if label_smoothing > 1:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if label_smoothing:
        y_true = optax.smooth_labels(y_true, label_smoothing)
    return -jnp.sum(y_true * _log_probs(y_pred, from_logits), axis=-1)


def _sparse_labels(y_true: Any, y_pred: jax.Array) -> jax.Array:
    """Integer labels of shape y_pred.shape[:-1] (a trailing axis of 1 is squeezed), range-checked."""
    labels = _checks.as_array(y_true, "y_true", dtype_kind="int")
    if labels.dtype == jnp.bool_:
        labels = labels.astype(jnp.int32)
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"y_true must hold one integer label per row of y_pred, i.e. shape "
            f"{tuple(y_pred.shape[:-1])} for y_pred of shape {tuple(y_pred.shape)}, "
            f"got shape {tuple(labels.shape)}"
        )
    _checks.check_int_range(labels, "y_true", y_pred.shape[-1])
    return labels


@_loss
def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = True) -> jax.Array:
    """Cross-entropy -ln p_y with integer labels y: (batch, ...) ints and (batch, ..., C) -> (batch, ...).

    Under jit, labels outside [0, C) give NaN (never a silently wrong number).
    """
    y_pred = _checks.as_array(y_pred, "y_pred", dtype_kind="float")
    if y_pred.ndim < 2:
        raise ValueError(
            f"y_pred must have shape (batch, ..., classes), got shape {tuple(y_pred.shape)}"
        )
    labels = _sparse_labels(y_true, y_pred)
    log_p = _log_probs(y_pred, from_logits)
    return -jnp.take_along_axis(log_p, labels[..., None], axis=-1, mode="fill", fill_value=jnp.nan)[..., 0]


@_loss
def kl_divergence(y_true: Any, y_pred: Any, from_logits: bool = False) -> jax.Array:
    """Kullback–Leibler divergence Σ_c y_c ln(y_c / p_c) over the last axis (0·ln 0 = 0).

    y_pred holds probabilities (clipped to [1e-7, 1]) or, with from_logits=True, logits.
    """
    y_true, y_pred = _float_pair(y_true, y_pred, class_axis=True)
    log_q = jax.nn.log_softmax(y_pred, axis=-1) if from_logits else jnp.log(jnp.clip(y_pred, EPSILON, 1.0))
    return jnp.sum(xlogy(y_true, y_true) - y_true * log_q, axis=-1)


# -- class weights ----------------------------------------------------------------------------


def _class_labels(y: Any) -> np.ndarray:
    """Integer class labels from integer labels (n,) / (n, 1), binary 0/1 floats, or one-hot (n, C)."""
    if not _checks.is_concrete(y):
        raise TypeError("y must be a concrete array (class weights are computed outside jit)")
    values = np.asarray(_checks.as_array(y, "y"))
    if values.ndim == 2 and values.shape[1] > 1:
        return values.argmax(axis=1)
    if values.ndim == 2:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"y must have shape (n,), (n, 1) or one-hot (n, classes), got shape {values.shape}")
    if values.size and (not np.all(np.isfinite(values)) or np.any(values != np.round(values)) or values.min() < 0):
        raise ValueError("y must hold non-negative integer class labels")
    return values.astype(np.int64)


def check_class_weight(class_weight: Any) -> None:
    """TypeError/ValueError unless class_weight is a dict {non-negative int class: non-negative weight}."""
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"class_weight must be a dict {{class: weight}}, got {_checks.describe(class_weight)}")
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(f"class_weight keys must be non-negative integer classes, got {key!r}")
        _checks.check_number(value, f"class_weight[{key}]", nonnegative=True)


def class_weight_to_sample_weight(y: Any, class_weight: Mapping[int, float]) -> jax.Array:
    """Per-example weights w_i = class_weight[class of y_i] (classes absent from the map get 1).

    y: labels (n,), binary targets (n,) / (n, 1) or one-hot (n, C) -> weights (n,).
    """
    check_class_weight(class_weight)
    labels = _class_labels(y)
    size = max([int(labels.max()) + 1 if labels.size else 0] + [int(k) + 1 for k in class_weight])
    table = np.ones(size)
    for key, value in class_weight.items():
        table[int(key)] = float(value)
    return jnp.asarray(table[labels], dtype=jnp.result_type(float))


def balanced_class_weight(y: Any, num_classes: int | None = None) -> dict[int, float]:
    """{c: n / (K · n_c)} for the K classes present (scikit-learn's "balanced" weights).

    E.g. counts {0: 5, 1: 70} -> {0: 7.5, 1: 0.536}: each class then carries equal total weight.
    """
    labels = _class_labels(y)
    if num_classes is not None:
        _checks.check_number(num_classes, "num_classes", integer=True, positive=True)
        _checks.check_int_range(labels, "y", num_classes)
    counts = np.bincount(labels, minlength=num_classes or 0)
    present = np.flatnonzero(counts)
    return {int(c): float(labels.size / (present.size * counts[c])) for c in present}


# -- lookup -----------------------------------------------------------------------------------

mse = mean_squared_error
mae = mean_absolute_error
rmse = root_mean_squared_error
msle = mean_squared_logarithmic_error
kld = kl_divergence

_TABLE: dict[str, Loss] = {
    "mean_squared_error": mean_squared_error,
    "mse": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
    "mae": mean_absolute_error,
    "root_mean_squared_error": root_mean_squared_error,
    "rmse": root_mean_squared_error,
    "huber": huber,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error,
    "msle": mean_squared_logarithmic_error,
    "binary_crossentropy": binary_crossentropy,
    "hinge": hinge,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "kl_divergence": kl_divergence,
    "kld": kl_divergence,
}


def names() -> list[str]:
    """The loss names `get` accepts."""
    return sorted(_TABLE)


def get(name_or_callable: str | Loss, **options: Any) -> Loss:
    """Resolve a Keras-style loss name to its function; options bind, e.g. get("huber", delta=2.0)."""
    fn = _checks.lookup("loss", name_or_callable, _TABLE)
    if not options:
        return fn
    if not isinstance(name_or_callable, str):
        raise TypeError("loss options can only be given with a loss name, not a callable")
    _checks.bind_options("loss", name_or_callable, fn, options, skip=2)
    return _fn.bind(fn, **options)
