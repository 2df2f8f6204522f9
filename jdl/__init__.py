"""jdl: a JAX functional deep-learning toolkit (Flax models, Optax training, gradient diagnostics)."""

from importlib.metadata import PackageNotFoundError, version

from jdl import callbacks, data, diagnostics, losses, metrics, models, nn, optim, train
from jdl.train import History, TrainState, Trainer

try:
    __version__ = version("jdl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0"

__all__ = [
    "History",
    "TrainState",
    "Trainer",
    "__version__",
    "callbacks",
    "data",
    "diagnostics",
    "losses",
    "metrics",
    "models",
    "nn",
    "optim",
    "train",
]
