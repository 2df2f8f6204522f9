"""Callbacks for `Trainer.fit`, Keras names and semantics, and the gradient monitor; the names configs use.

The Keras callbacks live in `jdl.train.callbacks` (one file each); `GradientMonitor` lives in
`jdl.diagnostics.monitor` and runs inside the compiled step through the engine's StepHook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jdl import _checks
from jdl.diagnostics.monitor import GradientMonitor
from jdl.train.callbacks import (
    BackupAndRestore,
    Callback,
    CSVLogger,
    EarlyStopping,
    FitContext,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    MonitorCallback,
    ProgressBar,
    ReduceLROnPlateau,
    TensorBoard,
    TerminateOnNaN,
    TrainingInterrupted,
)

REGISTRY: dict[str, Callable[..., Callback]] = {
    "early_stopping": EarlyStopping,
    "reduce_lr_on_plateau": ReduceLROnPlateau,
    "model_checkpoint": ModelCheckpoint,
    "terminate_on_nan": TerminateOnNaN,
    "tensorboard": TensorBoard,
    "gradient_monitor": GradientMonitor,
}


def names() -> list[str]:
    """The callback names a run config accepts under [callbacks] (snake_case of the class names)."""
    return sorted(REGISTRY)


def get(name: str, **options: Any) -> Callback:
    """The callback registered under `name`, built with `options`, e.g. get("early_stopping", patience=3)."""
    cls = _checks.lookup("callback", name, REGISTRY)
    _checks.bind_options("callback", name, cls, options, skip=0)
    return cls(**options)


__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "FitContext",
    "GradientMonitor",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "MonitorCallback",
    "ProgressBar",
    "REGISTRY",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
    "TrainingInterrupted",
    "get",
    "names",
]
