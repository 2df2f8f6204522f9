"""EarlyStopping: stop when the monitored value stops improving (Keras semantics)."""

from __future__ import annotations

from jdl import _checks
from jdl.train.callbacks.monitor_base import MonitorCallback


class EarlyStopping(MonitorCallback):
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
        super().__init__(monitor, mode, min_delta, baseline)
        self.patience, self.verbose = patience, verbose
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.holds_state = bool(restore_best_weights)
        self._reset()

    def _reset(self) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best = self.initial_best()
        self.best_state = None

    def on_train_begin(self, state, logs):
        self._reset()

    def on_epoch_end(self, epoch, state, logs):
        current = self.monitored(logs)
        if current is None or epoch < self.start_from_epoch:
            return None
        if self.restore_best_weights and self.best_state is None:
            self.best_state, self.best_epoch = state, epoch
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_state = state
            if self.beats_baseline(current):
                self.wait = 0
            return None
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.context.stop_training = True
            if self.context.history is not None:
                self.context.history.stop_reason = (
                    f"early stopping after epoch {epoch + 1}: {self.monitor} did not improve for {self.wait} epochs "
                    f"(best {self.best:.4g} at epoch {self.best_epoch + 1})"
                    + (f"; weights restored from epoch {self.best_epoch + 1}" if self.restore_best_weights else ""))
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

    def held_state(self):
        return self.best_state

    def load_held_state(self, state):
        self.best_state = state

    def load_state_dict(self, state):
        self.wait, self.best = int(state["wait"]), float(state["best"])
        self.best_epoch, self.stopped_epoch = int(state["best_epoch"]), int(state["stopped_epoch"])
