"""Learning-rate schedules counted in epochs (the notes' decay rules), on Optax, and their registry.

An `EpochSchedule` maps the epoch (0, 1, 2, ...) to η, constant within an epoch; `to_optax`
turns it into a step schedule. Named schedules compare by name and numbers, so two optimizers
built from the same config share compiled steps. `get(name, lr0, **options)` resolves a name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jdl import _checks

Schedule = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class EpochSchedule:
    """A learning rate per epoch, η = fn(epoch) with epoch = 0, 1, 2, ...; constant within an epoch.

    Like the schedule of Keras' LearningRateScheduler (set at the start of each epoch), but a
    function of the epoch only; `fn` must accept an integer array (it runs inside jit).
    """

    fn: Schedule
    name: str = "custom"
    params: Mapping[str, float] = dataclasses.field(default_factory=dict, hash=False)

    def _key(self) -> tuple[Any, ...]:
        """A named schedule is its name and numbers; a custom one is its function."""
        return (self.fn,) if self.name == "custom" else (self.name, tuple(sorted(self.params.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EpochSchedule) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"fn must be a function epoch -> learning rate, got {_checks.describe(self.fn)}")
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {_checks.describe(self.name)}")

    def __call__(self, epoch: Any) -> jax.Array:
        """The learning rate of `epoch` (an int ≥ 0, or an integer array of epochs)."""
        if not hasattr(epoch, "shape"):
            _checks.check_number(epoch, "epoch", integer=True, nonnegative=True)
        return jnp.asarray(self.fn(epoch))

    def to_optax(self, steps_per_epoch: int) -> Schedule:
        """The optax schedule step -> fn(step // steps_per_epoch) (step counted from 0)."""
        _checks.check_number(steps_per_epoch, "steps_per_epoch", integer=True, positive=True)
        fn, spe = self.fn, int(steps_per_epoch)
        return lambda step: fn(step // spe)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"EpochSchedule({self.name}{', ' + args if args else ''})"


def inverse_time(lr0: float, decay: float) -> EpochSchedule:
    """η = lr0 / (1 + decay·epoch)."""
    _checks.check_number(lr0, "lr0", positive=True)
    _checks.check_number(decay, "decay", nonnegative=True)
    lr0, decay = float(lr0), float(decay)
    return EpochSchedule(lambda epoch: lr0 / (1.0 + decay * epoch), "inverse_time", {"lr0": lr0, "decay": decay})


def exponential(lr0: float, rate: float = 0.95) -> EpochSchedule:
    """η = rate^epoch · lr0 (optax.exponential_decay with one transition per epoch)."""
    _checks.check_number(lr0, "lr0", positive=True)
    _checks.check_number(rate, "rate", positive=True)
    fn = optax.exponential_decay(init_value=float(lr0), transition_steps=1, decay_rate=float(rate))
    return EpochSchedule(fn, "exponential", {"lr0": float(lr0), "rate": float(rate)})


def inverse_sqrt(lr0: float, k: float = 1.0) -> EpochSchedule:
    """η = k/√epoch · lr0 for epoch ≥ 1; epoch 0 uses epoch 1 (the notes count epochs from 1)."""
    _checks.check_number(lr0, "lr0", positive=True)
    _checks.check_number(k, "k", positive=True)
    scale = float(k) * float(lr0)
    return EpochSchedule(
        lambda epoch: scale / jnp.sqrt(jnp.maximum(epoch, 1)), "inverse_sqrt", {"lr0": float(lr0), "k": float(k)}
    )


def step_decay(lr0: float, drop: float, every: int) -> EpochSchedule:
    """η = lr0 · drop^⌊epoch / every⌋ (optax.exponential_decay, staircase)."""
    _checks.check_number(lr0, "lr0", positive=True)
    _checks.check_number(drop, "drop", positive=True)
    _checks.check_number(every, "every", integer=True, positive=True)
    fn = optax.exponential_decay(
        init_value=float(lr0), transition_steps=int(every), decay_rate=float(drop), staircase=True
    )
    return EpochSchedule(fn, "step_decay", {"lr0": float(lr0), "drop": float(drop), "every": int(every)})


def cosine(lr0: float, epochs: int, alpha: float = 0.0) -> EpochSchedule:
    """η = lr0 · ((1-α)·½(1 + cos(π·min(epoch, epochs)/epochs)) + α) (optax.cosine_decay_schedule)."""
    _checks.check_number(lr0, "lr0", positive=True)
    _checks.check_number(epochs, "epochs", integer=True, positive=True)
    _checks.check_number(alpha, "alpha", nonnegative=True)
    if alpha > 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    fn = optax.cosine_decay_schedule(init_value=float(lr0), decay_steps=int(epochs), alpha=float(alpha))
    return EpochSchedule(fn, "cosine", {"lr0": float(lr0), "epochs": int(epochs), "alpha": float(alpha)})


SCHEDULES: dict[str, Callable[..., EpochSchedule]] = {
    "inverse_time": inverse_time,
    "exponential": exponential,
    "inverse_sqrt": inverse_sqrt,
    "step_decay": step_decay,
    "cosine": cosine,
}


def names() -> list[str]:
    """The schedule names `get` accepts."""
    return sorted(SCHEDULES)


def get(name: str, lr0: float, **options: Any) -> EpochSchedule:
    """The schedule `name` starting at lr0, e.g. get("step_decay", 0.1, drop=0.5, every=10).

    ValueError for an unknown name (closest matches first), TypeError for an option the schedule
    does not take.
    """
    factory = _checks.lookup("schedule", name, SCHEDULES)
    _checks.bind_options("schedule", name, factory, options)
    return factory(lr0, **options)
