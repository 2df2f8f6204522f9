"""Optimizers, epoch schedules, clipping, L2, freezing and the EWMA of the course (SPEC.md §6–7), on Optax.

An `Optimizer` describes an optimizer (name, hyperparameters, learning rate η, options);
`Optimizer.build(steps_per_epoch)` turns it into one `optax.GradientTransformation` that
applies, to the gradient g of every trainable leaf w:

    clipvalue (optax.clip) → clipnorm (optax.clip_by_global_norm) → the optimizer's scaling
    → + weight_decay·w (optax.add_decayed_weights) → ×(−η) (optax.scale_by_learning_rate)

wrapped in `optax.inject_hyperparams`, so that η lives in the optimizer state
(`learning_rate(state)`, `set_learning_rate(state, η)`), and, when parameters are frozen, in
`optax.partition` (optax.multi_transform) with `optax.set_to_zero` for the frozen leaves.
Parameter paths are the '/'-joined keys of the params pytree, e.g. "Dense_0/kernel".
Schedules are counted in epochs from 0 (`EpochSchedule`), the rate being constant within an epoch.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdl import _checks

__all__ = [
    "EpochSchedule",
    "OPTIONS",
    "Optimizer",
    "adadelta",
    "adagrad",
    "adam",
    "adamw",
    "as_optimizer",
    "cosine",
    "ewma",
    "exponential",
    "frozen_mask",
    "gd",
    "get",
    "inverse_sqrt",
    "inverse_time",
    "l2_penalty",
    "learning_rate",
    "names",
    "parameter_paths",
    "rmsprop",
    "set_learning_rate",
    "sgd",
    "step_decay",
    "steps_per_epoch",
]

OPTIONS = ("clipnorm", "clipvalue", "l2", "weight_decay", "freeze")

Schedule = Callable[[Any], Any]
Transformation = optax.GradientTransformation
_INJECT_STATES = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)


# -- argument checks --------------------------------------------------------------------------


def _unit_interval(value: Any, name: str) -> None:
    """Decay rates (momentum, rho, beta_1, beta_2, beta) must lie in [0, 1)."""
    _checks.check_number(value, name, nonnegative=True)
    if not value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def _nonnegative(value: Any, name: str) -> None:
    _checks.check_number(value, name, nonnegative=True)


def _boolean(value: Any, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_checks.describe(value)}")


_HYPER_CHECKS: dict[str, Callable[[Any, str], None]] = {
    "momentum": _unit_interval,
    "rho": _unit_interval,
    "beta_1": _unit_interval,
    "beta_2": _unit_interval,
    "epsilon": _nonnegative,
    "initial_accumulator_value": _nonnegative,
    "nesterov": _boolean,
    "centered": _boolean,
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


def _patterns(patterns: Any, name: str) -> tuple[str, ...]:
    """Glob patterns as a tuple of non-empty strings (a single string is one pattern)."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    if not isinstance(patterns, Iterable) or hasattr(patterns, "shape"):
        raise TypeError(f"{name} must be a sequence of glob patterns (str), got {_checks.describe(patterns)}")
    patterns = tuple(patterns)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"{name} must hold glob patterns (str), got {_checks.describe(pattern)}")
        if not pattern.strip("/"):
            raise ValueError(f"{name} must hold non-empty glob patterns, got {pattern!r}")
    return patterns


# -- parameter paths, freezing, L2 ------------------------------------------------------------


def _path(keys: Any) -> str:
    return jax.tree_util.keystr(keys, simple=True, separator="/")


def parameter_paths(params: Any) -> list[str]:
    """The '/'-joined path of every leaf of `params`, e.g. ["Dense_0/bias", "Dense_0/kernel"]."""
    return [_path(keys) for keys, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


@functools.lru_cache(maxsize=None)
def _glob(pattern: str) -> re.Pattern[str]:
    """Regex of a path glob: '*' and '?' stay within one '/'-segment, '**' crosses segments.

    The pattern also matches everything below a matched path, so "Dense_0" freezes the module.
    """
    parts, i = [], 0
    pattern = pattern.rstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        else:
            parts.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i])))
            i += 1
    return re.compile("".join(parts) + "(?:/.*)?")


