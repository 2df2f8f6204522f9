"""Optimizers as descriptions (`Optimizer`) and the factories that make them, one per optimizer, on Optax.

`Optimizer.build(steps_per_epoch)` gives one `optax.GradientTransformation` that applies, to the
gradient g of every trainable leaf w:

    clipvalue (optax.clip) → clipnorm (optax.clip_by_global_norm) → the optimizer's scaling
    → + weight_decay·w (optax.add_decayed_weights) → ×(−η) (optax.scale_by_learning_rate)

wrapped in `optax.inject_hyperparams`: η, momentum, clipnorm, clipvalue and weight_decay live in
the optimizer state (`optim.learning_rate`, `optim.set_learning_rate`), and, when parameters are
frozen, in `optax.partition` with `optax.set_to_zero` for the frozen leaves.

What is compiled is the `Structure`: the optimizer's name, its remaining hyperparameters (β₁, β₂,
ε, ρ, nesterov, centered: compile-time constants, since injecting them would change the float32
rounding of 1 − β), which options are on, the schedule and the freeze patterns. Two optimizers
that differ only in injected numbers have equal structures and share compiled steps.

An `Optimizer` takes its hyperparameters' names and defaults from its factory's signature, so the
class and the factories (gd, sgd, adagrad, rmsprop, adadelta, adam, adamw) live in one module;
`jdl.optim.optimizers` resolves names (`get`) and re-exports them.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import optax

from jdl import _checks
from jdl.optim.checks import _HYPER_CHECKS, _check_learning_rate, _optional_number
from jdl.optim.freeze import check_patterns, glob_regex, parameter_paths
from jdl.optim.penalty import kernels, l2_penalty
from jdl.optim.schedules import EpochSchedule, Schedule
from jdl.optim.structure import Structure

OPTIONS = ("clipnorm", "clipvalue", "l2", "weight_decay", "freeze")
INJECTED = ("learning_rate", "momentum", "clipnorm", "clipvalue", "weight_decay")


@dataclasses.dataclass(frozen=True, repr=False)
class Optimizer:
    """An optimizer description; `build(steps_per_epoch)` gives the optax.GradientTransformation.

    Make one with a factory (`adam(1e-3, clipnorm=1.0)`) or `get("adam", ...)`; omitted
    hyperparameters and `learning_rate` take the factory's defaults. Options, applied to the
    trainable leaves only:

    - clipvalue c: g ← clip(g, -c, c) element-wise (optax.clip; Keras `clipvalue`).
    - clipnorm c: g ← g·min(1, c/‖g‖), ‖g‖ the global norm over all trainable leaves
      (optax.clip_by_global_norm = Keras `global_clipnorm`; Keras `clipnorm` clips each weight's
      gradient by its own norm). With both, the value clip comes first.
    - weight_decay λ: decoupled weight decay, w ← w - η·λ·w each step besides the optimizer's
      update (Keras 3 `weight_decay`; AdamW). It never enters a moment or accumulator: it is
      optax.add_decayed_weights(λ) right before optax.scale_by_learning_rate, i.e. after Adam's
      m̂/(√v̂+ε), Adagrad's, RMSprop's and Adadelta's scaling and SGD's momentum trace (update
      -η(v + λw)); for rmsprop with momentum, whose momentum follows the η scaling in optax,
      it is add_decayed_weights(-η·λ) after the momentum. Unlike optax.adadelta's coupled decay.
    - l2 λ: not a transformation: the notes' penalty λ/(2m)·Σ‖W‖² on kernels, which the trainer
      adds to the cost (`penalty`), so its gradient (λ/m)·W is clipped and enters the moments.
    - freeze: glob patterns over parameter paths (see `frozen_mask`); matching leaves get a zero
      update, no optimizer state, no weight decay and no share of the clipping norm.

    Injected into the optimizer state (values, not compile-time constants): η (unless it is a
    schedule), momentum, clipnorm, clipvalue, weight_decay. `learning_rate(opt_state)`,
    `set_learning_rate(opt_state, η)`, `hyperparameters(opt_state)` read and set them.
    """

    name: str
    hyperparams: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    learning_rate: float | EpochSchedule | Schedule | None = None
    clipnorm: float | None = None
    clipvalue: float | None = None
    l2: float | None = None
    weight_decay: float | None = None
    freeze: tuple[str, ...] = ()
    transformation: optax.GradientTransformation | None = None
    accumulate: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be an optimizer name (str), got {_checks.describe(self.name)}")
        _checks.check_number(self.accumulate, "accumulate", integer=True, positive=True)
        object.__setattr__(self, "_built", {})
        if self.transformation is not None:
            self._check_wrapped()
            return
        factory = _checks.lookup("optimizer", self.name, _FACTORIES)
        signature = inspect.signature(factory).parameters
        defaults = {k: p.default for k, p in signature.items() if k != "learning_rate" and k not in OPTIONS}
        if not isinstance(self.hyperparams, Mapping):
            raise TypeError(f"hyperparams must be a dict, got {_checks.describe(self.hyperparams)}")
        unknown = sorted(set(self.hyperparams) - set(defaults))
        if unknown:
            raise TypeError(
                f"optimizer {self.name!r} got unknown hyperparameter(s) {unknown}; it accepts {list(defaults)}"
            )
        hyper = {**defaults, **self.hyperparams}
        for key, value in hyper.items():
            _HYPER_CHECKS[key](value, key)
        rate = signature["learning_rate"].default if self.learning_rate is None else self.learning_rate
        _check_learning_rate(rate)
        option = {k: getattr(self, k) for k in OPTIONS}
        for key in OPTIONS:
            if option[key] is None:
                option[key] = signature[key].default
        fields = {
            "name": self.name.lower(),
            "hyperparams": {k: v if isinstance(v, (bool, np.bool_)) else float(v) for k, v in hyper.items()},
            "learning_rate": rate if callable(rate) else float(rate),
            "clipnorm": _optional_number(option["clipnorm"], "clipnorm", positive=True),
            "clipvalue": _optional_number(option["clipvalue"], "clipvalue", positive=True),
            "l2": _optional_number(option["l2"], "l2", nonnegative=True),
            "weight_decay": _optional_number(option["weight_decay"], "weight_decay", nonnegative=True),
            "freeze": check_patterns(option["freeze"], "freeze"),
        }
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def _check_wrapped(self) -> None:
        if not isinstance(self.transformation, optax.GradientTransformation):
            raise TypeError(
                f"transformation must be an optax.GradientTransformation, got {_checks.describe(self.transformation)}"
            )
        given = [k for k in ("learning_rate", *OPTIONS) if getattr(self, k) not in (None, ())]
        if self.hyperparams or given:
            raise ValueError(
                f"a raw optax.GradientTransformation takes no hyperparameters or options, got "
                f"{sorted(self.hyperparams) + given}; build them into it (optax.chain, optax.inject_hyperparams)"
            )

    @property
    def has_schedule(self) -> bool:
        """True when the learning rate is a schedule (EpochSchedule or optax), which callbacks cannot set."""
        return callable(self.learning_rate)

    def structure(self, steps_per_epoch: int | None = None) -> Structure:
        """The compiled part of this optimizer; an EpochSchedule needs `steps_per_epoch` to count steps."""
        if steps_per_epoch is not None:
            _checks.check_number(steps_per_epoch, "steps_per_epoch", integer=True, positive=True)
        if self.transformation is not None:
            if self.accumulate > 1:
                return Structure("custom", transformation=optax.MultiSteps(
                    self.transformation, every_k_schedule=self.accumulate).gradient_transformation())
            return Structure("custom", transformation=self.transformation)
        rate = self.learning_rate
        if isinstance(rate, EpochSchedule) and steps_per_epoch is None:
            raise ValueError(
                f"steps_per_epoch must be given to build an optimizer whose learning_rate is an "
                f"EpochSchedule ({rate!r} counts epochs), got None"
            )
        injected = [name for name, value in self.values().items() if value is not None]
        static = tuple(sorted((k, v) for k, v in self.hyperparams.items() if k != "momentum"))
        return Structure(
            self.name, static, tuple(injected), rate if callable(rate) else None,
            steps_per_epoch if isinstance(rate, EpochSchedule) else None, self.freeze, accumulate=self.accumulate,
        )

    def values(self) -> dict[str, float | None]:
        """The injected numbers by name; None for an option that is off (momentum 0 is off)."""
        if self.transformation is not None:
            return {}
        momentum = self.hyperparams.get("momentum")
        return {
            "learning_rate": None if callable(self.learning_rate) else self.learning_rate,
            "momentum": momentum if momentum else None,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "weight_decay": self.weight_decay if self.weight_decay else None,
        }

    def build(self, steps_per_epoch: int | None = None) -> optax.GradientTransformation:
        """The optax transformation: `init` puts this optimizer's numbers into the state, `update` reads them.

        The update is the one shared by every optimizer of the same `structure`, so states built
        from equal structures share compiled steps. Cached: building twice gives the same object.
        A raw transformation (`as_optimizer`) is returned unchanged.
        """
        structure = self.structure(steps_per_epoch)
        if structure.transformation is not None:
            return structure.transformation
        if structure not in self._built:
            self._built[structure] = optax.GradientTransformation(self.init_for(structure), structure.build().update)
        return self._built[structure]

    def init_for(self, structure: Structure) -> Callable[[Any], Any]:
        """params -> the state of `structure` holding this optimizer's numbers."""
        return structure.assemble(self.values()).init

    def init(self, params: Any, steps_per_epoch: int | None = None) -> Any:
        """The optimizer state for `params`, holding this optimizer's learning rate and other injected numbers."""
        return self.init_for(self.structure(steps_per_epoch))(params)

    def check_params(self, params: Any) -> None:
        """ValueError when a freeze pattern matches no parameter, or l2 is set and there is no kernel."""
        paths = parameter_paths(params)
        if not paths:
            raise ValueError(f"params must hold at least one array, got {_checks.describe(params)}")
        for pattern in self.freeze:
            if not any(glob_regex(pattern).fullmatch(path) for path in paths):
                shown = ", ".join(paths[:20]) + (", ..." if len(paths) > 20 else "")
                raise ValueError(f"freeze pattern {pattern!r} matches no parameter; the parameters are: {shown}")
        if self.l2 and not kernels(params):
            raise ValueError(
                f"l2={self.l2} penalises kernels (leaves whose path ends in 'kernel'), but params have none: "
                f"{', '.join(paths[:20])}"
            )

    def penalty(self, params: Any, m: Any) -> Any:
        """λ/(2m)·Σ‖W‖² over kernels (`l2_penalty`), or 0.0 without l2; m = training-set size."""
        return 0.0 if self.l2 is None else l2_penalty(params, self.l2, m)

    def __repr__(self) -> str:
        if self.transformation is not None:
            return f"Optimizer({self.name!r}, transformation=<optax.GradientTransformation>)"
        items = {"learning_rate": self.learning_rate, **self.hyperparams}
        items.update({k: getattr(self, k) for k in OPTIONS if getattr(self, k) not in (None, ())})
        return f"Optimizer({self.name!r}, {', '.join(f'{k}={v!r}' for k, v in items.items())})"


