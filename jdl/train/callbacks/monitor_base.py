"""`MonitorCallback`: the "did the monitored value improve" logic shared by EarlyStopping, ReduceLROnPlateau and ModelCheckpoint."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np

from jdl import _checks
from jdl.train.callbacks.base import Callback

HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "r2")


def resolve_mode(monitor: str, mode: str) -> str:
    """"min" or "max": mode "auto" maximises accuracy-like metrics and minimises losses and errors (Keras)."""
    _checks.check_choice(mode, "mode", ("auto", "min", "max"))
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    return "max" if any(k in name for k in HIGHER_IS_BETTER) and "loss" not in name else "min"


class MonitorCallback(Callback):
    """A callback that watches `monitor` in the epoch logs and tracks its best value (Keras semantics).

    mode: "min", "max" or "auto"; min_delta: how much a change must exceed to count (≥ 0);
    baseline: a value the monitored quantity must beat; delta_on: "value" compares
    value ∓ min_delta with the reference (Keras EarlyStopping), "reference" compares the value with
    reference ± min_delta (Keras ReduceLROnPlateau).
    """

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0, baseline: float | None = None,
                 delta_on: str = "value"):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be the name of a logged value (str), got {_checks.describe(monitor)}")
        _checks.check_number(min_delta, "min_delta")
        if baseline is not None:
            _checks.check_number(baseline, "baseline")
        _checks.check_choice(delta_on, "delta_on", ("value", "reference"))
        self.monitor, self.mode = monitor, resolve_mode(monitor, mode)
        self.monitor_op = np.less if self.mode == "min" else np.greater
        self.min_delta, self.baseline, self.delta_on = abs(min_delta), baseline, delta_on
        self.best = self.initial_best()

    def initial_best(self) -> float:
        """+inf when minimising, -inf when maximising: any finite value improves on it."""
        return math.inf if self.mode == "min" else -math.inf

    def is_improvement(self, value: float, reference: float) -> bool:
        """Whether `value` beats `reference` by more than min_delta in the monitored direction."""
        delta = -self.min_delta if self.mode == "min" else self.min_delta
        if self.delta_on == "value":
            return bool(self.monitor_op(value - delta, reference))
        return bool(self.monitor_op(value, reference + delta))

    def beats_baseline(self, value: float) -> bool:
        """True without a baseline, else whether `value` improves on it."""
        return self.baseline is None or self.is_improvement(value, self.baseline)

    def monitored(self, logs: Mapping[str, float]) -> float | None:
        """The monitored value of this epoch's logs; warns (once per call) and returns None when it is absent."""
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__} conditioned on `{self.monitor}`, which is not in the logs. "
                f"Available: {', '.join(logs)}",
                RuntimeWarning,
                stacklevel=3,
            )
        return value
