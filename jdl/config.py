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

import json
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jdl.config_check import (  # noqa: F401  (re-exported)
    _call,
    _callback_classes,
    _keywords,
    _line,
    _loader,
    check,
    frozen,
)
from jdl.config_schema import (  # noqa: F401  (re-exported)
    ConfigError,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    _section,
    _unknown,
)

_TOP = ("name", "seed", "data", "model", "train", "callbacks")


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
