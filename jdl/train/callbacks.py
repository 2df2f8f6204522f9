"""Callbacks with Keras names and semantics; they receive the state and may return a new one.

A hook returns None (state unchanged) or a TrainState. Hooks run between dispatches; only
`on_epoch_end` sees host floats (`logs`), `on_train_batch_end` gets device arrays and must not
read them unless it needs to (reading forces a device sync).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from jdl import _checks


@dataclasses.dataclass
class FitContext:
    """What a callback may read or set during fit: the trainer, the plan, and `stop_training`."""

    trainer: Any
    epochs: int
    initial_epoch: int
    steps_per_epoch: int
    batch_size: int
    history: Any
    stop_training: bool = False
    nonfinite: str | None = None
    callbacks: list[Any] = dataclasses.field(default_factory=list)


class Callback:
    """Base class: override the hooks you need; each returns None or a replacement TrainState."""

    context: FitContext
    runs_last = False  # True for callbacks that must see every other callback's epoch (backups)

    def set_context(self, context: FitContext) -> None:
        self.context = context

    def on_train_begin(self, state: Any, logs: Mapping[str, float]) -> Any:
        return None

    def on_epoch_begin(self, epoch: int, state: Any, logs: Mapping[str, float]) -> Any:
        return None

    def on_train_batch_end(self, steps: int, state: Any, logs: Mapping[str, Any]) -> Any:
        return None

    def on_epoch_end(self, epoch: int, state: Any, logs: Mapping[str, float]) -> Any:
        return None

    def on_train_end(self, state: Any, logs: Mapping[str, float]) -> Any:
        return None

    def close(self) -> None:
        """Release resources (finish background saves); called when fit ends, also on errors."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """JSON-able internal state, saved by BackupAndRestore so a resumed fit behaves identically."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None


class CallbackList:
    """Runs hooks in order, threading the state through them."""

    def __init__(self, callbacks: Sequence[Callback], context: FitContext):
        self.callbacks = sorted(callbacks, key=lambda c: c.runs_last)
        self.context = context
        context.callbacks = self.callbacks
        for callback in self.callbacks:
            callback.set_context(context)

    def _run(self, hook: str, state: Any, *args: Any) -> Any:
        for callback in self.callbacks:
            result = getattr(callback, hook)(*args[:-1], state, args[-1])
            if result is not None:
                state = result
        return state

    def on_train_begin(self, state, logs):
        return self._run("on_train_begin", state, logs)

    def on_epoch_begin(self, epoch, state, logs):
        return self._run("on_epoch_begin", state, epoch, logs)

    def on_train_batch_end(self, steps, state, logs):
        return self._run("on_train_batch_end", state, steps, logs)

    def on_epoch_end(self, epoch, state, logs):
        return self._run("on_epoch_end", state, epoch, logs)

    def on_train_end(self, state, logs):
        return self._run("on_train_end", state, logs)

    def close(self) -> None:
        for callback in self.callbacks:
            callback.close()


def _monitor_op(monitor: str, mode: str) -> Callable[[float, float], bool]:
    """np.less for losses/errors or mode "min", np.greater for mode "max" or accuracy-like metrics."""
    _checks.check_choice(mode, "mode", ("auto", "min", "max"))
    if mode == "auto":
        name = monitor.removeprefix("val_")
        higher_is_better = any(k in name for k in ("acc", "auc", "precision", "recall", "f1", "r2"))
        mode = "max" if higher_is_better and "loss" not in name else "min"
    return np.less if mode == "min" else np.greater


