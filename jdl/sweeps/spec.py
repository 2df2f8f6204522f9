"""Sweep files: a base run config, a search space over its keys, a method and an objective.

    name = "digits_sweep"
    base = "digits_mlp.toml"              # a jdl train config, relative to this file
    set = ["train.epochs=20"]             # fixed overrides of the base (optional)
    method = "random"                     # grid | random | optuna
    trials = 30                           # random and optuna (grid: every combination)
    seed = 0                              # random's draws and optuna's sampler
    objective = "val_loss, minimize"      # a per-epoch log of the run; its best epoch is the trial's value
    pruner = { name = "median", warmup_epochs = 2 }   # optuna only: median | successive_halving | none
    population = 16                       # grid/random: train up to 16 trials at once as one vmapped population
    [space]
    "train.learning_rate" = { log_uniform = [1e-4, 1e-1] }
    "seed" = [0, 1]
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jdl import config as config_lib
from jdl.config import ConfigError
from jdl.sweeps import space as space_lib

METHODS = ("grid", "random", "optuna")
PRUNERS = {"none": (), "median": ("warmup_epochs", "startup_trials"),
           "successive_halving": ("min_epochs", "reduction_factor")}
_KEYS = ("name", "base", "set", "method", "trials", "seed", "objective", "pruner", "population", "space")


@dataclasses.dataclass(frozen=True)
class Objective:
    """The per-epoch log a trial is judged by (its best epoch's value) and whether lower is better."""

    metric: str
    direction: str

    def best(self, values: Sequence[float]) -> float | None:
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return None
        return min(finite) if self.direction == "minimize" else max(finite)

    def better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "minimize" else a > b


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A parsed, validated sweep file (see the module docstring)."""

    name: str
    path: Path
    base: Path
    overrides: tuple[str, ...]
    method: str
    trials: int
    seed: int
    objective: Objective
    pruner: Mapping[str, Any]
    dimensions: tuple[space_lib.Dimension, ...]
    population: int | None = None  # the most trials trained together as one vmapped population
    members: tuple[str, ...] = ()  # the searched keys a population's members may differ in

    def points(self) -> list[dict[str, Any]]:
        """The trials' parameters of a grid or random sweep, trial k at index k (optuna asks as it goes)."""
        if self.method == "grid":
            return space_lib.grid(self.dimensions)
        return space_lib.random(self.dimensions, self.trials, self.seed)

    def trial_overrides(self, params: Mapping[str, Any], base_name: str) -> list[str]:
        """The `--set` overrides that make trial `params` from the base config, its run name included."""
        name = f"{base_name} {space_lib.label(params)}"
        return [*self.overrides, *(f"{k}={toml_value(v)}" for k, v in params.items()), f"name={toml_value(name)}"]

    def trial_config(self, params: Mapping[str, Any]) -> config_lib.RunConfig:
        return config_lib.load(self.base, self.trial_overrides(params, self.base_config().name))

    def base_config(self) -> config_lib.RunConfig:
        return config_lib.load(self.base, self.overrides)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sweep_file": str(self.path), "base": str(self.base), "set": list(self.overrides),
                "method": self.method, "trials_requested": self.trials, "seed": self.seed,
                "objective": dataclasses.asdict(self.objective), "pruner": dict(self.pruner),
                "space": {d.key: d.to_dict() for d in self.dimensions},
                **({"population": {"size": self.population, "members": list(self.members)}} if self.population else {})}