# -- factories --------------------------------------------------------------------------------


def gd(
    learning_rate: float | EpochSchedule | Schedule = 0.01,
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    l2: float | None = None,
    weight_decay: float | None = None,
    freeze: Iterable[str] = (),
) -> Optimizer:
    """Gradient descent, w ← w - η·g (optax.sgd without momentum); the trainer runs it full-batch."""
    return Optimizer(
        "gd", {}, learning_rate, clipnorm=clipnorm, clipvalue=clipvalue, l2=l2, weight_decay=weight_decay, freeze=freeze
    )


def sgd(
    learning_rate: float | EpochSchedule | Schedule = 0.01,
    momentum: float = 0.0,
    nesterov: bool = False,
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    l2: float | None = None,
    weight_decay: float | None = None,
    freeze: Iterable[str] = (),
) -> Optimizer:
    """Stochastic gradient descent with optional (Nesterov) momentum μ, as optax.sgd(η, μ, nesterov).

    μ = 0: w ← w - η·g. μ > 0: v ← μ·v + g (v₀ = 0, optax.trace), w ← w - η·v; nesterov:
    w ← w - η·(g + μ·v). Keras keeps v' ← μ·v' - η·g, w ← w + v': the same steps while η is
    constant, but after η changes Keras' velocity still carries the old η, this one does not.
    The notes' momentum is an EWMA, v ← β·v + (1-β)·g, w ← w - α·v: this v is the notes' v
    divided by 1-β, so the notes' (α, β) is sgd(learning_rate=α·(1-β), momentum=β).
    """
    return Optimizer(
        "sgd", {"momentum": momentum, "nesterov": nesterov}, learning_rate,
        clipnorm=clipnorm, clipvalue=clipvalue, l2=l2, weight_decay=weight_decay, freeze=freeze,
    )


