"""`Population`: the settings of P members trained together by `Trainer.fit(..., population=...)`.

Members share the model, the loss, the metrics and the optimizer's structure (one compiled step,
vmapped over a member axis); they may differ only in numbers the step takes as arguments:

    seed           the initial parameters, dropout keys and per-epoch shuffling (as fit's seed)
    learning_rate  η, momentum, weight_decay, clipnorm, clipvalue: the optimizer's injected
                   hyperparameters (state in opt_state, optax.inject_hyperparams)
    l2             λ of the penalty λ/(2m)·Σ‖W‖² (CostValues)
    loss_weights   a number (one head) or {head: weight} (CostValues)

An option some members set and others leave off is injected for every member, off being a value
with the same effect: momentum 0 (v = g), weight_decay 0, clipnorm/clipvalue ∞, l2 0. Anything
else (a hidden width, a dropout rate, an initializer, an activation) is a field of the model:
it changes the compiled step, or its shapes, and cannot be vmapped; search it with a grid.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jdl import _checks
from jdl.optim import Structure
from jdl.train.objective import CostValues, Objective

MEMBER_SETTINGS = ("seed", "learning_rate", "momentum", "weight_decay", "clipnorm", "clipvalue", "l2", "loss_weights")
OPTIMIZER_SETTINGS = ("learning_rate", "momentum", "clipnorm", "clipvalue", "weight_decay")  # optim.INJECTED's order
OFF = {"momentum": 0.0, "weight_decay": 0.0, "clipnorm": math.inf, "clipvalue": math.inf}


def not_a_member_setting(name: str, where: str = "population setting") -> ValueError:
    """The ValueError for a setting members cannot differ in: why, and the grid to use instead."""
    if "dropout" in name:
        return ValueError(
            f"{where} {name!r}: a dropout rate cannot differ between members of a population: it is a field of the "
            "model, compiled into the step, and flax.linen.Dropout needs a Python float rate (a traced rate raises "
            "TracerBoolConversionError); search it with a grid instead (jdl sweep method = 'grid', one fit per rate)")
    return ValueError(
        f"{where} {name!r} cannot be vmapped: members of a population share one compiled step and may differ only "
        f"in {', '.join(MEMBER_SETTINGS)}; a setting of the model (a hidden width, an initializer, an activation) "
        "changes the step or its shapes; search it with a grid instead (jdl sweep method = 'grid', one fit per value)")


class Population:
    """The settings of P members: Population(seed=[0, 1, 2], learning_rate=[1e-3, 3e-3, 1e-2]).

    Each keyword is one of MEMBER_SETTINGS, given as a list of P values (one per member) or as one
    value every member takes; `size` fixes P when no list is given. A member leaves fit's own
    value (its seed, the Trainer's optimizer and loss weights) for a setting nobody gives.
    `Population.grid(learning_rate=[...], seed=[...])` crosses lists (the first varies slowest);
    `Population.of([{"seed": 0, ...}, ...])` takes one dict per member.
    """

    def __init__(self, size: int | None = None, **settings: Any):
        for name in settings:
            if name not in MEMBER_SETTINGS:
                raise not_a_member_setting(name)
        lengths = {name: len(v) for name, v in settings.items() if _is_list(v)}
        if size is not None:
            _checks.check_number(size, "size", integer=True, positive=True)
        sizes = set(lengths.values()) | ({size} if size is not None else set())
        if len(sizes) > 1:
            raise ValueError(f"population settings must all list the same number of members, got lengths {lengths}"
                             + (f" and size={size}" if size is not None else ""))
        if not sizes:
            raise ValueError("population needs its number of members: give size=P or a list of P values for a setting")
        count = sizes.pop()
        if count < 1:
            raise ValueError(f"population needs at least one member, got an empty list in {sorted(lengths)}")
        members = [{name: (v[k] if _is_list(v) else v) for name, v in settings.items()} for k in range(count)]
        self.members = tuple(check_member(m, k) for k, m in enumerate(members))

    @classmethod
    def of(cls, members: Sequence[Mapping[str, Any]]) -> Population:
        """A population from one dict of settings per member."""
        if isinstance(members, Mapping) or not isinstance(members, Sequence) or not members:
            raise TypeError(f"population must be a non-empty list of dicts of member settings, got {_checks.describe(members)}")
        for k, member in enumerate(members):
            if not isinstance(member, Mapping):
                raise TypeError(f"population[{k}] must be a dict of member settings, got {_checks.describe(member)}")
            for name in member:
                if name not in MEMBER_SETTINGS:
                    raise not_a_member_setting(name, f"population[{k}] setting")
        population = cls.__new__(cls)
        population.members = tuple(check_member(dict(m), k) for k, m in enumerate(members))
        return population

    @classmethod
    def grid(cls, **axes: Sequence[Any]) -> Population:
        """Every combination of the listed values, the first keyword varying slowest (as a grid sweep)."""
        for name, values in axes.items():
            if not _is_list(values) or not values:
                raise ValueError(f"Population.grid({name}=...) needs a non-empty list of values, got {values!r}")
        names = list(axes)
        return cls.of([dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))])

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def __repr__(self) -> str:
        return f"Population({len(self)} members: {list(self.members)})"


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def check_member(member: dict[str, Any], k: int) -> dict[str, Any]:
    """The member's settings, each checked (TypeError/ValueError naming member k and the setting)."""
    for name, value in member.items():
        where = f"population member {k} {name}"
        if name == "seed":
            _checks.check_number(value, where, integer=True, nonnegative=True)
            member[name] = int(value)
        elif name == "loss_weights":
            weights = value if isinstance(value, Mapping) else {None: value}
            for head, weight in weights.items():
                _checks.check_number(weight, where if head is None else f"{where}[{head!r}]", nonnegative=True)
        elif name == "momentum":
            _checks.check_number(value, where, nonnegative=True)
            if not value < 1:
                raise ValueError(f"{where} must be in [0, 1), got {value!r}")
        elif name in ("clipnorm", "clipvalue"):
            if value is not None:
                _checks.check_number(value, where, positive=True)
        else:
            _checks.check_number(value, where, nonnegative=True)
        if name != "loss_weights" and isinstance(value, numbers.Real) and not isinstance(value, bool) and name != "seed":
            member[name] = float(value)
    return member


def as_population(population: Any, seed: int) -> Population:
    """A Population from fit's `population`: P (members with seeds seed, ..., seed+P-1), a Population, or a list of dicts."""
    if isinstance(population, Population):
        return population
    if isinstance(population, numbers.Integral) and not isinstance(population, bool):
        _checks.check_number(population, "population", integer=True, positive=True)
        return Population(seed=[seed + k for k in range(int(population))])
    if isinstance(population, Sequence) and not isinstance(population, (str, bytes)):
        return Population.of(population)
    raise TypeError("population must be a number of members P, a jdl.train.Population or a list of dicts of member "
                    f"settings, got {_checks.describe(population)}")


@dataclasses.dataclass(frozen=True)
class Members:
    """The resolved members: seeds, the shared optimizer structure and objective, and each member's numbers."""

    settings: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...]
    structure: Structure
    objective: Objective
    optimizer_values: tuple[dict[str, np.float32], ...]
    cost_values: CostValues  # every leaf (P,)

    def __len__(self) -> int:
        return len(self.seeds)


