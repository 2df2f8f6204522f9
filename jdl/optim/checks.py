"""The checks of an optimizer's hyperparameters (by name), learning rate and numeric options."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

from jdl import _checks
from jdl.optim.helpers import check_bool, check_unit_interval


def _nonnegative(value: Any, name: str) -> None:
    _checks.check_number(value, name, nonnegative=True)


_HYPER_CHECKS: dict[str, Callable[[Any, str], None]] = {
    "momentum": check_unit_interval,
    "rho": check_unit_interval,
    "beta_1": check_unit_interval,
    "beta_2": check_unit_interval,
    "epsilon": _nonnegative,
    "initial_accumulator_value": _nonnegative,
    "nesterov": check_bool,
    "centered": check_bool,
}


def _check_learning_rate(value: Any) -> None:
    if callable(value):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            "learning_rate must be a number, an EpochSchedule or an optax schedule "
            f"(step -> rate), got {_checks.describe(value)}"
        )
    _checks.check_number(value, "learning_rate", nonnegative=True)


def _optional_number(value: Any, name: str, **sign: bool) -> float | None:
    if value is None:
        return None
    _checks.check_number(value, name, **sign)
    return float(value)