def adagrad(
    learning_rate: float | EpochSchedule | Schedule = 0.001,
    initial_accumulator_value: float = 0.1,
    epsilon: float = 1e-7,
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    l2: float | None = None,
    weight_decay: float | None = None,
    freeze: Iterable[str] = (),
) -> Optimizer:
    """Adagrad: G ← G + g² (G₀ = initial_accumulator_value), w ← w - η·g/√(G + ε), as optax.adagrad.

    The notes' η/√(Σg² + ε), except that the sum starts at 0.1 (Keras and optax; pass
    initial_accumulator_value=0 for the plain sum). Identical to Keras 3's Adagrad.
    """
    return Optimizer(
        "adagrad", {"initial_accumulator_value": initial_accumulator_value, "epsilon": epsilon}, learning_rate,
        clipnorm=clipnorm, clipvalue=clipvalue, l2=l2, weight_decay=weight_decay, freeze=freeze,
    )


def rmsprop(
    learning_rate: float | EpochSchedule | Schedule = 0.001,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-7,
    centered: bool = False,
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    l2: float | None = None,
    weight_decay: float | None = None,
    freeze: Iterable[str] = (),
) -> Optimizer:
    """RMSprop: S ← ρ·S + (1-ρ)·g² (S₀ = 0), u = η·g/√(S + ε), as optax.rmsprop(eps_in_sqrt=True).

    centered: ḡ ← ρ·ḡ + (1-ρ)·g and u = η·g/√(S - ḡ² + ε). momentum μ > 0: m ← μ·m + u,
    w ← w - m; otherwise w ← w - u. The notes' S = βS + (1-β)g² with β = ρ; the same rule,
    ε inside the root, as Keras 3's RMSprop.
    """
    return Optimizer(
        "rmsprop", {"rho": rho, "momentum": momentum, "epsilon": epsilon, "centered": centered}, learning_rate,
        clipnorm=clipnorm, clipvalue=clipvalue, l2=l2, weight_decay=weight_decay, freeze=freeze,
    )