def resolve(trainer: Any, population: Population, seed: int, steps_per_epoch: int) -> Members:
    """The members of `population` for `trainer`: ValueError naming the setting its optimizer or loss cannot take."""
    optimizer = trainer.optimizer
    structure = optimizer.structure(steps_per_epoch)
    given = {name for member in population for name in member}
    base = optimizer.values()
    if structure.transformation is not None:
        settable = given & set(OPTIMIZER_SETTINGS)
        if settable:
            raise ValueError(f"population setting {sorted(settable)[0]!r}: the Trainer's optimizer is a raw optax "
                             "transformation, which holds no hyperparameters to vary; use a jdl.optim optimizer")
    if "learning_rate" in given and structure.schedule is not None:
        raise ValueError("population setting 'learning_rate': the Trainer's learning rate is a schedule, which is not "
                         "injected; give the optimizer a constant learning rate to vary it between members")
    if "momentum" in given and "momentum" not in optimizer.hyperparams:
        raise ValueError(f"population setting 'momentum': optimizer {optimizer.name!r} has no momentum "
                         "(sgd and rmsprop have)")
    heads = trainer.objective.head_names
    for k, member in enumerate(population):
        weights = member.get("loss_weights")
        if isinstance(weights, Mapping):
            unknown = [h for h in weights if h not in heads]
            if unknown:
                raise ValueError(f"population member {k} loss_weights names unknown heads {unknown}; the loss heads "
                                 f"are {list(heads)}")
        elif weights is not None and heads != (None,):
            raise ValueError(f"population member {k} loss_weights must be a dict {{head: weight}} for a model with "
                             f"heads {list(heads)}, got {weights!r}")
    on = [name for name in OPTIMIZER_SETTINGS
          if base.get(name) is not None or any(m.get(name) not in (None, OFF.get(name)) for m in population)]
    if structure.transformation is None:
        structure = dataclasses.replace(structure, injected=tuple(on))
    optimizer_values = []
    for member in population:
        values = {}
        for name in structure.injected:
            value = member.get(name, base.get(name))
            values[name] = np.float32(OFF[name] if value is None else value)
        optimizer_values.append(values)
    l2 = [member.get("l2", optimizer.l2 or 0.0) for member in population]
    objective = trainer.objective
    if any(l2) and not objective.penalty:
        objective = dataclasses.replace(objective, penalty=True)
    weights = []
    for member in population:
        given_weights = member.get("loss_weights", {})
        if not isinstance(given_weights, Mapping):
            given_weights = {None: given_weights}
        weights.append([float(given_weights.get(h, trainer.loss_weights[h])) for h in heads])
    cost_values = CostValues(tuple(np.asarray([w[i] for w in weights], np.float32) for i in range(len(heads))),
                             np.asarray(l2, np.float32))
    seeds = tuple(int(member.get("seed", seed)) for member in population)
    return Members(tuple(dict(m) for m in population), seeds, structure, objective, tuple(optimizer_values),
                   cost_values)
