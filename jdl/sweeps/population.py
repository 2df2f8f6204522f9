"""Population sweeps (`population = P` in a sweep file): trials that differ only in numbers train as one population.

    population = 16                                            # members: every searched member key
    population = { size = 16, members = ["train.learning_rate", "seed"] }

Member keys are the config keys a population member may differ in (`MEMBER_KEYS`: the seed, the
learning rate unless it is a schedule, and optimizer options momentum, weight_decay, l2,
clipnorm, clipvalue). Trials are grouped by their values of the other searched keys (e.g. the
initializer: it changes the initial parameters' function and so the model, not a number), and
each group trains in batches of at most P trials by `Trainer.fit(..., population=...)`. Every
trial still gets its own ordinary run directory (metrics.csv, checkpoints, monitor.json, report),
reproducible alone by the `jdl train` command in its trial.json. A trial interrupted mid-run is
continued alone, from its own checkpoint, by `--resume`.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jdl import _io
from jdl import config as config_lib
from jdl import runs as runs_lib
from jdl.config import ConfigError
from jdl.diagnostics import report as report_lib
from jdl.sweeps import runner, store
from jdl.train.checkpoint import latest_step
from jdl.train.population import Population, not_a_member_setting

OPTIONS = ("momentum", "weight_decay", "l2", "clipnorm", "clipvalue")
MEMBER_KEYS = {"seed": "seed", "train.learning_rate": "learning_rate",
               **{f"train.optimizer_options.{name}": name for name in OPTIONS}}
OFF = {"momentum": 0.0, "weight_decay": 0.0, "l2": 0.0, "clipnorm": None, "clipvalue": None}


def parse(raw: Any, sweep: Any) -> tuple[int, tuple[str, ...]]:
    """(size, member keys) of a sweep file's `population`; ConfigError naming the key that cannot be a member."""
    members = None
    if isinstance(raw, Mapping):
        config_lib._unknown(list(raw), ["size", "members"], "population.")
        size, members = raw.get("size"), raw.get("members")
    else:
        size = raw
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"population must be a positive integer (the most trials trained at once as one vmapped "
                          f"population), e.g. population = 16, got {size!r}")
    if sweep.method == "optuna":
        raise ConfigError("population: an optuna sweep asks for its trials one at a time; train populations with "
                          "method = 'grid' or 'random'")
    searched = [d.key for d in sweep.dimensions]
    vmappable = set(MEMBER_KEYS)
    if sweep.base_config().train.schedule is not None:
        vmappable.discard("train.learning_rate")
    if members is None:
        return size, tuple(k for k in searched if k in vmappable)
    if not isinstance(members, list) or not all(isinstance(k, str) for k in members):
        raise ConfigError(f"population.members must be a list of searched keys, got {members!r}")
    for key in members:
        if key not in searched:
            raise ConfigError(f"population.members: {key!r} is not a key of [space] ({', '.join(searched)})")
        if key == "train.learning_rate" and key not in vmappable:
            raise ConfigError("population.members: 'train.learning_rate' is a schedule in the base config (train."
                              "schedule), which is not a number members can differ in; drop it from members")
        if key not in vmappable:
            raise ConfigError(" ".join(str(not_a_member_setting(key, "population.members:")).split()))
    return size, tuple(members)


def member_settings(configs: list[config_lib.RunConfig]) -> list[dict[str, Any]]:
    """Each config's seed, learning rate and optimizer options as population member settings (off where unset)."""
    used = [name for name in OPTIONS if any(name in c.train.optimizer_options for c in configs)]
    return [{"seed": c.seed, **({"learning_rate": c.train.learning_rate} if c.train.schedule is None else {}),
             **{name: c.train.optimizer_options.get(name, OFF[name]) for name in used}} for c in configs]


def shared_part(config: config_lib.RunConfig) -> str:
    """The config without its name and member settings, as JSON: equal for configs one population can train."""
    body = config.to_dict()
    body.pop("name")
    body.pop("seed")
    if config.train.schedule is None:
        body["train"].pop("learning_rate")
    body["train"]["optimizer_options"] = {k: v for k, v in body["train"]["optimizer_options"].items()
                                          if k not in OPTIONS}
    return json.dumps(body, sort_keys=True, default=str)


def batches(sweep: Any, numbers: list[int], points: list[dict[str, Any]]) -> list[list[int]]:
    """The trials grouped by their values of the searched keys that are not member keys, in batches of ≤ P."""
    groups: dict[str, list[int]] = {}
    for number in numbers:
        fixed = {k: v for k, v in points[number].items() if k not in sweep.members}
        groups.setdefault(json.dumps(fixed, sort_keys=True, default=str), []).append(number)
    return [group[i:i + sweep.population] for group in groups.values()
            for i in range(0, len(group), sweep.population)]


