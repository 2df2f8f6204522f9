"""Classification and regression metrics as pure `jax.numpy` functions, checked against scikit-learn.

Each takes (y_true, y_pred, *, sample_weight=None) and returns a scalar (roc_curve and
confusion_matrix return arrays); `get(name)` resolves a Keras-style name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jdl._checks import lookup
from jdl.metrics._inputs import AVERAGES
from jdl.metrics.classification import accuracy, confusion_matrix, f1_score, precision, recall
from jdl.metrics.ranking import roc_auc, roc_curve
from jdl.metrics.regression import mae, mse, r2_score, rmse

__all__ = [
    "AVERAGES",
    "TABLE",
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
