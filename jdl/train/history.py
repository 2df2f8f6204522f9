"""`History`: the per-epoch logs of a fit, as a callback (Keras semantics)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jdl.train.callbacks.base import Callback


class History(Callback):
    """history[key] is a list over epochs, epoch lists their indices; params describes the fit.

    `Trainer.fit` adds one to every fit and returns it; it records each epoch's logs before any
    other callback sees them. stop_reason says why training stopped early (None otherwise).
    """

    runs_first = True
    holds_state = False

    def __init__(self, history: dict[str, list[float]] | None = None, epoch: list[int] | None = None,
                 params: dict[str, Any] | None = None, stop_reason: str | None = None):
        self.history = {} if history is None else history
        self.epoch = [] if epoch is None else epoch
        self.params = {} if params is None else params
        self.stop_reason = stop_reason

    def append(self, epoch: int, logs: Mapping[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def on_epoch_end(self, epoch, state, logs):
        self.append(epoch, logs)

    def to_dict(self) -> dict[str, Any]:
        return {"history": self.history, "epoch": self.epoch, "params": self.params, "stop_reason": self.stop_reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        return cls(dict(data["history"]), list(data["epoch"]), dict(data.get("params", {})), data.get("stop_reason"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)}, stop_reason={self.stop_reason!r})"
