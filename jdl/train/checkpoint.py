"""Orbax checkpoints of a TrainState: save, restore, the latest step, and loading parameters without a template.

A checkpoint holds the state's arrays (step, params, opt_state, model_state, rng), a JSON
record (epoch, logs, history, callback states) and, optionally, further states of the same
weights held by callbacks (EarlyStopping's best params and model_state), one Orbax item each ("held_<name>",
listed in the record under "held"). Orbax writes to a temporary directory and renames it when
complete, so a crash mid-save never corrupts the previous checkpoint; `restore_readable` falls
back to an older checkpoint when the newest one was damaged afterwards. Orbax is imported on
first use.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from jdl import _checks, _io
from jdl.train.state import TrainState


def _ocp() -> Any:
    import orbax.checkpoint as ocp

    return ocp


def manager(directory: str | os.PathLike, max_to_keep: int | None = None, *, asynchronous: bool = False) -> Any:
    """An Orbax CheckpointManager over `directory` (created if missing).

    Its multi-process barriers carry a prefix named after the directory's last two parts (the same on
    every host): two managers saving at once (a run's backups and its best checkpoints) otherwise use
    one barrier name, and a multi-process run failed with "Barrier …set_value_start is already ongoing".
    """
    ocp = _ocp()
    path = os.path.abspath(os.fspath(directory))
    prefix = "jdl_" + re.sub(r"\W", "_", "_".join(path.split(os.sep)[-2:]))
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=asynchronous, create=True,
        multiprocessing_options=ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=prefix),
    )
    return ocp.CheckpointManager(path, options=options)


HELD = "held_"


def _held_arrays(state: TrainState) -> dict[str, Any]:
    """What a held state keeps of a TrainState: the weights (params and model_state), not the optimizer state."""
    return {"params": state.params, "model_state": state.model_state}


def save_args(state: TrainState, record: Mapping[str, Any] | None,
              held: Mapping[str, TrainState] | None = None) -> Any:
    """Orbax save arguments for the state's arrays, a JSON record and the `held` states' arrays ({name: state})."""
    ocp = _ocp()
    held = dict(held or {})
    record = {**dict(record or {}), **({"held": sorted(held)} if held else {})}
    items = {f"{HELD}{name}": ocp.args.StandardSave(_held_arrays(kept)) for name, kept in held.items()}
    return ocp.args.Composite(state=ocp.args.StandardSave(state.arrays()),
                              record=ocp.args.JsonSave(_io.json_safe(record)), **items)


class Saver:
    """One open Orbax manager: saves run in the background while training goes on.

    The device-to-host copy happens before `save` returns, so the saved state's buffers may be
    reused at once. Orbax finalises a checkpoint by an atomic rename, so a save interrupted by a
    crash is ignored.
    """

    def __init__(self, directory: str | os.PathLike, max_to_keep: int | None):
        self.directory, self.max_to_keep, self.manager = directory, max_to_keep, None

    def save(self, step: int, state: TrainState, record: Mapping[str, Any],
             held: Mapping[str, TrainState] | None = None) -> None:
        if self.manager is None:
            self.manager = manager(self.directory, self.max_to_keep, asynchronous=True)
        if int(step) in self.manager.all_steps():  # an earlier attempt of this run saved it, then died: redo it
            self.manager.wait_until_finished()
            self.manager.delete(int(step))
        self.manager.save(int(step), args=save_args(state, record, held), force=True)

    def wait(self) -> None:
        """Block until every started save is committed."""
        if self.manager is not None:
            self.manager.wait_until_finished()

    def close(self) -> None:
        if self.manager is not None:
            self.manager.wait_until_finished()
            self.manager.close()
            self.manager = None


def save(directory: str | os.PathLike, state: TrainState, step: int, record: Mapping[str, Any] | None = None,
         *, max_to_keep: int | None = None) -> None:
    """Save the state's arrays and a JSON `record` as checkpoint `step` of `directory`."""
    handle = manager(directory, max_to_keep)
    handle.save(int(step), args=save_args(state, record), force=True)
    handle.wait_until_finished()
    handle.close()


def latest_step(directory: str | os.PathLike) -> int | None:
    """The newest complete checkpoint step in `directory`, or None (safe while a save is running)."""
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return None
    steps = [int(e) for e in entries if e.isdigit() and os.path.exists(os.path.join(directory, e, "_CHECKPOINT_METADATA"))]
    return max(steps) if steps else None


def steps(directory: str | os.PathLike) -> list[int]:
    """The complete checkpoint steps in `directory`, oldest first ([] when there is none)."""
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(e) for e in entries
                  if e.isdigit() and os.path.exists(os.path.join(directory, e, "_CHECKPOINT_METADATA")))


