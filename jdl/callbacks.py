"""Callbacks for `Trainer.fit`, Keras names and semantics (re-exported from jdl.train)."""

from jdl.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    FitContext,
    LambdaCallback,
    LearningRateScheduler,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from jdl.diagnostics.monitor import GradientMonitor
from jdl.train.checkpoint import BackupAndRestore, ModelCheckpoint
from jdl.train.logging import TensorBoard

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
    "ProgressBar",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]
