"""TOML run configs -> frozen dataclasses, with `--set section.key=value` overrides.

A config has a top-level `name` and `seed` and the tables [data], [model], [train] and
[callbacks]. Unknown keys are errors that name the key and list the valid ones. `load` then
resolves every name (data set, model, loss, metrics, optimizer, schedule, callbacks) and checks
their options before anything is built or any data is read (`check`).

    name = "digits_mlp"
    seed = 0
    [data]        name = "digits", options = {...}, standardize = true, validation_split = 0.1,
                  packed = "DIR" (train on a `jdl data pack` directory, read by Grain; the data set
                  still gives the test split), read_options = {threads = 4, workers = 0, prefetch = N}
    [model]       name = "mlp", and the model's own fields (hidden, activation, ...)
    [train]       loss, optimizer, learning_rate, schedule, optimizer_options, epochs,
                  batch_size, metrics, shuffle, steps_per_execution (steps per dispatch; a
                  signal stops a run at the end of the current dispatch), precision
                  ("float32", "bfloat16" or "float16": the compute dtype), accumulate (one
                  optimizer update per k batches, optax.MultiSteps)
    [callbacks]   early_stopping = {...}, reduce_lr_on_plateau = {...}, model_checkpoint = {...},
                  gradient_monitor = {every = 10, per_example = true, moments = false} (on by default)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jdl import _checks


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
    _unknown(list(callbacks), sorted(_callback_classes()[0]), "callbacks.")
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

    cls = _call("model.name", models.get, name)
    accepted, _, anything = _keywords(cls)
    if not anything:
        _unknown(list(options), ["name", *accepted], "model.")


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
    """Read a TOML config file, apply overrides, validate it and `check` every name in it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    result = apply_overrides(raw, overrides)
    notice = _switch_data_set(raw, result, overrides, path)
    config = check(from_dict(result))
    if notice:
        print(notice, file=sys.stderr)
    return config


def _switch_data_set(raw: Mapping[str, Any], result: dict[str, Any], overrides: Sequence[str], source: Path) -> str:
    """An override changed data.name: drop the file's data.options the new loader does not take; returns a notice.

    Options given with --set (data.options.KEY=... or a whole data.options={...}) are kept, and checked later.
    """
    before, after = raw.get("data", {}), result.get("data", {})
    if not isinstance(before, Mapping) or not isinstance(after, dict) or not isinstance(after.get("options"), dict):
        return ""
    old, new = before.get("name", DataConfig.name), after.get("name", DataConfig.name)
    if not isinstance(old, str) or not isinstance(new, str) or old.lower() == new.lower():
        return ""
    paths = [parse_override(text)[0] for text in overrides]
    explicit = {p[2] for p in paths if p[:2] == ["data", "options"] and len(p) > 2}
    accepted, _, anything = _keywords(_loader(new))
    dropped = [k for k in after["options"] if k not in explicit and k not in accepted and not anything]
    if ["data", "options"] in paths or not dropped:
        return ""
    for key in dropped:
        del after["options"][key]
    return (f"jdl: note: data.name is {new!r} ({source} has {old!r}): dropped data.options {', '.join(dropped)}, "
            f"which data set {new!r} does not take (it takes {', '.join(accepted) or 'no options'})")


# -- every name resolved and checked before anything is built -------------------------------------


def check(config: RunConfig) -> RunConfig:
    """Resolve every name in `config` and check its options; returns `config` unchanged.

    No data is read and nothing is traced: the model, optimizer, schedule and callbacks are only
    constructed. A mistake is a one-line ConfigError naming the key, the bad value and the valid
    choices, closest matches first.
    """
    from jdl import losses, metrics, models, optim

    data, train = config.data, config.train
    loader = _loader(data.name)
    _options("data.options", f"data set {data.name!r}", loader, data.options)
    if _keywords(loader)[1].get("path", ...) is None and "path" not in data.options:
        raise ConfigError(f"data.options.path is missing: data set {data.name!r} reads local files (jdl never "
                          "downloads); give it with --set data.options.path=DIR")
    _in_range("data.validation_split", data.validation_split, 0.0, 1.0)
    if data.packed is not None:
        _check_packed(data)
    elif data.read_options:
        raise ConfigError("data.read_options: applies to data.packed (a packed data set read while training); "
                          "set data.packed or remove it")
    cls = _call("model.name", models.get, config.model.name)
    first = _options("model", f"model {config.model.name!r}", cls, config.model.options)
    _build("model", lambda **kw: cls(**{k: frozen(v) for k, v in kw.items()}), config.model.options, first)
    _call("train.loss", losses.get, train.loss)
    for name in train.metrics:
        _call("train.metrics", metrics.get, name)
    _in_range("train.epochs", train.epochs, 1)
    _in_range("train.batch_size", 1 if train.batch_size is None else train.batch_size, 1)
    if train.steps_per_execution is not None:
        _in_range("train.steps_per_execution", train.steps_per_execution, 1)
    from jdl.train import precision

    _call("train.precision", precision.check, train.precision)
    _in_range("train.accumulate", train.accumulate, 1)
    _call("train.optimizer", optim.get, train.optimizer)
    learning_rate: Any = train.learning_rate
    if train.schedule is not None:
        schedule = dict(train.schedule)
        if "name" not in schedule:
            raise ConfigError(f"train.schedule.name is missing; valid names: {', '.join(sorted(_schedules()))}")
        name = schedule.pop("name")
        fn = _call("train.schedule.name", _checks.lookup, "schedule", name, _schedules())
        first = _options("train.schedule", f"schedule {name!r}", fn, schedule, skip=1)
        learning_rate = _build("train.schedule", functools.partial(fn, train.learning_rate), schedule, first)
    factory = getattr(optim, train.optimizer.lower())
    _options("train.optimizer_options", f"optimizer {train.optimizer!r}", factory, train.optimizer_options,
             fixed=("learning_rate",))
    rate_key = "train.schedule" if train.schedule is not None else "train.learning_rate"
    _build("train.optimizer_options", functools.partial(optim.get, train.optimizer),
           {"learning_rate": learning_rate, **train.optimizer_options}, keys={"learning_rate": rate_key})
    classes, fixed = _callback_classes()
    _unknown(list(config.callbacks), list(classes), "callbacks.")
    for name, kwargs in config.callbacks.items():
        given = fixed.get(name, {})
        _options(f"callbacks.{name}", f"callback {name!r}", classes[name], kwargs, fixed=tuple(given))
        _build(f"callbacks.{name}", functools.partial(classes[name], **given), kwargs)
    return config


