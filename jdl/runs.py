"""Batch runs (the command layer): a RunConfig -> a run directory (config.json, metrics.csv, checkpoints/, summary.json, report)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import threading
import time
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jdl import _io
from jdl import callbacks as callbacks_lib
from jdl import config as config_lib
from jdl import data as data_lib
from jdl import models, optim
from jdl.diagnostics import report as report_lib
from jdl.data import packed, sources
from jdl.train import distributed, sharding
from jdl.train.checkpoint import latest_step
from jdl.train.streaming import SourceMismatch
from jdl.train.trainer import Trainer

LATEST = "checkpoints/latest"
BEST = "checkpoints/best"

def _learning_rate(train: config_lib.TrainConfig) -> Any:
    if train.schedule is None:
        return train.learning_rate
    options = dict(train.schedule)
    name = options.pop("name", None)
    try:
        return optim.schedules.get(name, train.learning_rate, **options)
    except (TypeError, ValueError) as err:
        raise config_lib.ConfigError(f"train.schedule: {err}") from None


def environment(config: config_lib.RunConfig) -> dict[str, Any]:
    """What the run trains on (environment.json): processes, devices and their kinds, backend, precision, versions."""
    devices = jax.devices()
    return {"process_count": jax.process_count(), "process_index": jax.process_index(),
            "device_count": len(devices), "local_device_count": jax.local_device_count(),
            "device_kinds": sorted({d.device_kind for d in devices}), "backend": jax.default_backend(),
            "precision": config.train.precision, "jax": jax.__version__, "platform": platform.platform()}


def build(config: config_lib.RunConfig) -> tuple[Trainer, Any]:
    """The Trainer and the loaded data set a config describes (everything validated before training)."""
    dataset = data_lib.load(config.data.name, **config.data.options)
    model = models.get(config.model.name)(**{k: config_lib.frozen(v) for k, v in config.model.options.items()})
    optimizer = optim.get(config.train.optimizer, learning_rate=_learning_rate(config.train),
                          **config.train.optimizer_options)
    trainer = Trainer(model, loss=config.train.loss, optimizer=optimizer, metrics=list(config.train.metrics),
                      steps_per_execution=config.train.steps_per_execution, precision=config.train.precision,
                      accumulate=config.train.accumulate)
    return trainer, dataset


class StopRequest:
    """Set by SIGINT or SIGTERM during a run: training stops after the current dispatch, saving a checkpoint."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def is_set(self) -> bool:
        """Whether to stop; in a multi-process run, whether any process got a signal (all stop at the same dispatch)."""
        if jax.process_count() > 1:  # decided on the gathered flags alone: a signal during the gather waits for the next
            from jax.experimental import multihost_utils

            signals = multihost_utils.process_allgather(np.int32(self.signal or 0))
            if not np.any(signals):
                return False
            self.signal = self.signal or int(np.max(signals))
            return True
        return self.signal is not None

    def __str__(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else "no signal"


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signal_number: int) -> int:
    """The exit status of a run stopped by a signal after saving its checkpoint: 128 + the signal (SIGINT 130, SIGTERM 143)."""
    return 128 + int(signal_number)


@contextlib.contextmanager
def stop_on_signals(request: StopRequest):
    """While inside, the first SIGINT/SIGTERM sets `request`; a second one raises KeyboardInterrupt at once (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signal_number, frame):
        if request.signal is not None:  # not is_set(): in a multi-process run that is a collective
            raise KeyboardInterrupt
        request.signal = signal_number

    previous = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
    try:
        yield request
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _callbacks(config: config_lib.RunConfig, out: Path, interrupt: StopRequest | None = None) -> list[callbacks_lib.Callback]:
    """The run's callbacks; in a multi-process run the file-writing loggers only in process 0 (checkpoints in all)."""
    fixed = {"tensorboard": {"log_dir": str(out / "tensorboard")}}
    result = []
    for name, options in config.callbacks.items():
        if name == "model_checkpoint" or (name == "tensorboard" and not distributed.is_main()):
            continue
        try:
            result.append(callbacks_lib.get(name, **fixed.get(name, {}), **options))
        except (TypeError, ValueError) as err:
            raise config_lib.ConfigError(f"callbacks.{name}: {err}") from None
    if "gradient_monitor" not in config.callbacks:
        result.append(callbacks_lib.GradientMonitor(**DEFAULT_MONITOR))
    best = dict(config.callbacks.get("model_checkpoint", {}))
    best.setdefault("monitor", "val_loss" if config.data.validation_split > 0 else "loss")
    best.setdefault("save_best_only", True)
    best.setdefault("max_to_keep", 1)
    result.append(callbacks_lib.ModelCheckpoint(out / BEST, **best))
    if distributed.is_main():
        result.append(callbacks_lib.CSVLogger(out / "metrics.csv", append=True))
    result.append(callbacks_lib.BackupAndRestore(out / LATEST, delete_checkpoint=False, interrupt=interrupt))
    return result


DEFAULT_MONITOR = {"every": 10, "per_example": True, "moments": True}