def toml_value(value: Any) -> str:
    """A Python value as the TOML text `--set` parses back to it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"a searched value must be a number, string, boolean, list or table, got {value!r}")


def _objective(raw: Any) -> Objective:
    if isinstance(raw, str):
        parts = [p.strip() for p in raw.split(",")]
        metric, direction = parts[0], (parts[1] if len(parts) > 1 else None)
        if len(parts) > 2:
            raise ConfigError(f"objective must read 'METRIC, minimize' or 'METRIC, maximize', got {raw!r}")
    elif isinstance(raw, Mapping):
        config_lib._unknown(list(raw), ["metric", "direction"], "objective.")
        metric, direction = raw.get("metric"), raw.get("direction")
    else:
        raise ConfigError(f"objective must be 'METRIC, minimize|maximize' (e.g. 'val_loss, minimize'), got {raw!r}")
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"objective needs a metric name, e.g. 'val_loss, minimize', got {raw!r}")
    if direction is None:
        if "loss" not in metric and "error" not in metric:
            raise ConfigError(f"objective {metric!r}: say 'minimize' or 'maximize' (e.g. '{metric}, maximize')")
        direction = "minimize"
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"objective direction must be 'minimize' or 'maximize', got {direction!r}")
    return Objective(metric, direction)


def _pruner(raw: Any, method: str) -> dict[str, Any]:
    if raw is None:
        return {"name": "none"}
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, Mapping) or raw.get("name") not in PRUNERS:
        raise ConfigError(f"pruner must be one of {', '.join(PRUNERS)} (e.g. pruner = {{ name = \"median\" }}), got {raw!r}")
    config_lib._unknown(list(raw), ["name", *PRUNERS[raw["name"]]], "pruner.")
    for key, value in raw.items():
        if key != "name" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"pruner.{key} must be a non-negative integer, got {value!r}")
    if raw["name"] != "none" and method != "optuna":
        raise ConfigError(f"pruner {raw['name']!r} needs method = 'optuna' (grid and random sweeps run every trial to its end)")
    return dict(raw)


def logged_metrics(config: config_lib.RunConfig) -> list[str]:
    """The per-epoch logs a run of `config` writes to metrics.csv (loss, metrics, their val_ twins)."""
    names = ["loss", *config.train.metrics]
    if config.data.validation_split > 0:
        names += [f"val_{n}" for n in names]
    return names


def load(path: str | Path) -> Sweep:
    """Read and validate a sweep file; every searched value is checked against the base config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    config_lib._unknown(list(raw), list(_KEYS), "")
    for key in ("base", "space", "objective"):
        if key not in raw:
            raise ConfigError(f"{path}: missing key {key!r} (a sweep names base, objective and [space])")
    base = raw["base"]
    if not isinstance(base, str):
        raise ConfigError(f"base must be the path of a jdl train config, got {base!r}")
    base_path = (path.parent / base) if not Path(base).is_absolute() else Path(base)
    if not base_path.is_file():
        raise ConfigError(f"base: config file {str(base_path)!r} does not exist")
    overrides = raw.get("set", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"set must be a list of 'section.key=value' strings, got {overrides!r}")
    method = raw.get("method", "grid")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    dimensions = space_lib.parse(raw["space"])
    trials = raw.get("trials")
    if method == "grid":
        if trials is not None:
            raise ConfigError("trials: a grid sweep runs every combination of [space]; drop trials or use method = 'random'")
        trials = len(space_lib.grid(dimensions))
    elif isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials must be a positive integer for method {method!r}, got {trials!r}")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(f"name must be a non-empty string without '/', got {name!r}")
    sweep = Sweep(name=name, path=path, base=base_path, overrides=tuple(overrides), method=method, trials=trials,
                  seed=seed, objective=_objective(raw["objective"]), pruner=_pruner(raw.get("pruner"), method),
                  dimensions=dimensions)
    _check_against_base(sweep)
    if "population" in raw:
        from jdl.sweeps import population

        size, members = population.parse(raw["population"], sweep)
        sweep = dataclasses.replace(sweep, population=size, members=members)
    return sweep


def _check_against_base(sweep: Sweep) -> None:
    """Every searched key exists in the base config and every value (or range end) is valid there."""
    base = sweep.base_config()
    for dim in sweep.dimensions:
        for value in dim.corners():
            try:
                config_lib.load(sweep.base, [*sweep.overrides, f"{dim.key}={toml_value(value)}"])
            except ConfigError as err:
                raise ConfigError(f"space.{dim.key} = {value!r}: {err}") from None
    logged = logged_metrics(base)
    if sweep.objective.metric not in logged:
        raise ConfigError(f"objective: {sweep.objective.metric!r} is never logged by the base config; "
                          f"its runs log {', '.join(logged)}")
