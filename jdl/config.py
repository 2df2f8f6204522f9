"""TOML run configs -> frozen dataclasses, with `--set section.key=value` overrides.

A config has a top-level `name` and `seed` and the tables [data], [model], [train] and
[callbacks]. Unknown keys are errors that name the key and list the valid ones.

    name = "digits_mlp"
    seed = 0
    [data]        name = "digits", options = {...}, standardize = true, validation_split = 0.1
    [model]       name = "mlp", and the model's own fields (hidden, activation, ...)
    [train]       loss, optimizer, learning_rate, schedule, optimizer_options, epochs,
                  batch_size, metrics, shuffle
    [callbacks]   early_stopping = {...}, reduce_lr_on_plateau = {...}, model_checkpoint = {...},
                  gradient_monitor = {every = 10, per_example = true, moments = false} (on by default)
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config that cannot be used: unknown key, wrong type, bad override."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data set to load and how to prepare it."""

    name: str = "digits"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    standardize: bool = True
    validation_split: float = 0.1


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A model from jdl.models by name, and its constructor fields."""

    name: str = "mlp"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Loss, optimizer, schedule and the fit loop."""

    loss: str = "sparse_categorical_crossentropy"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    schedule: Mapping[str, Any] | None = None
    optimizer_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 10
    batch_size: int | None = 32
    metrics: tuple[str, ...] = ("accuracy",)
    shuffle: bool = True


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A whole batch run."""

    name: str = "run"
    seed: int = 0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    callbacks: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON-able data (what config.json holds)."""
        model = {"name": self.model.name, **self.model.options}
        return {
            "name": self.name,
            "seed": self.seed,
            "data": dataclasses.asdict(self.data),
            "model": model,
            "train": {**dataclasses.asdict(self.train), "metrics": list(self.train.metrics)},
            "callbacks": {k: dict(v) for k, v in self.callbacks.items()},
        }


CALLBACKS = ("early_stopping", "reduce_lr_on_plateau", "model_checkpoint", "terminate_on_nan", "tensorboard",
             "gradient_monitor")
_TOP = ("name", "seed", "data", "model", "train", "callbacks")


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _unknown(keys: Sequence[str], valid: Sequence[str], where: str) -> None:
    unknown = [k for k in keys if k not in valid]
    if unknown:
        raise ConfigError(f"unknown key {where}{unknown[0]!r}; valid keys{' in [' + where.rstrip('.') + ']' if where else ''}: {', '.join(valid)}")


def _typed(value: Any, field: dataclasses.Field, where: str) -> Any:
    """Check a value against a dataclass field's declared type (loosely: str, int, float, bool, list, table)."""
    kind = str(field.type)
    name = f"{where}{field.name}"
    if value is None and "None" in kind:
        return None
    if kind.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
    elif kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
    elif kind.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        value = float(value)
    elif kind.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
    elif kind.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings, got {value!r}")
        value = tuple(value)
    elif kind.startswith("Mapping"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a table {{...}}, got {value!r}")
        value = dict(value)
    return value


def _section(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{where.rstrip('.')}] must be a table, got {table!r}")
    fields = _fields(cls)
    _unknown(list(table), list(fields), where)
    return cls(**{k: _typed(v, fields[k], where) for k, v in table.items()})


def from_dict(raw: Mapping[str, Any]) -> RunConfig:
    """Validate a parsed TOML document and build the RunConfig."""
    _unknown(list(raw), list(_TOP), "")
    model = dict(raw.get("model", {}))
    if not isinstance(raw.get("model", {}), Mapping):
        raise ConfigError("[model] must be a table")
    model_name = model.pop("name", "mlp")
    _check_model_options(model_name, model)
    callbacks = raw.get("callbacks", {})
    if not isinstance(callbacks, Mapping):
        raise ConfigError("[callbacks] must be a table")
    _unknown(list(callbacks), list(CALLBACKS), "callbacks.")
    for key, options in callbacks.items():
        if not isinstance(options, Mapping):
            raise ConfigError(f"callbacks.{key} must be a table of the callback's arguments, got {options!r}")
    name = raw.get("name", "run")
    seed = raw.get("seed", 0)
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(f"name must be a non-empty string without '/', got {name!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return RunConfig(
        name=name,
        seed=seed,
        data=_section(DataConfig, raw.get("data", {}), "data."),
        model=ModelConfig(name=model_name, options=model),
        train=_section(TrainConfig, raw.get("train", {}), "train."),
        callbacks={k: dict(v) for k, v in callbacks.items()},
    )


def _check_model_options(name: str, options: Mapping[str, Any]) -> None:
    from jdl import models

    try:
        cls = models.get(name)
    except ValueError as err:
        raise ConfigError(f"model.name: {err}") from None
    valid = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("parent", "name")]
    _unknown(list(options), ["name", *valid], "model.")


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.learning_rate=0.01' -> (['train', 'learning_rate'], 0.01); values are TOML, else strings."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value (e.g. train.learning_rate=0.01), got {text!r}")
    key, value = text.split("=", 1)
    path = [part for part in key.strip().split(".")]
    if not all(path):
        raise ConfigError(f"--set key must be dotted names like train.epochs, got {key!r}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return path, parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the raw config with every `section.key=value` override applied."""
    result = json.loads(json.dumps(raw))
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a table")
            node = child
        node[path[-1]] = value
    return result


def load(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a TOML config file, apply overrides and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return from_dict(apply_overrides(raw, overrides))
