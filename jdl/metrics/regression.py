"""MAE, MSE, RMSE and R² with sample weights, as scikit-learn defines them."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl._checks import (
    check_ndim,
    check_same_shape,
)
from jdl.metrics._inputs import (_ones_if_none, _real, _sample_weight)


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
