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
from jdl.metrics.multilabel import (MULTI_LABEL_AVERAGES, binary_accuracy, is_multi_hot, jaccard_score,
                                    multilabel_f1, multilabel_precision, multilabel_recall, subset_accuracy)
from jdl.metrics.ranking import roc_auc, roc_curve
from jdl.metrics.regression import mae, mse, r2_score, rmse

__all__ = [
    "AVERAGES",
    "MULTI_LABEL",
    "MULTI_LABEL_AVERAGES",
    "TABLE",
    "accuracy",
    "auc",
    "binary_accuracy",
    "confusion_matrix",
    "f1",
    "f1_score",
    "get",
    "is_multi_hot",
    "jaccard_score",
    "mae",
    "mse",
    "multilabel_f1",
    "multilabel_precision",
    "multilabel_recall",
    "precision",
    "r2",
    "r2_score",
    "recall",
    "rmse",
    "roc_auc",
    "roc_curve",
    "subset_accuracy",
]


f1 = f1_score
auc = roc_auc
r2 = r2_score

TABLE: dict[str, Callable[..., Any]] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "binary_accuracy": binary_accuracy,
    "subset_accuracy": subset_accuracy,
    "exact_match": subset_accuracy,
    "jaccard": jaccard_score,
    "jaccard_score": jaccard_score,
    "multilabel_precision": multilabel_precision,
    "multilabel_recall": multilabel_recall,
    "multilabel_f1": multilabel_f1,
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


MULTI_LABEL = frozenset({binary_accuracy, subset_accuracy, jaccard_score, multilabel_precision, multilabel_recall,
                         multilabel_f1})


def get(name_or_callable: str | Callable[..., Any]) -> Callable[..., Any]:
    """The metric function named `name_or_callable` (Keras-style names, case-insensitive); callables pass through."""
    return lookup("metric", name_or_callable, TABLE)
