"""`Structure`: what an optimizer compiles to, without its injected numbers (equal structures share compiled steps).

The chain, applied to the gradient g of every trainable leaf w:

    clipvalue (optax.clip) → clipnorm (optax.clip_by_global_norm) → the optimizer's scaling
    → + weight_decay·w (optax.add_decayed_weights) → ×(−η) (optax.scale_by_learning_rate)

wrapped in `optax.inject_hyperparams` (η, momentum, clipnorm, clipvalue, weight_decay are state)
and, when parameters are frozen, in `optax.partition` with `optax.set_to_zero` for the frozen leaves.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import optax

from jdl.optim.freeze import freeze_labels
from jdl.optim.schedules import EpochSchedule


def _scaling(name: str, h: Mapping[str, Any], momentum: Any) -> tuple[list, list]:
    """The optimizer's own transformations before and after optax.scale_by_learning_rate."""
    if name in ("gd", "sgd"):
        return ([optax.trace(decay=momentum, nesterov=h["nesterov"])] if momentum is not None else []), []
    if name == "adagrad":
        return [optax.scale_by_rss(initial_accumulator_value=h["initial_accumulator_value"], eps=h["epsilon"])], []
    if name == "rmsprop":
        scale = optax.scale_by_stddev if h["centered"] else optax.scale_by_rms
        after = [optax.trace(decay=momentum)] if momentum is not None else []
        return [scale(decay=h["rho"], eps=h["epsilon"], initial_scale=0.0, eps_in_sqrt=True)], after
    if name == "adadelta":
        return [optax.scale_by_adadelta(rho=h["rho"], eps=h["epsilon"])], []
    return [optax.scale_by_adam(b1=h["beta_1"], b2=h["beta_2"], eps=h["epsilon"])], []


@dataclasses.dataclass(frozen=True)
class Structure:
    """What an optimizer compiles to, without its injected numbers: equal structures share compiled steps.

    static: the hyperparameters that stay constants, as sorted (name, value) pairs; injected: the
    names of the numeric hyperparameters held in the optimizer state; schedule: the learning-rate
    schedule (None: a constant η, injected); steps_per_epoch: how an EpochSchedule counts steps;
    transformation: a raw optax transformation (then nothing else is set).
    """

    name: str
    static: tuple[tuple[str, Any], ...] = ()
    injected: tuple[str, ...] = ()
    schedule: Any = None
    steps_per_epoch: int | None = None
    freeze: tuple[str, ...] = ()
    transformation: optax.GradientTransformation | None = None
    accumulate: int = 1  # optimizer updates every `accumulate` steps, on the mean gradient (optax.MultiSteps)

    def build(self) -> optax.GradientTransformation:
        """The shared update (cached by value), which reads every number from the state.

        Its `init` refuses: this transformation belongs to every optimizer of the structure and
        holds no numbers of its own (`Optimizer.init` and `Optimizer.build().init` do).
        """
        return _build(self)

    def assemble(self, values: Mapping[str, float]) -> optax.GradientTransformation:
        """The transformation whose `init` puts `values` (one per injected name) into the state."""
        if self.transformation is not None:
            return self.transformation
        hyper: dict[str, Any] = {name: values[name] for name in self.injected}
        if self.schedule is not None:
            rate = self.schedule
            hyper["learning_rate"] = rate.to_optax(self.steps_per_epoch) if isinstance(rate, EpochSchedule) else rate
        tx = optax.inject_hyperparams(self._chain)(**hyper)
        if self.freeze:
            labels = functools.partial(freeze_labels, patterns=self.freeze)
            tx = optax.partition({"trainable": tx, "frozen": optax.set_to_zero()}, labels)
        if self.accumulate > 1:
            tx = optax.MultiSteps(tx, every_k_schedule=self.accumulate).gradient_transformation()
        return tx

    def _chain(self, learning_rate: Any, momentum: Any = None, clipnorm: Any = None, clipvalue: Any = None,
               weight_decay: Any = None) -> optax.GradientTransformation:
        """The chain at the injected values (arrays inside the optimizer's update)."""
        h = dict(self.static)
        before, after = _scaling(self.name, h, momentum)
        parts = []
        if clipvalue is not None:
            parts.append(optax.clip(clipvalue))
        if clipnorm is not None:
            parts.append(optax.clip_by_global_norm(clipnorm))
        parts += before
        if weight_decay is not None and not after:
            parts.append(optax.add_decayed_weights(weight_decay))
        parts.append(optax.scale_by_learning_rate(learning_rate))
        parts += after
        if weight_decay is not None and after:
            parts.append(optax.add_decayed_weights(-learning_rate * weight_decay))
        return optax.chain(*parts)


@functools.lru_cache(maxsize=128)
def _build(structure: Structure) -> optax.GradientTransformation:
    if structure.transformation is not None:
        return structure.transformation
    update = structure.assemble({name: 1.0 for name in structure.injected}).update

    def init(params: Any) -> Any:
        raise TypeError(
            "this transformation is the update shared by every optimizer of one structure and holds no "
            "hyperparameter values; initialise with Optimizer.init(params) or Optimizer.build().init(params)"
        )

    return optax.GradientTransformation(init, update)
