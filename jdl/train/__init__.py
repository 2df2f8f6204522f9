"""The training engine: explicit TrainState, the Objective, pure jit-compiled steps, callbacks and the Trainer."""

from jdl.train.history import History
from jdl.train.hooks import StepContext, StepHook
from jdl.train.objective import Objective
from jdl.train.population import Population
from jdl.train.state import TrainState, create_state
from jdl.train.trainer import Trainer

__all__ = ["History", "Objective", "Population", "StepContext", "StepHook", "TrainState", "Trainer", "create_state"]
