"""ModelCheckpoint: save the state at the end of epochs to an Orbax directory (Keras semantics)."""

from __future__ import annotations

import os

from jdl import _checks
from jdl.train.callbacks.monitor_base import MonitorCallback
from jdl.train.checkpoint import Saver


class ModelCheckpoint(MonitorCallback):
    """Save the state at the end of epochs to an Orbax directory (Keras ModelCheckpoint semantics).

    save_best_only keeps only epochs where `monitor` improved (mode auto/min/max); checkpoint
    step = epoch. `max_to_keep` bounds how many are kept (the best ones with save_best_only).
    """

    holds_state = False

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, mode: str = "auto", max_to_keep: int | None = None):
        if max_to_keep is not None:
            _checks.check_number(max_to_keep, "max_to_keep", integer=True, positive=True)
        super().__init__(monitor, mode)
        self.directory = os.fspath(filepath)
        self.verbose, self.save_best_only, self.max_to_keep = verbose, save_best_only, max_to_keep
        self.saver = Saver(self.directory, max_to_keep)

    def on_train_begin(self, state, logs):
        self.best = self.initial_best()

    def on_epoch_end(self, epoch, state, logs):
        if self.save_best_only:
            current = self.monitored(logs)
            if current is None or not self.is_improvement(current, self.best):
                return None
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, saving to {self.directory}")
            self.best = current
        self.saver.save(epoch, state, {"epoch": epoch, "logs": dict(logs)})
        return None

    def close(self) -> None:
        self.saver.close()

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = float(state["best"])