def frozen_mask(params: Any, patterns: Any) -> Any:
    """Pytree of bools like `params`: True where the leaf's path matches any glob pattern.

    Paths are '/'-joined keys ("Dense_0/kernel"); '*' and '?' match within one segment, '**'
    across segments ("encoder/**", "**/bias"), and a pattern matching a module's path matches
    all its leaves ("Dense_0" = "Dense_0/**").
    """
    regexes = [_glob(p) for p in _patterns(patterns, "patterns")]
    return jax.tree_util.tree_map_with_path(
        lambda keys, _: any(r.fullmatch(_path(keys)) for r in regexes), params
    )


def _freeze_labels(params: Any, patterns: tuple[str, ...]) -> Any:
    return jax.tree.map(lambda frozen: "frozen" if frozen else "trainable", frozen_mask(params, patterns))


def _kernels(params: Any) -> list[jax.Array]:
    """Leaves whose path ends in "kernel" (Flax Dense/Conv weights; biases and the rest excluded)."""
    return [
        leaf
        for keys, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
        if _path(keys).rsplit("/", 1)[-1] == "kernel"
    ]


def l2_penalty(params: Any, l2: float, m: Any) -> jax.Array:
    """The notes' L2 penalty λ/(2m)·Σ‖W‖² over the kernel leaves (paths ending in "kernel").

    Added to the cost J with m the number of training examples (the notes' m, the same for every
    batch and for evaluation), its gradient is (λ/m)·W on kernels, 0 elsewhere.
    Keras's `kernel_regularizer=l2(c)` adds c·Σ W², i.e. c = λ/(2m). Returns a scalar.
    """
    _checks.check_number(l2, "l2", nonnegative=True)
    if hasattr(m, "shape"):
        if tuple(m.shape) != ():
            raise ValueError(f"m must be a scalar (the number of training examples), got {_checks.describe(m)}")
        if _checks.is_concrete(m):
            _checks.check_number(float(m), "m", positive=True)
    else:
        _checks.check_number(m, "m", positive=True)
    kernels = _kernels(params)
    if not kernels:
        return jnp.zeros(())
    total = sum(jnp.sum(jnp.square(k)) for k in kernels)
    return l2 / (2 * m) * total


# -- epoch schedules --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class EpochSchedule:
    """A learning rate per epoch, η = fn(epoch) with epoch = 0, 1, 2, ...; constant within an epoch.

    Like the schedule of Keras' LearningRateScheduler (set at the start of each epoch), but a
    function of the epoch only; `fn` must accept an integer array (it runs inside jit).
    """

    fn: Schedule
    name: str = "custom"
    params: Mapping[str, float] = dataclasses.field(default_factory=dict, hash=False)

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


# -- the optimizer ----------------------------------------------------------------------------


