"""Callbacks that set the learning rate held in the optimizer state: LearningRateScheduler and ReduceLROnPlateau."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jdl import _checks, optim
from jdl.train.callbacks.base import Callback
from jdl.train.callbacks.monitor_base import MonitorCallback


def set_learning_rate(state: Any, value: float, who: str) -> Any:
    """`state` with learning rate `value`; ValueError naming `who` when the state holds no settable rate."""
    if optim.learning_rate(state.opt_state) is None:
        raise ValueError(
            f"{who} needs an optimizer whose learning rate is a hyperparameter (a jdl.optim optimizer with a "
            "constant learning rate), not a raw optax transformation or a schedule"
        )
    return state.replace(opt_state=optim.set_learning_rate(state.opt_state, value))


class LearningRateScheduler(Callback):
    """At each epoch start set the learning rate to schedule(epoch, lr) (Keras semantics)."""

    holds_state = False

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0):
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> lr, got {_checks.describe(schedule)}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, state, logs):
        current = optim.learning_rate(state.opt_state)
        if current is None:
            return set_learning_rate(state, 0.0, "LearningRateScheduler")
        value = self.schedule(epoch, float(current))
        _checks.check_number(value, "the learning rate returned by schedule", nonnegative=True)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {value}.")
        return set_learning_rate(state, float(value), "LearningRateScheduler")


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by `factor` after `patience` epochs without improvement (Keras semantics)."""

    holds_state = False

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        _checks.check_number(factor, "factor", positive=True)
        if factor >= 1.0:
            raise ValueError(f"factor must be < 1 (it reduces the learning rate), got {factor!r}")
        _checks.check_number(patience, "patience", integer=True, nonnegative=True)
        _checks.check_number(cooldown, "cooldown", integer=True, nonnegative=True)
        _checks.check_number(min_lr, "min_lr", nonnegative=True)
        _checks.check_number(min_delta, "min_delta", nonnegative=True)
        super().__init__(monitor, mode, min_delta, delta_on="reference")
        self.factor, self.patience, self.verbose = factor, patience, verbose
        self.cooldown, self.min_lr = cooldown, min_lr
        self._reset()

    def _reset(self) -> None:
        self.wait, self.cooldown_counter = 0, 0
        self.best = self.initial_best()

    def on_train_begin(self, state, logs):
        self._reset()

    def on_epoch_end(self, epoch, state, logs):
        current = self.monitored(logs)
        if current is None:
            return None
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_improvement(current, self.best):
            self.best, self.wait = current, 0
            return None
        if self.cooldown_counter > 0:
            return None
        self.wait += 1
        if self.wait < self.patience:
            return None
        old = float(optim.learning_rate(state.opt_state))
        if old <= self.min_lr:
            return None
        new = max(old * self.factor, self.min_lr)
        self.cooldown_counter, self.wait = self.cooldown, 0
        if self.verbose:
            print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
        return set_learning_rate(state, new, "ReduceLROnPlateau")

    def state_dict(self):
        return {"wait": self.wait, "cooldown_counter": self.cooldown_counter, "best": self.best}

    def load_state_dict(self, state):
        self.wait, self.cooldown_counter, self.best = int(state["wait"]), int(state["cooldown_counter"]), float(state["best"])
