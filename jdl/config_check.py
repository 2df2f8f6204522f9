"""Every name in a run config resolved and its options checked before anything is built or any data is read (`check`)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jdl import _checks
from jdl.config_schema import ConfigError, DataConfig, RunConfig, _unknown


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
