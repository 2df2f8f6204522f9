"""Search spaces over config keys: a grid of values, `uniform`, `log_uniform`, `int` ranges and `choice`.

    [space]
    "train.learning_rate" = { log_uniform = [1e-4, 1e-1] }   # x = exp(U[ln a, ln b])
    "train.batch_size" = { int = [16, 128] }                   # x ~ U{a, ..., b}
    "model.dropout" = { uniform = [0.0, 0.5] }                 # x ~ U[a, b]
    "model.kernel_init" = { choice = ["he_normal", "glorot_uniform"] }
    "seed" = [0, 1, 2]                                          # a list: grid values (a choice for random/optuna)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jdl.config import ConfigError

KINDS = ("grid", "uniform", "log_uniform", "int", "choice")


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched config key: kind in KINDS, `values` (grid/choice) or `low`/`high` (ranges)."""

    key: str
    kind: str
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0

    @property
    def discrete(self) -> bool:
        return self.kind in ("grid", "choice")

    def sample(self, rng: np.random.Generator) -> Any:
        """One value drawn as the kind says (choice/grid: uniform over values)."""
        if self.discrete:
            return self.values[int(rng.integers(len(self.values)))]
        if self.kind == "uniform":
            return float(rng.uniform(self.low, self.high))
        if self.kind == "log_uniform":
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return int(rng.integers(int(self.low), int(self.high) + 1))

    def corners(self) -> tuple[Any, ...]:
        """Every value a grid dimension can take, or a range's two ends (what validation checks)."""
        if self.discrete:
            return self.values
        if self.kind == "int":
            return (int(self.low), int(self.high))
        return (float(self.low), float(self.high))

    def to_dict(self) -> dict[str, Any]:
        if self.discrete:
            return {"kind": self.kind, "values": list(self.values)}
        return {"kind": self.kind, "low": self.low, "high": self.high}


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables -> dotted keys; a leaf is a list or a table with one key naming a kind."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and not (len(value) == 1 and next(iter(value)) in KINDS):
            if not value:
                raise ConfigError(f"space.{dotted} is an empty table; give a list of values or one of "
                                  f"{{uniform, log_uniform, int, choice}} = ...")
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"space.{key}: range bounds must be finite numbers, got {value!r}")
    return float(value)


def dimension(key: str, spec: Any) -> Dimension:
    """A Dimension from one `[space]` entry; a ConfigError naming the key for anything malformed."""
    if isinstance(spec, list):
        kind, values = "grid", spec
    elif isinstance(spec, Mapping) and len(spec) == 1 and next(iter(spec)) in KINDS:
        kind, values = next(iter(spec.items()))
    else:
        raise ConfigError(f"space.{key} must be a list of values or one of {{uniform, log_uniform, int, choice}} = ..., "
                          f"got {spec!r}")
    if kind in ("grid", "choice"):
        if not isinstance(values, list) or not values:
            raise ConfigError(f"space.{key}: {'a grid' if kind == 'grid' else 'choice'} needs a non-empty list of values, "
                              f"got {values!r}")
        unique = {json.dumps(v, sort_keys=True) for v in values}
        if len(unique) != len(values):
            raise ConfigError(f"space.{key}: values repeat in {values!r}")
        return Dimension(key, kind, values=tuple(values))
    if not isinstance(values, list) or len(values) != 2:
        raise ConfigError(f"space.{key}: {kind} needs [low, high], got {values!r}")
    low, high = (_number(key, v) for v in values)
    if not low < high:
        raise ConfigError(f"space.{key}: {kind} needs low < high, got [{values[0]!r}, {values[1]!r}]")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"space.{key}: log_uniform needs positive bounds, got [{values[0]!r}, {values[1]!r}]")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ConfigError(f"space.{key}: int needs integer bounds, got [{values[0]!r}, {values[1]!r}]")
    return Dimension(key, kind, low=low, high=high)


def parse(table: Any) -> tuple[Dimension, ...]:
    """The `[space]` table -> its dimensions, in file order."""
    if not isinstance(table, Mapping) or not table:
        raise ConfigError(f"[space] must be a non-empty table of config keys to search, got {table!r}")
    return tuple(dimension(key, spec) for key, spec in _flatten(table).items())


def grid(dimensions: Sequence[Dimension]) -> list[dict[str, Any]]:
    """Every combination of the dimensions' values (last key fastest); ranges are refused."""
    for d in dimensions:
        if not d.discrete:
            raise ConfigError(f"method 'grid' needs a list of values for space.{d.key}, which is a {d.kind} range; "
                              "use method = 'random' or 'optuna', or list the values")
    return [dict(zip([d.key for d in dimensions], combo)) for combo in itertools.product(*(d.values for d in dimensions))]


def random(dimensions: Sequence[Dimension], trials: int, seed: int) -> list[dict[str, Any]]:
    """`trials` points drawn independently; point k is a pure function of (seed, k)."""
    points = []
    for number in range(trials):
        rng = np.random.default_rng([seed, number])
        points.append({d.key: d.sample(rng) for d in dimensions})
    return points


SHORT_NAMES = {"learning_rate": "lr", "kernel_init": "init", "batch_size": "batch", "weight_decay": "wd",
               "optimizer": "opt", "activation": "act"}


def label(params: Mapping[str, Any]) -> str:
    """'lr=1e-03 init=he_normal': the overrides of a trial as a run name reads them."""
    parts = []
    for key, value in params.items():
        name = SHORT_NAMES.get(key.rsplit(".", 1)[-1], key.rsplit(".", 1)[-1])
        if isinstance(value, float):
            text = f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}".replace("e-0", "e-")
        elif isinstance(value, list):
            text = "x".join(str(v) for v in value) if value else "[]"
        else:
            text = str(value)
        parts.append(f"{name}={text}")
    return " ".join(parts)