def restore_held(directory: str | os.PathLike, state: TrainState, step: int, record: Mapping[str, Any]) -> dict[str, TrainState]:
    """{name: state} of the held states a checkpoint's record lists: `state` with their params and model_state."""
    names = list(record.get("held", []))
    if not names:
        return {}
    ocp = _ocp()
    handle = manager(directory)
    try:
        restored = handle.restore(int(step), args=ocp.args.Composite(
            **{f"{HELD}{name}": ocp.args.StandardRestore(_held_arrays(state)) for name in names}))
    finally:
        handle.close()
    return {name: state.replace(**placed_like(dict(restored[f"{HELD}{name}"]), _held_arrays(state))) for name in names}


def _damaged_file(err: BaseException) -> str:
    """The file an Orbax/TensorStore read error names (the innermost `local file "..."`), else ''."""
    found = re.findall(r'local file \\?"([^"\\]+)', str(err))
    return found[-1] if found else ""


def restore_readable(directory: str | os.PathLike, state: TrainState) -> tuple[TrainState, dict[str, Any], dict[str, TrainState], int]:
    """(state, record, held states, step) of the newest checkpoint in `directory` that reads back whole.

    A checkpoint that fails to read (a truncated or corrupted file) is reported by a
    RuntimeWarning naming the file and the next older one is tried; ValueError when none reads.
    """
    found = steps(directory)
    if not found:
        raise FileNotFoundError(f"no checkpoint found in {os.fspath(directory)!r}")
    failures = []
    for step in reversed(found):
        try:
            restored, record = restore(directory, state, step)
            return restored, record, restore_held(directory, state, step, record), step
        except (ValueError, OSError, KeyError, TypeError) as err:
            where = os.path.join(os.fspath(directory), str(step))
            damaged = _damaged_file(err)
            detail = f"file {damaged}" if damaged else f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
            failures.append(f"{where} ({detail})")
            older = [s for s in found if s < step]
            then = f"falling back to {os.path.join(os.fspath(directory), str(older[-1]))}" if older else "no older checkpoint"
            warnings.warn(f"checkpoint {where} cannot be read ({detail}); {then}", RuntimeWarning, stacklevel=2)
    raise ValueError(f"no readable checkpoint in {os.fspath(directory)!r}: " + "; ".join(failures))


def restore(directory: str | os.PathLike, state: TrainState, step: int | None = None) -> tuple[TrainState, dict[str, Any]]:
    """(state with the checkpoint's arrays, record) from checkpoint `step` (default: the latest).

    `state` is a template with the same structure (e.g. a fresh `Trainer.init`).
    """
    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState template, got {_checks.describe(state)}")
    step = latest_step(directory) if step is None else step
    if step is None:
        raise FileNotFoundError(f"no checkpoint found in {os.fspath(directory)!r}")
    ocp = _ocp()
    handle = manager(directory)
    try:
        restored = handle.restore(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardRestore(state.arrays()), record=ocp.args.JsonRestore()),
        )
        arrays = dict(restored["state"])
    except ValueError as err:
        if "tree structures do not match" not in str(err):
            raise
        restored = handle.restore(int(step), args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                                     record=ocp.args.JsonRestore()))
        arrays = from_earlier_layout(dict(restored["state"]), state.arrays(), err)
    finally:
        handle.close()
    return state.with_arrays(placed_like(arrays, state.arrays())), _io.json_restore(dict(restored["record"] or {}))


