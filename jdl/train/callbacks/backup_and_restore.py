"""BackupAndRestore: back up everything after each epoch, so an interrupted fit resumes exactly."""

from __future__ import annotations

import os
import shutil

from jdl.train.callbacks.base import Callback
from jdl.train.checkpoint import Saver, latest_step, restore


class BackupAndRestore(Callback):
    """Back up the state, history and callback states after every epoch; a new fit resumes from it.

    Resuming restores the arrays, continues at the next epoch with the same per-epoch
    shuffling, and gives the other callbacks their saved state, so an interrupted and resumed
    fit ends with the same parameters as an uninterrupted one. With delete_checkpoint the
    backup is removed when training ends normally.
    """

    runs_last = True
    holds_state = False

    def __init__(self, backup_dir: str | os.PathLike, delete_checkpoint: bool = True):
        self.directory = os.fspath(backup_dir)
        self.delete_checkpoint = delete_checkpoint
        self.resumed_from: int | None = None
        self.saver = Saver(self.directory, 1)

    def on_train_begin(self, state, logs):
        self.resumed_from = None
        if latest_step(self.directory) is None:
            return None
        state, record = restore(self.directory, state)
        self.resumed_from = int(record["epoch"])
        self.context.initial_epoch = self.resumed_from + 1
        history = self.context.history
        history.history.clear()
        history.history.update({k: list(v) for k, v in record["history"]["history"].items()})
        history.epoch[:] = record["history"]["epoch"]
        for callback, saved in zip(self.context.callbacks, record.get("callbacks", [])):
            if saved is not None and type(callback).__name__ == saved["type"]:
                callback.load_state_dict(saved["state"])
        return state

    def on_epoch_end(self, epoch, state, logs):
        history = self.context.history
        callbacks = [{"type": type(c).__name__, "state": c.state_dict()} for c in self.context.callbacks]
        record = {"epoch": epoch, "history": {"history": history.history, "epoch": history.epoch}, "callbacks": callbacks}
        self.saver.save(epoch, state, record)
        return None

    def close(self) -> None:
        self.saver.close()

    def on_train_end(self, state, logs):
        self.saver.close()
        if self.delete_checkpoint and self.context.nonfinite is None and os.path.isdir(self.directory):
            shutil.rmtree(self.directory)
        return None
