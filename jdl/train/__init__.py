"""The training engine: explicit TrainState, pure jit-compiled steps, and the Keras-style Trainer."""

from jdl.train.state import TrainState, create_state
from jdl.train.trainer import History, Trainer

__all__ = ["History", "TrainState", "Trainer", "create_state"]
