"""`GradientMonitor`: gradient statistics recorded inside the compiled training step (a StepHook), read once per epoch.

Every `every` steps the step also computes, from the gradient it already has: per-layer gradient,
parameter and update norms and finiteness; optionally per-example gradient norms (exact, by the
fast path of `jdl.diagnostics.per_example`, in inference mode and without the L2 penalty; from the
step's own backward pass when training mode is inference mode), the
gradient signal-to-noise ratio and noise scale (from per-example moments), and activation
statistics of the hidden layers. Values stay on the device until the end of the epoch.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jdl import _checks
from jdl._tree import call_order, layer_names
from jdl.diagnostics.probe import Settings, gated, shared_value_and_grad, statistics
from jdl.diagnostics import stats
from jdl.diagnostics.per_example.cache import LRUCache
from jdl.diagnostics.recorder import MonitorLog
from jdl.train import distributed
from jdl.train.callbacks.base import Callback
from jdl.train.hooks import StepContext
from jdl.train.objective import batch_size


@dataclasses.dataclass(frozen=True)
class MonitorHook:
    """The GradientMonitor's step hook: `probe.Settings` run by the probe's functions (hashable: it keys the compiled step)."""

    settings: Settings

    def value_and_grad(self, context: StepContext) -> tuple | None:
        """The step's own pass, when it can also give the per-example norms and activations; else None.

        That is when training mode is inference mode: no batch statistics (empty model state), the
        training forward traces to the same jaxpr as the inference forward (no active dropout,
        sampling or other train-only branch), and every layer is covered by the fast path. Examples
        must not interact other than through batch statistics (a parameter-free mix such as
        x - x.mean(0) is not detected).
        """
        state = context.state
        if not self.settings.wants_examples or state.model_state:
            return None
        shapes = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)),
                                        (state.params, context.x, state.rng))

        def traced(train):
            def forward(p, xs, key):
                return context.objective.forward(state.model, p, state.model_state, xs, train=train, key=key)

            try:
                return str(jax.make_jaxpr(forward)(*shapes))
            except Exception:  # e.g. a random stream the inference forward cannot have: not shareable
                return None

        training = traced(True)
        if training is None or training != traced(False):
            return None
        return shared_value_and_grad(context.cost_fn, context.example_cost, state.params,
                                               (context.x, context.y), batch_size(context.x))

    def record(self, context: StepContext, extra: Any) -> dict[str, Any]:
        """Statistics of this step when step % every == 0, zeros otherwise (and "on" says which).

        extra: (SharedPass, captures) when the step's gradient came from `value_and_grad`, else None.
        """
        state, settings = context.state, self.settings
        _remember_order(context)

        def preactivations():
            return stats.preactivations(state.apply_fn, state.variables, context.x, **dict(context.objective.eval_kwargs))

        def compute():
            out = statistics(settings, state.params, context.grads, context.example_cost,
                                       (context.x, context.y), context.w, extra, preactivations)
            out["update_ratio"] = stats.update_ratios(state.params, context.new_state.params)
            return out

        values = gated(settings.every, state.step, compute)
        if settings.per_example:
            values["index"] = context.index if context.index is not None else jnp.arange(context.w.shape[0])
        return values


Probe = MonitorHook  # the name of earlier releases

_ORDERS = LRUCache(64)


def _order_key(state: Any) -> tuple[Any, ...]:
    return state.model, state.input_spec, jax.tree_util.tree_structure(state.params)


def _remember_order(context: StepContext) -> None:
    """The layers' call order of the state's model, found at trace time (abstractly) and kept for `layer_order`."""
    state = context.state

    def build():
        def forward(p):
            return context.objective.forward(state.model, p, state.model_state, context.x, train=False, key=state.rng)

        try:
            return layer_names(state.params, call_order(forward, state.params))
        except Exception:  # a model that cannot run abstractly here: natural order
            return layer_names(state.params)

    _ORDERS.get(_order_key(state), build)


def layer_order(state: Any) -> list[str] | None:
    """The call order of state's layers remembered by a monitored step's trace, or None."""
    key = _order_key(state)
    return _ORDERS.get(key, lambda: None) if key in _ORDERS else None


class GradientMonitor(Callback):
    """Record gradient statistics every `every` steps during `Trainer.fit`, inside the compiled step.

    per_example: exact per-example gradient norms of every monitored batch (and the examples with
    the largest ones); moments: GSNR per layer and the gradient noise scale B_simple; activations:
    the model's hidden activation by name ("relu", "sigmoid", ...; default: the model's
    `activation` attribute when it has one) for saturation and dead-unit fractions.
    share_backward: take the per-example norms from the training step's own backward pass when
    training mode equals inference mode (no dropout or sampling, no batch statistics) and every
    layer is covered by the fast path (a few percent of a step instead of a second pass). It
    assumes examples do not interact in the forward pass other than through batch statistics;
    set False for a model that mixes examples in another way.
    top_k, max_records: bounds of what is kept (see `jdl.diagnostics.recorder.MonitorLog`).
    The statistics are `jdl.diagnostics.probe`'s, computed by the same functions.
    After fit: `records` (one dict per kept monitored step, layers in call order), `layers`,
    `top_examples` ([{"index", "norm", "step", "epoch", "count"}] merged by index), `warnings`.
    """

    def __init__(self, every: int = 1, per_example: bool = True, moments: bool = False,
                 activations: str | None | bool = True, top_k: int = 10, share_backward: bool = True,
                 max_records: int = 2000):
        _checks.check_number(every, "every", integer=True, positive=True)
        _checks.check_number(top_k, "top_k", integer=True, positive=True)
        for name, value in (("per_example", per_example), ("moments", moments), ("share_backward", share_backward)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {_checks.describe(value)}")
        self.every, self.per_example, self.moments, self.top_k = every, per_example, moments, top_k
        self.share_backward = share_backward
        self.activations = activations
        self.log = MonitorLog(every, top_k, max_records)
        self._pending: list[Any] = []
        self._epoch, self._order = 0, None
        self.probe: MonitorHook | None = None

    holds_state = False

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.log.records

    @property
    def top_examples(self) -> list[dict[str, Any]]:
        return self.log.top_examples

    @property
    def warnings(self) -> list[str]:
        return self.log.warnings

    @property
    def layers(self) -> list[str]:
        return self.log.layers

    def step_hook(self, model: Any) -> MonitorHook:
        """The hook for `model`, run inside the compiled step (resolves the activation name from the model)."""
        name = self.activations
        if name is True:
            name = getattr(model, "activation", None)
            name = name if isinstance(name, str) else None
        elif name is False:
            name = None
        self.probe = MonitorHook(Settings(self.every, self.per_example, self.moments, name,
                                                    self.share_backward))
        return self.probe

    def on_step_records(self, records):
        self._pending.append(records)

    def on_epoch_begin(self, epoch, state, logs):
        self._epoch = epoch

    def on_epoch_end(self, epoch, state, logs):
        self._order = layer_order(state) or self._order
        self._flush(epoch)
        self.log.check_warnings()

    def _flush(self, epoch: int) -> None:
        """Add the records of the dispatches since the last flush, tagged with `epoch`."""
        pending, self._pending = distributed.to_host(self._pending), []
        for chunk in pending:
            self.log.add_chunk(epoch, chunk, self._order)

    def state_dict(self) -> dict[str, Any]:
        """What BackupAndRestore saves, so a resumed run's report covers the whole run (mid-epoch: records not yet flushed too)."""
        self._flush(self._epoch)
        return {**self.log.state_dict(), "epoch": self._epoch}

    def load_state_dict(self, state) -> None:
        self.log.load_state_dict(state)
        self._epoch = int(state.get("epoch", 0))

    def to_dict(self) -> dict[str, Any]:
        """Every kept number (JSON-able): what monitor.json holds."""
        return self.log.to_dict()