def adadelta(
    learning_rate: float | EpochSchedule | Schedule = 1.0,
    rho: float = 0.95,
    epsilon: float = 1e-6,
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    l2: float | None = None,
    weight_decay: float | None = None,
    freeze: Iterable[str] = (),
) -> Optimizer:
    """Adadelta: E[g²] ← ρE[g²] + (1-ρ)g², Δ = √(E[Δ²] + ε)/√(E[g²] + ε)·g, E[Δ²] ← ρE[Δ²] + (1-ρ)Δ².

    w ← w - η·Δ (optax.scale_by_adadelta; η = 1 is Zeiler's rule). Identical to Keras 3's
    Adadelta.
    """
    return Optimizer(
        "adadelta", {"rho": rho, "epsilon": epsilon}, learning_rate,
        clipnorm=clipnorm, clipvalue=clipvalue, l2=l2, weight_decay=weight_decay, freeze=freeze,
    )


def adam(
    learning_rate: float | EpochSchedule | Schedule = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    l2: float | None = None,
    weight_decay: float | None = None,
    freeze: Iterable[str] = (),
) -> Optimizer:
    """Adam, as optax.adam(η, b1=β₁, b2=β₂, eps=ε): the notes' rule with bias correction.

    m ← β₁m + (1-β₁)g, v ← β₂v + (1-β₂)g², m̂ = m/(1-β₁ᵗ), v̂ = v/(1-β₂ᵗ), w ← w - η·m̂/(√v̂ + ε).
    Keras adds ε to the uncorrected √v, w ← w - η·√(1-β₂ᵗ)/(1-β₁ᵗ)·m/(√v + ε), which is this
    rule with ε/√(1-β₂ᵗ) in place of ε; Keras's default ε is 1e-7, the notes' (and here) 1e-8.
    With weight_decay λ it is AdamW: w ← w - η·(m̂/(√v̂ + ε) + λ·w).
    """
    return Optimizer(
        "adam", {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}, learning_rate,
        clipnorm=clipnorm, clipvalue=clipvalue, l2=l2, weight_decay=weight_decay, freeze=freeze,
    )


def adamw(
    learning_rate: float | EpochSchedule | Schedule = 1e-3,
    weight_decay: float = 0.004,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    l2: float | None = None,
    freeze: Iterable[str] = (),
) -> Optimizer:
    """AdamW, as optax.adamw(η, β₁, β₂, ε, weight_decay=λ): w ← w - η·(m̂/(√v̂ + ε) + λ·w).

    `adam` with decoupled weight decay λ (Keras's default 0.004; optax's is 1e-4) on every
    trainable leaf; the decay never enters m or v. Keras's AdamW differs only in ε (see `adam`).
    """
    return Optimizer(
        "adamw", {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}, learning_rate,
        clipnorm=clipnorm, clipvalue=clipvalue, l2=l2, weight_decay=weight_decay, freeze=freeze,
    )


_FACTORIES: dict[str, Callable[..., Optimizer]] = {
    "gd": gd,
    "sgd": sgd,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adadelta": adadelta,
    "adam": adam,
    "adamw": adamw,
}