def run_batches(sweep: Any, out: Path, points: list[dict[str, Any]], progress: Callable[[dict], None]) -> int:
    """Claim and run the unfinished trials: interrupted ones alone (from their checkpoints), the others as populations."""
    pending = [k for k in range(len(points))
               if (store.read_trial(out, k) or {}).get("state") not in store.FINISHED]
    resumed = [k for k in pending if latest_step(store.trial_dir(out, k) / runs_lib.LATEST) is not None]
    ran = 0
    for batch in [[k] for k in resumed] + batches(sweep, [k for k in pending if k not in resumed], points):
        claimed = [k for k in batch if store.claim(out, k)]
        finished = [k for k in claimed if (store.read_trial(out, k) or {}).get("state") in store.FINISHED]
        for k in finished:
            store.release(out, k)
        claimed = [k for k in claimed if k not in finished]
        if not claimed:
            continue
        try:
            if len(claimed) == 1:
                records = [runner.run_trial(sweep, out, claimed[0], points[claimed[0]])]
            else:
                records = run_population(sweep, out, claimed, points)
        finally:
            for k in claimed:
                store.release(out, k)
        for record in records:
            progress(record)
        ran += len(records)
    return ran


def run_population(sweep: Any, out: Path, numbers: list[int], points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials `numbers` trained as one population, each into its own run directory; returns their records."""
    records = [runner.open_record(sweep, out, k, points[k]) for k in numbers]
    started = time.perf_counter()
    try:
        configs = [sweep.trial_config(points[k]) for k in numbers]
        summaries = train(configs, [store.trial_dir(out, k) for k in numbers])
    except runner.TRIAL_ERRORS as err:
        return [runner.fail_record(out, r, err, time.perf_counter() - started) for r in records]
    share = (time.perf_counter() - started) / len(numbers)
    for record in records:
        record["population"] = list(numbers)
    return [runner.close_record(sweep, out, r, s, share) for r, s in zip(records, summaries)]


def train(configs: list[config_lib.RunConfig], outs: list[Path], verbose: int = 0) -> list[dict[str, Any]]:
    """`runs.run` for configs that differ only in member settings, trained as one population; their summaries."""
    shared = {shared_part(c) for c in configs}
    if len(shared) > 1:
        raise ValueError("a population's trials may differ only in their seed, learning rate and optimizer numbers; "
                         "these configs differ in more")
    base = configs[0]
    trainer, dataset = runs_lib.build(base)
    x_train, x_test = dataset.x_train, dataset.x_test
    if base.data.standardize:
        from jdl import data as data_lib

        scaler = data_lib.Standardizer.fit(x_train)
        x_train, x_test = scaler(x_train), scaler(x_test)
    for config, out in zip(configs, outs):
        out.mkdir(parents=True, exist_ok=True)
        _io.write_json(out / "config.json", config.to_dict())
        _io.write_json(out / "environment.json", {**runs_lib.environment(config), "population": len(configs)})
    started = time.perf_counter()
    with runs_lib.stop_on_signals(runs_lib.StopRequest()) as request:
        callbacks = [runs_lib._callbacks(c, o, request) for c, o in zip(configs, outs)]
        states, histories = trainer.fit(
            x_train, dataset.y_train, epochs=base.train.epochs, batch_size=base.train.batch_size,
            validation_split=base.data.validation_split, shuffle=base.train.shuffle, callbacks=callbacks,
            verbose=verbose, seed=base.seed, population=Population.of(member_settings(configs)))
    seconds = time.perf_counter() - started
    data = dataset._replace(x_train=x_train, x_test=x_test)
    return [finish(c, o, runs_lib.build(c)[0] if k else trainer, data, s, h, cb, seconds)
            for k, (c, o, s, h, cb) in enumerate(zip(configs, outs, states, histories, callbacks))]


def finish(config: config_lib.RunConfig, out: Path, trainer: Any, data: Any, state: Any, history: Any,
           callbacks: list[Any], seconds: float) -> dict[str, Any]:
    """A member's summary.json, model.json, monitor.json and report, as `runs.run` writes a lone run's."""
    from jdl import callbacks as callbacks_lib

    monitor = "val_loss" if "val_loss" in history.history else "loss"
    losses = history.history[monitor]
    best_index = int(np.nanargmin(losses)) if losses else None
    split_at = int(np.floor(len(data.x_train) * (1.0 - config.data.validation_split)))
    x_train, y_train = data.x_train, data.y_train
    summary = {
        "name": config.name,
        "epochs_run": len(history.epoch),
        "best_epoch": history.epoch[best_index] + 1 if best_index is not None else None,
        "best_monitor": monitor,
        "train": trainer.evaluate(state, x_train[:split_at], y_train[:split_at]),
        "validation": (trainer.evaluate(state, x_train[split_at:], y_train[split_at:])
                       if split_at < len(x_train) else {}),
        "test": trainer.evaluate(state, data.x_test, data.y_test),
        "last_epoch_logs": {k: v[-1] for k, v in history.history.items()},
        "stop_reason": history.stop_reason,
        "train_seconds_this_session": seconds,
        "population_seconds": seconds,
        "machine": {"platform": platform.platform(), "backend": jax.default_backend(), "devices": jax.device_count()},
    }
    _io.write_json(out / "summary.json", summary)
    monitors = [c for c in callbacks if isinstance(c, callbacks_lib.GradientMonitor)]
    _io.write_json(out / "model.json", report_lib.model_table(state.params, monitors[0].layers if monitors else None))
    if monitors:
        _io.write_json(out / "monitor.json", monitors[0].to_dict())
    report_lib.training_report(out, trainer=trainer, state=state, data=data).save(out)
    return summary