def _monitored(logs: Mapping[str, float], monitor: str, who: str) -> float | None:
    value = logs.get(monitor)
    if value is None:
        warnings.warn(
            f"{who} conditioned on `{monitor}`, which is not in the logs. Available: {', '.join(logs)}",
            RuntimeWarning,
            stacklevel=3,
        )
    return value


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs (Keras semantics).

    An improvement resets the wait only if it also beats `baseline`; epochs before
    start_from_epoch are ignored; with restore_best_weights the state of the best epoch is
    returned at the end of training.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 start_from_epoch: int = 0):
        _checks.check_number(min_delta, "min_delta")
        _checks.check_number(patience, "patience", integer=True, nonnegative=True)
        _checks.check_number(start_from_epoch, "start_from_epoch", integer=True, nonnegative=True)
        if baseline is not None:
            _checks.check_number(baseline, "baseline")
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights, self.start_from_epoch = baseline, restore_best_weights, start_from_epoch
        self.monitor_op = _monitor_op(monitor, mode)
        self.min_delta = abs(min_delta) if self.monitor_op is np.greater else -abs(min_delta)
        self._reset()

    def _reset(self) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = math.inf if self.monitor_op is np.less else -math.inf
        self.best_state = None

    def _is_improvement(self, value: float, reference: float) -> bool:
        return bool(self.monitor_op(value - self.min_delta, reference))

    def on_train_begin(self, state, logs):
        self._reset()

    def on_epoch_end(self, epoch, state, logs):
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return None
        if self.restore_best_weights and self.best_state is None:
            self.best_state, self.best_epoch = state, epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_state = state
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return None
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.context.stop_training = True
        return None

    def on_train_end(self, state, logs):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_state is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            return state.replace(params=self.best_state.params, model_state=self.best_state.model_state)
        return None

    def state_dict(self):
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state):
        self.wait, self.best = int(state["wait"]), float(state["best"])
        self.best_epoch, self.stopped_epoch = int(state["best_epoch"]), int(state["stopped_epoch"])


def _set_learning_rate(state: Any, value: float, who: str) -> Any:
    from jdl import optim

    if optim.learning_rate(state.opt_state) is None:
        raise ValueError(
            f"{who} needs an optimizer whose learning rate is a hyperparameter (a jdl.optim optimizer with a "
            "constant learning rate), not a raw optax transformation or a schedule"
        )
    return state.replace(opt_state=optim.set_learning_rate(state.opt_state, value))


