"""A run config's tables as frozen dataclasses (`RunConfig` and its sections), `ConfigError`, and the
checks of a table's keys and value types against its dataclass's fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
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
    packed: str | None = None
    read_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


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
    steps_per_execution: int | None = None
    precision: str = "float32"
    accumulate: int = 1


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