def _scaling(name: str, h: Mapping[str, Any]) -> tuple[list[Transformation], list[Transformation]]:
    """The optimizer's own transformations before and after optax.scale_by_learning_rate."""
    if name in ("gd", "sgd"):
        momentum = h.get("momentum", 0.0)
        return ([optax.trace(decay=momentum, nesterov=h["nesterov"])] if momentum else []), []
    if name == "adagrad":
        return [optax.scale_by_rss(initial_accumulator_value=h["initial_accumulator_value"], eps=h["epsilon"])], []
    if name == "rmsprop":
        scale = optax.scale_by_stddev if h["centered"] else optax.scale_by_rms
        after = [optax.trace(decay=h["momentum"])] if h["momentum"] else []
        return [scale(decay=h["rho"], eps=h["epsilon"], initial_scale=0.0, eps_in_sqrt=True)], after
    if name == "adadelta":
        return [optax.scale_by_adadelta(rho=h["rho"], eps=h["epsilon"])], []
    return [optax.scale_by_adam(b1=h["beta_1"], b2=h["beta_2"], eps=h["epsilon"])], []


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

    Stateful pieces: `learning_rate(opt_state)`, `set_learning_rate(opt_state, η)`.
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

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name must be an optimizer name (str), got {_checks.describe(self.name)}")
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
            "freeze": _patterns(option["freeze"], "freeze"),
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

    def build(self, steps_per_epoch: int | None = None) -> optax.GradientTransformation:
        """The optax transformation; an EpochSchedule needs `steps_per_epoch` to count steps in epochs.

        A raw transformation (`as_optimizer`) is returned unchanged. The result is cached, so
        building twice gives the same object (states built from it share compiled steps).
        """
        if steps_per_epoch is not None:
            _checks.check_number(steps_per_epoch, "steps_per_epoch", integer=True, positive=True)
        if self.transformation is not None:
            return self.transformation
        key = steps_per_epoch if isinstance(self.learning_rate, EpochSchedule) else None
        if key not in self._built:
            self._built[key] = self._build(steps_per_epoch)
        return self._built[key]

    def _build(self, steps_per_epoch: int | None) -> optax.GradientTransformation:
        rate = self.learning_rate
        if isinstance(rate, EpochSchedule):
            if steps_per_epoch is None:
                raise ValueError(
                    f"steps_per_epoch must be given to build an optimizer whose learning_rate is an "
                    f"EpochSchedule ({rate!r} counts epochs), got None"
                )
            rate = rate.to_optax(steps_per_epoch)
        tx = optax.inject_hyperparams(self._transformation)(learning_rate=rate)
        if self.freeze:
            labels = functools.partial(_freeze_labels, patterns=self.freeze)
            tx = optax.partition({"trainable": tx, "frozen": optax.set_to_zero()}, labels)
        return tx

    def _transformation(self, learning_rate: Any) -> optax.GradientTransformation:
        """The chain at learning rate η = `learning_rate` (a value: inject_hyperparams feeds it)."""
        before, after = _scaling(self.name, self.hyperparams)
        parts = []
        if self.clipvalue is not None:
            parts.append(optax.clip(self.clipvalue))
        if self.clipnorm is not None:
            parts.append(optax.clip_by_global_norm(self.clipnorm))
        parts += before
        if self.weight_decay and not after:
            parts.append(optax.add_decayed_weights(self.weight_decay))
        parts.append(optax.scale_by_learning_rate(learning_rate))
        parts += after
        if self.weight_decay and after:
            parts.append(optax.add_decayed_weights(-learning_rate * self.weight_decay))
        return optax.chain(*parts)

    def check_params(self, params: Any) -> None:
        """ValueError when a freeze pattern matches no parameter, or l2 is set and there is no kernel."""
        paths = parameter_paths(params)
        if not paths:
            raise ValueError(f"params must hold at least one array, got {_checks.describe(params)}")
        for pattern in self.freeze:
            if not any(_glob(pattern).fullmatch(path) for path in paths):
                shown = ", ".join(paths[:20]) + (", ..." if len(paths) > 20 else "")
                raise ValueError(f"freeze pattern {pattern!r} matches no parameter; the parameters are: {shown}")
        if self.l2 and not _kernels(params):
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


def names() -> list[str]:
    """The optimizer names `get` accepts."""
    return sorted(_FACTORIES)


def as_optimizer(x: Any) -> Optimizer:
    """An Optimizer from an Optimizer (as is), a name, or a raw optax.GradientTransformation.

    A raw transformation is wrapped so that `build` returns it unchanged; it takes no options,
    and `learning_rate(state)` is None for it unless it was made with optax.inject_hyperparams.
    """
    if isinstance(x, Optimizer):
        return x
    if isinstance(x, str):
        return get(x)
    if isinstance(x, optax.GradientTransformation):
        return Optimizer("custom", transformation=x)
    hint = " (call the optax factory, e.g. optax.adam(1e-3))" if callable(x) else ""
    raise TypeError(
        f"optimizer must be a name, an Optimizer or an optax.GradientTransformation{hint}, got {_checks.describe(x)}"
    )


def get(identifier: str | Optimizer | optax.GradientTransformation, **options: Any) -> Optimizer:
    """Resolve a Keras-style optimizer name; keywords go to its factory, e.g. get("sgd", momentum=0.9)."""
    if not isinstance(identifier, str):
        if options:
            raise TypeError(f"optimizer options {sorted(options)} can only be given with an optimizer name")
        return as_optimizer(identifier)
    factory = _checks.lookup("optimizer", identifier, _FACTORIES)
    _checks.bind_options("optimizer", identifier, factory, options, skip=0)
    return factory(**options)


# -- the learning rate in the optimizer state -------------------------------------------------


def _is_inject(node: Any) -> bool:
    return isinstance(node, _INJECT_STATES)


def _injected(opt_state: Any) -> list[Any]:
    """The inject_hyperparams states holding a learning rate, in tree order."""
    return [
        node
        for node in jax.tree_util.tree_leaves(opt_state, is_leaf=_is_inject)
        if _is_inject(node) and "learning_rate" in node.hyperparams
    ]


