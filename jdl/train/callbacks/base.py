"""The callback protocol of `Trainer.fit`: hooks that receive the state and may return a new one.

A hook returns None (state unchanged) or a TrainState. Hooks run between dispatches; only
`on_epoch_end` sees host floats (`logs`), `on_train_batch_end` gets device arrays and must not
read them unless it needs to (reading forces a device sync). A callback that adds work inside the
compiled step returns a `StepHook` from `step_hook` and receives its records in `on_step_records`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class PartialEpoch:
    """The part of epoch `initial_epoch` a mid-epoch checkpoint already ran: its step count and each dispatch's logs {name: (steps,)}."""

    steps: int
    logs: Sequence[Mapping[str, Any]]


@dataclasses.dataclass
class FitContext:
    """What a callback may read or set during fit: the trainer, the plan, and `stop_training`.

    partial: set by a callback that restores a mid-epoch checkpoint; the loop then skips the
    steps already run in the first epoch (and that epoch's on_epoch_begin, which already ran).
    """

    trainer: Any
    epochs: int
    initial_epoch: int
    steps_per_epoch: int
    batch_size: int
    history: Any
    stop_training: bool = False
    nonfinite: str | None = None
    callbacks: list[Any] = dataclasses.field(default_factory=list)
    partial: PartialEpoch | None = None

    def take_partial(self) -> tuple[int, list[Any]]:
        """(steps already run, [their logs]) of the epoch being resumed, once; (0, []) otherwise."""
        partial, self.partial = self.partial, None
        return (0, []) if partial is None else (partial.steps, [dict(c) for c in partial.logs])


class Callback:
    """Base class: override the hooks you need; each returns None or a replacement TrainState.

    holds_state: True when the callback may keep a reference to a state it was given (e.g. the
    best weights); fit then never donates the state's buffers to the next compiled dispatch.
    Unknown callbacks are assumed to hold states; jdl's own say when they do not.
    """

    context: FitContext
    runs_first = False  # True for callbacks every other callback must see done (History)
    runs_last = False  # True for callbacks that must see every other callback's epoch (backups)
    holds_state = True

    def set_context(self, context: FitContext) -> None:
        self.context = context

    def step_hook(self, model: Any) -> Any:
        """A `jdl.train.hooks.StepHook` to run inside the compiled step for `model`, or None."""
        return None

    def on_step_records(self, records: Any) -> None:
        """The records of this callback's step hook for one dispatch, stacked over its steps (device arrays)."""
        return None

    def on_train_begin(self, state: Any, logs: Mapping[str, float]) -> Any:
        return None

    def on_epoch_begin(self, epoch: int, state: Any, logs: Mapping[str, float]) -> Any:
        return None

    def on_train_batch_end(self, steps: int, state: Any, logs: Mapping[str, Any]) -> Any:
        return None

    def on_epoch_end(self, epoch: int, state: Any, logs: Mapping[str, float]) -> Any:
        return None

    def on_train_end(self, state: Any, logs: Mapping[str, float]) -> Any:
        return None

    def close(self) -> None:
        """Release resources (finish background saves); called when fit ends, also on errors."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """JSON-able internal state, saved by BackupAndRestore so a resumed fit behaves identically."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None

    def held_state(self) -> Any:
        """A TrainState whose weights the callback keeps (EarlyStopping's best); BackupAndRestore saves its params and model_state."""
        return None

    def load_held_state(self, state: Any) -> None:
        """Take back the state `held_state` returned when the backup was written (called after load_state_dict)."""
        return None


class CallbackList:
    """Runs hooks in order (History first, backups last), threading the state through them."""

    def __init__(self, callbacks: Sequence[Callback], context: FitContext):
        self.callbacks = sorted(callbacks, key=lambda c: (not c.runs_first, c.runs_last))
        self.context = context
        context.callbacks = self.callbacks
        for callback in self.callbacks:
            callback.set_context(context)

    @property
    def holds_state(self) -> bool:
        return any(c.holds_state for c in self.callbacks)

    def _run(self, hook: str, state: Any, *args: Any) -> Any:
        for callback in self.callbacks:
            result = getattr(callback, hook)(*args[:-1], state, args[-1])
            if result is not None:
                state = result
        return state

    def on_train_begin(self, state, logs):
        return self._run("on_train_begin", state, logs)

    def on_epoch_begin(self, epoch, state, logs):
        return self._run("on_epoch_begin", state, epoch, logs)

    def on_train_batch_end(self, steps, state, logs):
        return self._run("on_train_batch_end", state, steps, logs)

    def on_epoch_end(self, epoch, state, logs):
        return self._run("on_epoch_end", state, epoch, logs)

    def on_train_end(self, state, logs):
        return self._run("on_train_end", state, logs)

    def close(self) -> None:
        for callback in self.callbacks:
            callback.close()