def placed_like(arrays: Any, template: Any) -> Any:
    """`arrays` with the template's placement: leaves whose template is uncommitted (a fresh state) become uncommitted.

    Orbax places restored arrays on the template's devices explicitly (committed), and jit keys
    its compiled programs on that: without this a resumed fit would compile its steps again.
    """
    import jax

    def place(new, old):
        if getattr(old, "committed", True) or not getattr(new, "committed", False):
            return new
        return jax.device_put(np.asarray(new))

    return jax.tree_util.tree_map(place, arrays, template)


def from_earlier_layout(raw: Mapping[str, Any], template: Any, err: Exception) -> Any:
    """The template's arrays taken from a checkpoint of an earlier release, by path.

    Releases before the engine core baked momentum, clipping and weight decay into the optimizer
    instead of injecting them as hyperparameters, so their optimizer states lack those leaves. A
    leaf missing under a `hyperparams` entry keeps the template's value (the configured number);
    any other missing leaf, or a shape that differs, is an error naming the path.
    """
    import jax

    def lookup(path):
        node = raw
        for key in path:
            name = getattr(key, "key", getattr(key, "name", getattr(key, "idx", None)))
            if isinstance(node, Mapping) and name in node:
                node = node[name]
            elif isinstance(node, (list, tuple)) and isinstance(name, int) and name < len(node):
                node = node[name]
            else:
                return None
        return node

    def take(path, leaf):
        value = lookup(path)
        where = jax.tree_util.keystr(path)
        if value is None:
            if any(getattr(k, "name", getattr(k, "key", None)) == "hyperparams" for k in path):
                return leaf
            raise ValueError(f"checkpoint does not match the model and optimizer: no value for {where} ({err})") from None
        if tuple(np.shape(value)) != tuple(np.shape(leaf)):
            raise ValueError(f"checkpoint does not match the model and optimizer: {where} has shape "
                             f"{np.shape(value)}, expected {np.shape(leaf)}") from None
        return jax.device_put(np.asarray(value, dtype=leaf.dtype), leaf.sharding)

    return jax.tree_util.tree_map_with_path(take, template)


def _is_step_directory(path: str) -> bool:
    return os.path.exists(os.path.join(path, "_CHECKPOINT_METADATA")) and os.path.isdir(os.path.join(path, "state"))


def load_params(source: Any, step: int | None = None) -> Any:
    """The parameters (a nested dict of arrays) of a TrainState or of an Orbax checkpoint.

    source: a TrainState; a checkpoint directory written by `save`,
    `ModelCheckpoint` or `BackupAndRestore` (step: which one, default the latest); or one step's
    directory inside it ("ckpts/7"). No template model is needed.
    """
    if isinstance(source, TrainState):
        return source.params
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a TrainState or a checkpoint directory, got {_checks.describe(source)}")
    if step is not None:
        _checks.check_number(step, "step", integer=True, nonnegative=True)
    directory = os.path.abspath(os.fspath(source))
    if step is None and _is_step_directory(directory) and os.path.basename(directory).isdigit():
        directory, step = os.path.dirname(directory), int(os.path.basename(directory))
    if step is None:
        step = latest_step(directory)
        if step is None:
            raise FileNotFoundError(f"no checkpoint found in {os.fspath(source)!r}")
    elif not _is_step_directory(os.path.join(directory, str(step))):
        found = latest_step(directory)
        raise FileNotFoundError(f"no checkpoint step {step} in {os.fspath(source)!r} (latest: {found})")
    handle = _ocp().CheckpointManager(directory)
    try:
        restored = handle.restore(int(step), args=_ocp().args.Composite(state=_ocp().args.StandardRestore()))
    finally:
        handle.close()
    state = dict(restored["state"])
    if "params" not in state:
        raise ValueError(f"checkpoint {directory}/{step} holds no 'params' (it has {sorted(state)})")
    return state["params"]


def __getattr__(name: str) -> Any:
    """Deprecated aliases (one release): the checkpoint callbacks moved to `jdl.train.callbacks`."""
    if name in ("ModelCheckpoint", "BackupAndRestore"):
        from jdl.train import callbacks

        return getattr(callbacks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
