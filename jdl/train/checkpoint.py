"""Orbax checkpoints of a TrainState: ModelCheckpoint, BackupAndRestore and plain save/restore.

A checkpoint holds the state's arrays (step, params, opt_state, model_state, rng) and a JSON
record (epoch, logs, history, callback states). Orbax writes to a temporary directory and
renames it when complete, so a crash mid-save never corrupts the previous checkpoint.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from typing import Any

import numpy as np
import orbax.checkpoint as ocp

from jdl import _checks
from jdl.train.callbacks import Callback, _monitor_op, _monitored
from jdl.train.state import TrainState


def _manager(directory: str | os.PathLike, max_to_keep: int | None = None, *, asynchronous: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=asynchronous, create=True
    )
    return ocp.CheckpointManager(os.path.abspath(os.fspath(directory)), options=options)


def _save_args(state: TrainState, record: Mapping[str, Any] | None) -> ocp.args.Composite:
    return ocp.args.Composite(state=ocp.args.StandardSave(state.arrays()),
                              record=ocp.args.JsonSave(_json_safe(dict(record or {}))))


class _Saver:
    """One open Orbax manager per callback: saves run in the background while training goes on.

    Orbax finalises a checkpoint by an atomic rename, so a save interrupted by a crash is ignored.
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int | None):
        self.directory, self.max_to_keep, self.manager = directory, max_to_keep, None

    def save(self, step: int, state: TrainState, record: Mapping[str, Any]) -> None:
        if self.manager is None:
            self.manager = _manager(self.directory, self.max_to_keep, asynchronous=True)
        self.manager.save(int(step), args=_save_args(state, record), force=True)

    def close(self) -> None:
        if self.manager is not None:
            self.manager.wait_until_finished()
            self.manager.close()
            self.manager = None


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_restore(value: Any) -> Any:
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _json_restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_restore(v) for v in value]
    return value


def save(directory: str | os.PathLike, state: TrainState, step: int, record: Mapping[str, Any] | None = None,
         *, max_to_keep: int | None = None) -> None:
    """Save the state's arrays and a JSON `record` as checkpoint `step` of `directory`."""
    manager = _manager(directory, max_to_keep)
    manager.save(int(step), args=_save_args(state, record), force=True)
    manager.wait_until_finished()
    manager.close()


def latest_step(directory: str | os.PathLike) -> int | None:
    """The newest complete checkpoint step in `directory`, or None (safe while a save is running)."""
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return None
    steps = [int(e) for e in entries if e.isdigit() and os.path.exists(os.path.join(directory, e, "_CHECKPOINT_METADATA"))]
    return max(steps) if steps else None


def restore(directory: str | os.PathLike, state: TrainState, step: int | None = None) -> tuple[TrainState, dict[str, Any]]:
    """(state with the checkpoint's arrays, record) from checkpoint `step` (default: the latest).

    `state` is a template with the same structure (e.g. a fresh `Trainer.init`).
    """
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState template, got {_checks.describe(state)}")
    step = latest_step(directory) if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint found in {os.fspath(directory)!r}")
    manager = _manager(directory)
    restored = manager.restore(
        int(step),
        args=ocp.args.Composite(state=ocp.args.StandardRestore(state.arrays()), record=ocp.args.JsonRestore()),
    )
    manager.close()
    return state.with_arrays(dict(restored["state"])), _json_restore(dict(restored["record"] or {}))


class ModelCheckpoint(Callback):
    """Save the state at the end of epochs to an Orbax directory (Keras ModelCheckpoint semantics).

    save_best_only keeps only epochs where `monitor` improved (mode auto/min/max); checkpoint
    step = epoch. `max_to_keep` bounds how many are kept (the best ones with save_best_only).
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, mode: str = "auto", max_to_keep: int | None = None):
        if max_to_keep is not None:
            _checks.check_number(max_to_keep, "max_to_keep", integer=True, positive=True)
        self.directory = os.fspath(filepath)
        self.monitor, self.verbose, self.save_best_only, self.max_to_keep = monitor, verbose, save_best_only, max_to_keep
        self.monitor_op = _monitor_op(monitor, mode)
        self.best = math.inf if self.monitor_op is np.less else -math.inf
        self.saver = _Saver(self.directory, max_to_keep)

    def on_train_begin(self, state, logs):
        self.best = math.inf if self.monitor_op is np.less else -math.inf

    def on_epoch_end(self, epoch, state, logs):
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None or not self.monitor_op(current, self.best):
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


class BackupAndRestore(Callback):
    """Back up the state, history and callback states after every epoch; a new fit resumes from it.

    Resuming restores the arrays, continues at the next epoch with the same per-epoch
    shuffling, and gives the other callbacks their saved state, so an interrupted and resumed
    fit ends with the same parameters as an uninterrupted one. With delete_checkpoint the
    backup is removed when training ends normally.
    """

    runs_last = True

    def __init__(self, backup_dir: str | os.PathLike, delete_checkpoint: bool = True):
        self.directory = os.fspath(backup_dir)
        self.delete_checkpoint = delete_checkpoint
        self.resumed_from: int | None = None
        self.saver = _Saver(self.directory, 1)

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
