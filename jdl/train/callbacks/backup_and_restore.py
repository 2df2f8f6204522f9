"""BackupAndRestore: back up everything after each epoch (and mid-epoch on request), so an interrupted fit resumes exactly."""

from __future__ import annotations

import os
import shutil
from typing import Any

import jax
import numpy as np

from jdl import _checks
from jdl.train import distributed
from jdl.train.callbacks.base import Callback, PartialEpoch
from jdl.train.checkpoint import Saver, restore_readable, steps


class TrainingInterrupted(Exception):
    """A fit stopped between two dispatches because `BackupAndRestore.interrupt` was set; its checkpoint is saved.

    directory/step: the checkpoint; epoch (0-based) and steps_done: where the fit stopped;
    reason: what asked it to stop (e.g. "SIGTERM").
    """

    def __init__(self, directory: str, step: int, epoch: int, steps_done: int, steps_per_epoch: int, reason: str):
        self.directory, self.step, self.epoch = directory, step, epoch
        self.steps_done, self.steps_per_epoch, self.reason = steps_done, steps_per_epoch, reason
        super().__init__(f"{reason}: saved epoch {epoch + 1} at step {steps_done}/{steps_per_epoch} "
                         f"to {os.path.join(directory, str(step))}")


def _keys(types: list[str]) -> list[str]:
    """"TypeName_k" for the k-th callback of each type: how saved states find their callback again."""
    seen: dict[str, int] = {}
    keys = []
    for name in types:
        keys.append(f"{name}_{seen.get(name, 0)}")
        seen[name] = seen.get(name, 0) + 1
    return keys


class BackupAndRestore(Callback):
    """Back up the state, history and callback states after every epoch; a new fit resumes from it.

    Resuming restores the arrays, continues at the next epoch with the same per-epoch
    shuffling, and gives the other callbacks their saved state (JSON) and held states (arrays,
    e.g. EarlyStopping's best weights), so an interrupted and resumed fit ends with the same
    parameters as an uninterrupted one. A fit that had stopped early is not continued.

    interrupt: an object with `is_set()` (a threading.Event) polled after every dispatch; once
    set, the partial epoch (position, per-step logs) is saved and `TrainingInterrupted` raised;
    the next fit continues mid-epoch. `str(interrupt)` names the reason in the exception.
    max_to_keep: checkpoints kept (≥ 2, so a damaged newest one falls back to the one before).
    With delete_checkpoint the backup is removed when training ends normally.
    """

    runs_last = True
    holds_state = False

    def __init__(self, backup_dir: str | os.PathLike, delete_checkpoint: bool = True, *, max_to_keep: int = 2,
                 interrupt: Any = None):
        _checks.check_number(max_to_keep, "max_to_keep", integer=True, positive=True)
        if interrupt is not None and not callable(getattr(interrupt, "is_set", None)):
            raise TypeError(f"interrupt must have an is_set() method (a threading.Event), got {_checks.describe(interrupt)}")
        self.directory = os.fspath(backup_dir)
        self.delete_checkpoint, self.interrupt = delete_checkpoint, interrupt
        self.resumed_from: int | None = None
        self.saver = Saver(self.directory, max_to_keep)
        self._partial: list[Any] = []
        self._done = self._epoch = 0
        self._last = -1

    def on_train_begin(self, state, logs):
        self.resumed_from, self._partial, self._done = None, [], 0
        if not steps(self.directory):
            return None
        state, record, held, _ = restore_readable(self.directory, state)
        self.resumed_from = int(record["epoch"])
        context, history = self.context, self.context.history
        context.initial_epoch = self.resumed_from + 1
        history.history.clear()
        history.history.update({k: list(v) for k, v in record["history"]["history"].items()})
        history.epoch[:] = record["history"]["epoch"]
        history.stop_reason = record.get("stop_reason", history.stop_reason)
        entries = [e for e in record.get("callbacks", []) if e is not None]
        saved = dict(zip(_keys([e["type"] for e in entries]), entries))
        for key, callback in zip(_keys([type(c).__name__ for c in context.callbacks]), context.callbacks):
            if key in saved:
                callback.load_state_dict(saved[key]["state"])
                if key in held:
                    callback.load_held_state(held[key])
        if record.get("stopped"):
            context.stop_training, context.nonfinite = True, record.get("nonfinite")
        partial = record.get("partial")
        if partial is not None:
            logs = [{k: np.asarray(v, dtype=partial["dtypes"][k]) for k, v in c.items()} for c in partial["logs"]]
            context.partial = PartialEpoch(int(partial["steps"]), logs)
            self._partial, self._done = list(logs), int(partial["steps"])
        self._epoch = context.initial_epoch
        return state

    def on_epoch_begin(self, epoch, state, logs):
        self._partial, self._done, self._epoch = [], 0, epoch

    def on_train_batch_end(self, steps_run, state, logs):
        self._partial.append(logs)
        self._done += steps_run
        if self.interrupt is None or not self.interrupt.is_set():
            return None
        epoch = self._epoch
        chunks = [{k: np.asarray(v) for k, v in c.items()} for c in distributed.to_host(self._partial)]
        if any(np.any(c["nonfinite"]) for c in chunks):
            return None  # the loop re-runs this epoch guarded and stops training; its end is checkpointed
        partial = {"steps": self._done, "logs": [{k: v.tolist() for k, v in c.items()} for c in chunks],
                   "dtypes": {k: v.dtype.name for k, v in chunks[0].items()}}
        step = self._save(epoch - 1, state, partial)
        self.saver.wait()
        raise TrainingInterrupted(self.directory, step, epoch, self._done, self.context.steps_per_epoch,
                                  str(self.interrupt))

    def on_epoch_end(self, epoch, state, logs):
        self._save(epoch, state, None)
        return None

    def _save(self, completed_epoch: int, state: Any, partial: dict[str, Any] | None) -> int:
        """Save a checkpoint after `completed_epoch` (plus `partial` steps of the next); returns its Orbax step.

        Steps count the batches run, (completed_epoch + 1)·steps_per_epoch + partial steps, and
        always exceed the newest saved step.
        """
        context, history = self.context, self.context.history
        keys = _keys([type(c).__name__ for c in context.callbacks])
        callbacks = [{"type": type(c).__name__, "state": c.state_dict()} for c in context.callbacks]
        held = {k: kept for k, c in zip(keys, context.callbacks) if (kept := c.held_state()) is not None}
        record = {"epoch": completed_epoch, "history": {"history": history.history, "epoch": history.epoch},
                  "callbacks": callbacks, "stopped": bool(context.stop_training), "stop_reason": history.stop_reason,
                  "nonfinite": context.nonfinite, **({"partial": partial} if partial is not None else {})}
        batches = (completed_epoch + 1) * context.steps_per_epoch + (partial["steps"] if partial else 0)
        existing = steps(self.directory)
        step = max(batches, self._last + 1, existing[-1] + 1 if existing else 0)
        self.saver.save(step, state, record, held)
        self._last = step
        return step

    def close(self) -> None:
        self.saver.close()

    def on_train_end(self, state, logs):
        self.saver.close()
        if self.delete_checkpoint and self.context.nonfinite is None and os.path.isdir(self.directory):
            shutil.rmtree(self.directory)
        return None
