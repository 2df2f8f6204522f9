"""Optimizers, epoch schedules, clipping, L2, freezing and the EWMA of the course, on Optax.

An `Optimizer` describes an optimizer (name, hyperparameters, learning rate η, options);
`Optimizer.build(steps_per_epoch)` turns it into one `optax.GradientTransformation`, and
`Optimizer.init(params)` gives its state with η and the other numeric hyperparameters injected.
Parameter paths are the '/'-joined keys of the params pytree, e.g. "Dense_0/kernel".
Schedules are counted in epochs from 0 (`EpochSchedule`), the rate being constant within an epoch.
"""

from jdl.optim.freeze import frozen_mask, parameter_paths
from jdl.optim.helpers import ewma, steps_per_epoch
from jdl.optim.hyperparams import hyperparameters, learning_rate, set_learning_rate
from jdl.optim.optimizers import (
    INJECTED,
    OPTIONS,
    Optimizer,
    Structure,
    adadelta,
    adagrad,
    adam,
    adamw,
    as_optimizer,
    gd,
    get,
    names,
    rmsprop,
    sgd,
)
from jdl.optim.penalty import l2_penalty
from jdl.optim.schedules import SCHEDULES, EpochSchedule, cosine, exponential, inverse_sqrt, inverse_time, step_decay
from jdl.optim import schedules

__all__ = [
    "EpochSchedule",
    "INJECTED",
    "OPTIONS",
    "Optimizer",
    "SCHEDULES",
    "Structure",
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "as_optimizer",
    "cosine",
    "ewma",
    "exponential",
    "frozen_mask",
    "gd",
    "get",
    "hyperparameters",
    "inverse_sqrt",
    "inverse_time",
    "l2_penalty",
    "learning_rate",
    "names",
    "parameter_paths",
    "rmsprop",
    "schedules",
    "set_learning_rate",
    "sgd",
    "step_decay",
    "steps_per_epoch",
]