def run(config: config_lib.RunConfig, out: str | os.PathLike | None = None, *, resume: bool = False,
        verbose: int = 1, extra_callbacks: Sequence[callbacks_lib.Callback] = ()) -> dict[str, Any]:
    """Train as `config` says, writing the run directory; returns the summary.

    summary.json: train/validation/test loss and metrics of the returned state (the best
    weights when early stopping restores them), epochs run, best epoch, the last epoch's logs.

    A run directory that already holds checkpoints is never overwritten: pass resume=True to
    continue it from its last checkpoint (mid-epoch after a signal), or choose another `out`.
    SIGINT or SIGTERM (main thread) stops training after the current dispatch and raises
    `TrainingInterrupted` once the checkpoint is saved; `exit_code` gives the CLI's status.
    `extra_callbacks` join the config's (a sweep's pruning callback).

    In a multi-process run (`jdl.train.distributed.initialize` first) every process runs this with
    the same config and `out` on a shared file system: all train, evaluate and save checkpoints
    together (Orbax); only process 0 prints and writes config.json, metrics.csv, summary.json and the report.
    """
    main = distributed.is_main()
    verbose = verbose if main else 0
    out = Path(out) if out is not None else Path("runs") / config.name
    has_checkpoint = latest_step(out / LATEST) is not None
    if has_checkpoint and not resume:
        raise FileExistsError(f"{out} already holds a run; use --resume to continue it or --out for a new directory")
    if resume and not has_checkpoint:
        raise FileNotFoundError(f"--resume: no checkpoint to resume in {out / LATEST}")
    if resume:
        saved = config_lib.from_dict(json.loads((out / "config.json").read_text())).to_dict()
        if json.loads(json.dumps(saved)) != json.loads(json.dumps(config.to_dict())):
            raise config_lib.ConfigError(
                f"--resume: the config differs from the one {out} was started with ({out / 'config.json'}); "
                "resume with the same config and overrides"
            )
    trainer, dataset = build(config)
    try:
        if config.train.batch_size is not None:
            sharding.check_batch_size(config.train.batch_size, trainer.mesh, "train.batch_size")
    except ValueError as err:  # before any compile, in every process of a multi-process run
        raise config_lib.ConfigError(str(err)) from None
    x_train, x_test = dataset.x_train, dataset.x_test
    source = None if config.data.packed is None else packed.open_packed(config.data.packed)
    if source is not None and source.shapes["x"][1:] != tuple(np.shape(x_test)[1:]):
        raise config_lib.ConfigError(
            f"data.packed: {config.data.packed} holds examples x of shape {source.shapes['x'][1:]}, but data set "
            f"{config.data.name!r} (the test split) has {tuple(np.shape(x_test)[1:])}; the model must take both")
    if config.data.standardize:
        scaler = data_lib.Standardizer.fit(x_train)
        x_train, x_test = scaler(x_train), scaler(x_test)
    out.mkdir(parents=True, exist_ok=True)
    if main:
        _io.write_json(out / "config.json", config.to_dict())
        _io.write_json(out / "environment.json", environment(config))

    distributed.barrier("jdl-run-start")  # every process has its data: their first collectives start close together
    started = time.perf_counter()
    with stop_on_signals(StopRequest()) as request:
        callbacks = _callbacks(config, out, request) + list(extra_callbacks)
        if verbose:
            print(f"{config.name}: compiling the training step…", flush=True)
        try:
            state, history = trainer.fit(
                x_train if source is None else source, dataset.y_train if source is None else None,
                epochs=config.train.epochs, batch_size=config.train.batch_size,
                validation_split=config.data.validation_split, shuffle=config.train.shuffle,
                callbacks=callbacks, verbose=verbose, seed=config.seed,
                **({} if source is None else {"read_options": sources.ReadOptions(**config.data.read_options)}),
            )
        except SourceMismatch as err:
            raise config_lib.ConfigError(f"data.packed: {config_lib._line(err)}") from None
    seconds = time.perf_counter() - started
    monitor = "val_loss" if "val_loss" in history.history else "loss"
    losses = history.history[monitor]
    best_index = int(np.nanargmin(losses)) if losses else None
    rows = len(x_train) if source is None else len(source)
    split_at = int(np.floor(rows * (1.0 - config.data.validation_split)))
    if source is not None:  # the packed rows are not held in memory: only the validation rows are read back
        x_train, y_train = (sources.read_rows(source, np.arange(split_at, rows))[:2] if split_at < rows
                            else (x_train[:0], dataset.y_train[:0]))
        split_at, dataset = 0, dataset._replace(y_train=y_train)
    summary = {
        "name": config.name,
        "epochs_run": len(history.epoch),
        "best_epoch": history.epoch[best_index] + 1 if best_index is not None else None,  # counted from 1
        "best_monitor": monitor,
        "train": trainer.evaluate(state, x_train[:split_at], dataset.y_train[:split_at]) if split_at else {},
        "validation": (trainer.evaluate(state, x_train[split_at:], dataset.y_train[split_at:])
                       if split_at < len(x_train) else {}),
        "test": trainer.evaluate(state, x_test, dataset.y_test),
        "last_epoch_logs": {k: v[-1] for k, v in history.history.items()},
        "stop_reason": history.stop_reason,
        "train_seconds_this_session": seconds,
        "machine": {"platform": platform.platform(), "backend": jax.default_backend(), "devices": jax.device_count()},
    }
    monitors = [c for c in callbacks if isinstance(c, callbacks_lib.GradientMonitor)]
    if main:
        _io.write_json(out / "summary.json", summary)
        _io.write_json(out / "model.json", report_lib.model_table(state.params, monitors[0].layers if monitors else None))
        if monitors:
            _io.write_json(out / "monitor.json", monitors[0].to_dict())
        # A host copy of the (replicated) state: the report's predictions then run on process 0's own device.
        shown = jax.device_get(state) if jax.process_count() > 1 else state
        report_lib.training_report(out, trainer=trainer, state=shown,
                                   data=dataset._replace(x_train=x_train, x_test=x_test)).save(out)
    distributed.barrier("jdl-run-end")
    return summary
