"""The Keras callbacks of `Trainer.fit`, one file each, with Keras names and semantics.

They receive the state and may return a new one (see `base.Callback`). EarlyStopping,
ReduceLROnPlateau and ModelCheckpoint share `MonitorCallback`'s best/min_delta/mode logic.
"""

from jdl.train.callbacks.backup_and_restore import BackupAndRestore, TrainingInterrupted
from jdl.train.callbacks.base import Callback, CallbackList, FitContext
from jdl.train.callbacks.csv_logger import CSVLogger
from jdl.train.callbacks.early_stopping import EarlyStopping
from jdl.train.callbacks.lambda_callback import LambdaCallback
from jdl.train.callbacks.learning_rate import LearningRateScheduler, ReduceLROnPlateau
from jdl.train.callbacks.model_checkpoint import ModelCheckpoint
from jdl.train.callbacks.monitor_base import MonitorCallback
from jdl.train.callbacks.progress import ProgressBar
from jdl.train.callbacks.tensorboard import TensorBoard
from jdl.train.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "FitContext",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "MonitorCallback",
    "ProgressBar",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
    "TrainingInterrupted",
]