def learning_rate(opt_state: Any) -> jax.Array | None:
    """The learning rate in `opt_state` (works inside jit); None when the state holds none.

    It is the rate of the latest update: with a constant η (or after `set_learning_rate`) the
    rate the next update uses; with a schedule, the rate the last update used (schedule(k-1)
    after k updates, schedule(0) before the first), e.g. the epoch's rate at the epoch's end.
    The state is searched through chains, partitions and masks; the first rate found is returned.
    """
    states = _injected(opt_state)
    return states[0].hyperparams["learning_rate"] if states else None


def set_learning_rate(opt_state: Any, value: Any) -> Any:
    """A new optimizer state whose next updates use learning rate `value` (a scalar ≥ 0).

    ValueError when the rate is scheduled (inject_hyperparams recomputes it every step, so,
    as in Keras, a callback cannot set it) or when the state holds no injected learning rate.
    """
    if hasattr(value, "shape"):
        if tuple(value.shape) != ():
            raise ValueError(f"value must be a scalar learning rate, got {_checks.describe(value)}")
        if _checks.is_concrete(value):
            _checks.check_number(float(value), "value", nonnegative=True)
    else:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"value must be a learning rate (a number >= 0), got {_checks.describe(value)}")
        _checks.check_number(value, "value", nonnegative=True)
    states = _injected(opt_state)
    if not states:
        raise ValueError(
            "opt_state holds no learning rate to set: build the optimizer with jdl.optim (or wrap a raw "
            "optax transformation in optax.inject_hyperparams)"
        )
    if any("learning_rate" in getattr(s, "hyperparams_states", {}) for s in states):
        raise ValueError(
            "the learning rate is a schedule and cannot be set in opt_state (as in Keras, a callback "
            "cannot set a scheduled rate); build the optimizer with a constant learning_rate"
        )

    def replace(node: Any) -> Any:
        if _is_inject(node) and "learning_rate" in node.hyperparams:
            old = jnp.asarray(node.hyperparams["learning_rate"])
            new = jnp.asarray(value, dtype=old.dtype)
            return node._replace(hyperparams={**node.hyperparams, "learning_rate": new})
        return node

    return jax.tree_util.tree_map(replace, opt_state, is_leaf=_is_inject)


# -- helpers of the notes ---------------------------------------------------------------------


def ewma(values: Any, beta: float = 0.9, bias_correction: bool = True, *, start: str = "zero") -> jax.Array:
    """Exponentially weighted average along axis 0: v_t = β·v_{t-1} + (1-β)·a_t. (T, ...) -> (T, ...).

    start="zero": v_0 = 0, and with bias_correction v_t / (1 - β^t) (t = 1..T).
    start="first": v_1 = a_1 (the notes' golden: β = 0.95 gives v_2 = 0.95·a_1 + 0.05·a_2);
    there is no zero-start bias, so bias_correction does not apply. A jax.lax.scan; jit-able.
    """
    values = _checks.as_array(values, "values", dtype_kind="float")
    if values.ndim < 1:
        raise ValueError(f"values must have shape (T, ...) with a time axis first, got {_checks.describe(values)}")
    _unit_interval(beta, "beta")
    _boolean(bias_correction, "bias_correction")
    _checks.check_choice(start, "start", ("zero", "first"))
    if values.shape[0] == 0:
        return values

    def step(v: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
        v = beta * v + (1.0 - beta) * a
        return v, v

    if start == "first":
        _, rest = jax.lax.scan(step, values[0], values[1:])
        return jnp.concatenate([values[:1], rest])
    _, averages = jax.lax.scan(step, jnp.zeros_like(values[0]), values)
    if not bias_correction:
        return averages
    t = jnp.arange(1, values.shape[0] + 1, dtype=values.dtype)
    return averages / (1.0 - beta**t).reshape((-1,) + (1,) * (values.ndim - 1))


def steps_per_epoch(n: int, batch_size: int | None) -> int:
    """Iterations per epoch, ⌈n / batch_size⌉; batch_size None (full batch) gives 1.

    SPEC goldens: 100000 / 1000 = 100, 34000 / 500 = 68, 1000 / 500 = 2.
    """
    _checks.check_number(n, "n", integer=True, positive=True)
    if batch_size is None:
        return 1
    _checks.check_number(batch_size, "batch_size", integer=True, positive=True)
    return int(-(-int(n) // int(batch_size)))