def _check_packed(data: DataConfig) -> None:
    """ConfigError naming data.packed unless it is a readable packed data set usable as configured."""
    from jdl.data import packed

    try:
        packed.read_manifest(data.packed)
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"data.packed: {_line(err)}") from None
    from jdl.data import sources

    _options("data.read_options", "Grain read", sources.ReadOptions, data.read_options)
    _build("data.read_options", sources.ReadOptions, data.read_options)
    if data.standardize:
        raise ConfigError("data.packed: the rows are read while training, so jdl cannot standardize them; "
                          "set data.standardize = false (and standardize the arrays before jdl data pack)")


def _schedules() -> Mapping[str, Callable[..., Any]]:
    """Schedule name -> factory(lr0, **options), the table train.schedule.name picks from."""
    from jdl.optim import schedules

    return schedules.SCHEDULES


def _callback_classes() -> tuple[Mapping[str, Callable[..., Any]], dict[str, dict[str, Any]]]:
    """Config name -> callback class (`jdl.callbacks.REGISTRY`), and the arguments the run sets itself."""
    from jdl import callbacks

    return callbacks.REGISTRY, {"model_checkpoint": {"filepath": "OUT/checkpoints/best"},
                                "tensorboard": {"log_dir": "OUT/tensorboard"}}


def frozen(value: Any) -> Any:
    """TOML arrays as tuples, so the model built from a config is hashable like one written in Python."""
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: frozen(v) for k, v in value.items()}
    return value


def _loader(name: Any) -> Callable[..., Any]:
    """The registered loader of data set `name`; a ConfigError naming data.name when there is none."""
    from jdl.data import datasets

    return _call("data.name", datasets.loader, name)


def _line(err: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(err).split())


def _call(key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """fn(*args, **kwargs); its ValueError or TypeError becomes a ConfigError naming `key`."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}: {_line(err)}") from None


def _keywords(fn: Callable[..., Any], skip: int = 0) -> tuple[list[str], dict[str, Any], bool]:
    """fn's keyword parameters after the first `skip` (Flax's parent/name left out), their defaults, and **kwargs."""
    params = list(inspect.signature(fn).parameters.values())[skip:]
    if isinstance(fn, type) and dataclasses.is_dataclass(fn):
        params = [p for p in params if p.name not in ("parent", "name")]
    keywordable = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    named = [p for p in params if p.kind in keywordable]
    defaults = {p.name: p.default for p in named if p.default is not inspect.Parameter.empty}
    return [p.name for p in named], defaults, any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _options(where: str, kind: str, fn: Callable[..., Any], options: Mapping[str, Any], *, skip: int = 0,
             fixed: Sequence[str] = ()) -> list[str]:
    """ConfigError for an option fn does not take, one in `fixed` (the run sets it) or a needed one missing.

    Returns the keywords fn needs (those without a default)."""
    accepted, defaults, anything = _keywords(fn, skip)
    valid = [k for k in accepted if k not in fixed]
    for key in options:
        if key in fixed:
            raise ConfigError(f"{where}.{key}: jdl train sets {key} itself; remove it")
        if key not in valid and not anything:
            _call(f"{where}.{key}", _checks.lookup, f"{kind} option", key, dict.fromkeys(valid))
            raise ConfigError(f"{where}.{key}: option names are lowercase; did you mean {key.lower()!r}?")
    needed = [k for k in valid if k not in defaults]
    missing = [k for k in needed if k not in options]
    if missing:
        raise ConfigError(f"{where}.{missing[0]} is missing: {kind} needs {', '.join(needed)}")
    return needed


def _build(where: str, build: Callable[..., Any], options: Mapping[str, Any], first: Sequence[str] = (),
           keys: Mapping[str, str] | None = None) -> Any:
    """build(**options); on failure a ConfigError naming the option that fails first when added one at a time
    after the needed ones (`first`). `keys` maps an option to the config key to name (default where.OPTION)."""
    mistakes = (ValueError, TypeError, ImportError)
    try:
        return build(**options)
    except mistakes as err:
        error = err
    added = {k: options[k] for k in first}
    for key in [None, *(k for k in options if k not in first)]:
        if key is not None:
            added[key] = options[key]
        try:
            build(**added)
        except mistakes as err:
            name = where if key is None else (keys or {}).get(key, f"{where}.{key}")
            raise ConfigError(f"{name}: {_line(err)}") from None
    raise ConfigError(f"{where}: {_line(error)}") from None


def _in_range(key: str, value: Any, low: float, high: float | None = None) -> None:
    """ConfigError unless low <= value (< high): the ranges Trainer.fit accepts, checked before anything runs."""
    if value < low or (high is not None and not value < high):
        wanted = f">= {low}" if high is None else f"in [{low}, {high})"
        raise ConfigError(f"{key} must be {wanted}, got {value!r}")