class LearningRateScheduler(Callback):
    """At each epoch start set the learning rate to schedule(epoch, lr) (Keras semantics)."""

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0):
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> lr, got {_checks.describe(schedule)}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, state, logs):
        from jdl import optim

        current = optim.learning_rate(state.opt_state)
        if current is None:
            return _set_learning_rate(state, 0.0, "LearningRateScheduler")
        value = self.schedule(epoch, float(current))
        _checks.check_number(value, "the learning rate returned by schedule", nonnegative=True)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {value}.")
        return _set_learning_rate(state, float(value), "LearningRateScheduler")


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` after `patience` epochs without improvement (Keras semantics)."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        _checks.check_number(factor, "factor", positive=True)
        if factor >= 1.0:
            raise ValueError(f"factor must be < 1 (it reduces the learning rate), got {factor!r}")
        _checks.check_number(patience, "patience", integer=True, nonnegative=True)
        _checks.check_number(cooldown, "cooldown", integer=True, nonnegative=True)
        _checks.check_number(min_lr, "min_lr", nonnegative=True)
        _checks.check_number(min_delta, "min_delta", nonnegative=True)
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.monitor_op = _monitor_op(monitor, mode)
        self._reset()

    def _reset(self) -> None:
        self.wait, self.cooldown_counter = 0, 0
        self.best = math.inf if self.monitor_op is np.less else -math.inf

    def _better(self, value: float) -> bool:
        if self.monitor_op is np.less:
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, state, logs):
        self._reset()

    def on_epoch_end(self, epoch, state, logs):
        from jdl import optim

        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if current is None:
            return None
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current):
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
        return _set_learning_rate(state, new, "ReduceLROnPlateau")

    def state_dict(self):
        return {"wait": self.wait, "cooldown_counter": self.cooldown_counter, "best": self.best}

    def load_state_dict(self, state):
        self.wait, self.cooldown_counter, self.best = int(state["wait"]), int(state["cooldown_counter"]), float(state["best"])


class TerminateOnNaN(Callback):
    """Say where training met a non-finite loss and make sure it stops there.

    jdl always stops at the first non-finite loss or gradient (the step is not applied); this
    callback prints the report, as Keras' TerminateOnNaN prints its message.
    """

    def on_epoch_end(self, epoch, state, logs):
        if self.context.nonfinite or any(not math.isfinite(v) for k, v in logs.items() if k.endswith("loss")):
            self.context.stop_training = True
            print(f"TerminateOnNaN: {self.context.nonfinite or f'non-finite loss at epoch {epoch}'}", file=sys.stderr)


class CSVLogger(Callback):
    """Write one row per epoch (epoch and every log) to a CSV file.

    With append=True an existing file is continued; rows for epochs at or after the first
    epoch of this fit (left by an interrupted run that is being resumed) are dropped first.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys: list[str] | None = None

    def on_train_begin(self, state, logs):
        self.keys, self.first_epoch = None, True
        if not self.append and os.path.exists(self.filename):
            os.remove(self.filename)

    def on_epoch_begin(self, epoch, state, logs):
        if not (self.first_epoch and self.append and os.path.exists(self.filename)):
            self.first_epoch = False
            return None
        self.first_epoch = False
        with open(self.filename, newline="") as handle:
            rows = list(csv.reader(handle, delimiter=self.separator))
        if not rows:
            return None
        self.keys = rows[0][1:]
        kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) < epoch]
        if len(kept) != len(rows):
            tmp = self.filename + ".tmp"
            with open(tmp, "w", newline="") as handle:
                csv.writer(handle, delimiter=self.separator).writerows(kept)
            os.replace(tmp, self.filename)
        return None

    def on_epoch_end(self, epoch, state, logs):
        if self.keys is None:
            self.keys = sorted(logs)
        write_header = not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0
        with open(self.filename, "a", newline="") as handle:
            writer = csv.writer(handle, delimiter=self.separator)
            if write_header:
                writer.writerow(["epoch", *self.keys])
            writer.writerow([epoch, *(repr(float(logs[k])) if k in logs else "" for k in self.keys)])
            handle.flush()
            os.fsync(handle.fileno())


class LambdaCallback(Callback):
    """A callback from plain functions: on_epoch_end=lambda epoch, state, logs: ..., etc."""

    def __init__(self, on_train_begin=None, on_epoch_begin=None, on_train_batch_end=None, on_epoch_end=None,
                 on_train_end=None):
        for name, fn in [("on_train_begin", on_train_begin), ("on_epoch_begin", on_epoch_begin),
                         ("on_train_batch_end", on_train_batch_end), ("on_epoch_end", on_epoch_end),
                         ("on_train_end", on_train_end)]:
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name} must be callable, got {_checks.describe(fn)}")
                setattr(self, name, fn)


class ProgressBar(Callback):
    """tqdm progress: verbose 0 silent, 1 a bar per epoch updated per dispatch, 2 one line per epoch."""

    def __init__(self, verbose: int = 1):
        _checks.check_choice(verbose, "verbose", (0, 1, 2))
        self.verbose = verbose
        self.bar = None

    def on_epoch_begin(self, epoch, state, logs):
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.context.steps_per_epoch, desc=f"Epoch {epoch + 1}/{self.context.epochs}",
                            unit="step", leave=True, file=sys.stdout, dynamic_ncols=True)

    def on_train_batch_end(self, steps, state, logs):
        if self.bar is not None:
            self.bar.update(steps)

    def on_epoch_end(self, epoch, state, logs):
        text = " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.close()
            self.bar = None
        elif self.verbose == 2:
            print(f"Epoch {epoch + 1}/{self.context.epochs} - {text}", flush=True)
