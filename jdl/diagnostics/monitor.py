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
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl._tree import layer_name
from jdl.diagnostics import stats
from jdl.diagnostics.per_example import core
from jdl.train.callbacks.base import Callback
from jdl.train.hooks import StepContext
from jdl.train.objective import batch_size


@dataclasses.dataclass(frozen=True)
class Probe:
    """The GradientMonitor's step hook: what the step records and how often (hashable: it keys the compiled step)."""

    every: int = 1
    per_example: bool = True
    moments: bool = False
    activations: str | None = None
    share_backward: bool = True

    def value_and_grad(self, context: StepContext) -> tuple | None:
        """The step's own pass, when it can also give the per-example norms and activations; else None.

        That is when training mode is inference mode: no batch statistics (empty model state), the
        training forward traces to the same jaxpr as the inference forward (no active dropout,
        sampling or other train-only branch), and every layer is covered by the fast path. Examples
        must not interact other than through batch statistics (a parameter-free mix such as
        x - x.mean(0) is not detected).
        """
        state = context.state
        wanted = self.per_example or self.activations is not None
        if not (wanted and self.share_backward) or state.model_state:
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
        plan = core.make_plan(context.example_cost, state.params, (context.x, context.y), "auto")
        shared = core.shared_pass(context.cost_fn, state.params, plan, batch_size(context.x))
        if shared is None:
            return None
        (cost, aux), grads, captures = shared.value_and_grad(context.cost_fn, state.params)
        return (cost, aux), grads, (shared, captures)

    def record(self, context: StepContext, extra: Any) -> dict[str, Any]:
        """Statistics of this step when step % every == 0, zeros otherwise (and "on" says which).

        extra: (SharedPass, captures) when the step's gradient came from `value_and_grad`, else None.
        """
        state = context.state
        on = state.step % self.every == 0
        compute = lambda: self._compute(context, extra)  # noqa: E731
        if self.every == 1:
            values = compute()
        else:
            shapes = jax.eval_shape(compute)
            zeros = lambda: jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)  # noqa: E731
            values = jax.lax.cond(on, compute, zeros)
        values["on"] = on
        values["step"] = state.step
        if self.per_example:
            values["index"] = context.index if context.index is not None else jnp.arange(context.w.shape[0])
        return values

    def _compute(self, context: StepContext, shared: Any) -> dict[str, Any]:
        state, grads, w = context.state, context.grads, context.w
        out: dict[str, Any] = {
            "grad_norm": stats.layer_norms(grads),
            "param_norm": stats.layer_norms(state.params),
            "update_ratio": stats.update_ratios(state.params, context.new_state.params),
            "finite": {name: jnp.all(jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
                       for name, leaves in _layer_leaves(grads).items()},
        }
        if shared is not None and self.per_example:
            out["example_norm"] = shared[0].example_norms(shared[1], w)
        if (self.per_example and shared is None) or self.moments:
            batch = (context.x, context.y)
            plan = core.make_plan(context.example_cost, state.params, batch, "auto")
            if self.per_example and shared is None:
                leaf_sq = core.leaf_sq_norms(context.example_cost, state.params, batch, plan)
                out["example_norm"] = jnp.where(w > 0, jnp.sqrt(sum(leaf_sq[1:], leaf_sq[0])), 0.0)
            if self.moments:
                keep = w > 0
                total, squares = core.moments(context.example_cost, state.params, batch, plan, mask=keep)
                count = jnp.maximum(jnp.sum(keep), 2)
                out["gsnr"] = stats.gsnr(total, squares, count)
                out["noise_scale"] = stats.noise_scale(total, squares, count)
                trace = sum(jnp.sum(v) for v in jax.tree_util.tree_leaves(stats.gradient_variance(total, squares, count)))
                out["noise_trace"] = trace  # tr(Σ) and |G|² (unbiased), for the report's running averages
                out["noise_signal"] = sum(jnp.sum((t / count) ** 2) for t in jax.tree_util.tree_leaves(total)) - trace / count
        if self.activations is not None:
            if shared is not None:
                z = shared[0].preactivations(shared[1])
            else:
                z = stats.preactivations(state.apply_fn, state.variables, context.x,
                                         **dict(context.objective.eval_kwargs))
            out["activations"] = {name: stats.activation_stats(value, self.activations) for name, value in z.items()}
        return out


def _layer_leaves(tree: Any) -> dict[str, list[jax.Array]]:
    out: dict[str, list[jax.Array]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        out.setdefault(layer_name(path), []).append(leaf)
    return out


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
    After fit: `records` (one dict per monitored step), `top_examples`, `warnings` in plain words.
    """

    def __init__(self, every: int = 1, per_example: bool = True, moments: bool = False,
                 activations: str | None | bool = True, top_k: int = 10, share_backward: bool = True):
        _checks.check_number(every, "every", integer=True, positive=True)
        _checks.check_number(top_k, "top_k", integer=True, positive=True)
        for name, value in (("per_example", per_example), ("moments", moments), ("share_backward", share_backward)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {_checks.describe(value)}")
        self.every, self.per_example, self.moments, self.top_k = every, per_example, moments, top_k
        self.share_backward = share_backward
        self.activations = activations
        self.records: list[dict[str, Any]] = []
        self.top_examples: list[tuple[float, int, int]] = []
        self.warnings: list[str] = []
        self._pending: list[Any] = []
        self._warned: set[str] = set()
        self.probe: Probe | None = None

    holds_state = False

    def step_hook(self, model: Any) -> Probe:
        """The probe for `model`, run inside the compiled step (resolves the activation name from the model)."""
        from jdl.nn import activations as activations_lib

        name = self.activations
        if name is True:
            name = getattr(model, "activation", None)
            name = name if isinstance(name, str) else None
        elif name is False:
            name = None
        elif name is not None:
            activations_lib.get(name)
        self.probe = Probe(self.every, self.per_example, self.moments, name, self.share_backward)
        return self.probe

    def on_step_records(self, records):
        self._pending.append(records)

    def on_epoch_end(self, epoch, state, logs):
        pending, self._pending = jax.device_get(self._pending), []
        for chunk in pending:
            on = np.asarray(chunk["on"]).reshape(-1)
            for i in np.flatnonzero(on):
                row = jax.tree_util.tree_map(lambda a: np.asarray(a)[i] if np.ndim(a) else np.asarray(a), chunk)
                self._append(epoch, row)
        self._check_warnings(epoch)

    def _append(self, epoch: int, row: dict[str, Any]) -> None:
        record: dict[str, Any] = {"epoch": epoch, "step": int(row["step"])}
        for key in ("grad_norm", "param_norm", "update_ratio", "gsnr"):
            if key in row:
                record[key] = {k: float(v) for k, v in row[key].items()}
        record["finite"] = {k: bool(v) for k, v in row["finite"].items()}
        for key in ("noise_scale", "noise_signal", "noise_trace"):
            if key in row:
                record[key] = float(row[key])
        if "activations" in row:
            record["activations"] = {k: {s: float(v) for s, v in d.items()} for k, d in row["activations"].items()}
        if "example_norm" in row:
            norms, index = np.asarray(row["example_norm"]), np.asarray(row["index"])
            valid = norms > 0
            record["example_norm"] = norms[valid].tolist()
            record["example_index"] = index[valid].tolist()
            for value, i in zip(norms[valid], index[valid]):
                self.top_examples.append((float(value), int(i), record["step"]))
            self.top_examples = sorted(self.top_examples, reverse=True)[: self.top_k]
        self.records.append(record)

    def _check_warnings(self, epoch: int) -> None:
        """Plain-language warnings, each given once: a non-finite layer, vanishing layers, dead ReLUs, growing norms."""
        new = []
        for record in self.records:
            bad = [k for k, ok in record["finite"].items() if not ok]
            if bad:
                new.append(("nonfinite", f"the gradient of layer {bad[0]} first went non-finite at step {record['step']}"))
                break
        if self.records:
            last = self.records[-1]["grad_norm"]
            finite = {k: v for k, v in last.items() if math.isfinite(v) and v > 0}
            if len(finite) > 1:
                top_name, top = max(finite.items(), key=lambda kv: kv[1])
                for name, value in finite.items():
                    if value < 1e-3 * top:
                        new.append((f"vanishing {name}", f"layer {name}'s gradient is {math.log10(top / value):.0f} orders of magnitude "
                                   f"below layer {top_name}'s: it is barely learning (vanishing gradient)"))
            dead = {k: v["dead"] for k, v in self.records[-1].get("activations", {}).items() if v["dead"] > 0.5}
            for name, fraction in dead.items():
                new.append((f"dead {name}", f"{100 * fraction:.0f}% of layer {name}'s ReLUs are dead (zero for every example of a batch)"))
            totals = [math.sqrt(sum(v * v for v in r["grad_norm"].values())) for r in self.records]
            if len(totals) >= 4 and all(math.isfinite(t) for t in totals):
                quarter = max(1, len(totals) // 4)
                early, late = np.median(totals[:quarter]), np.median(totals[-quarter:])
                if late > 100 * early:
                    new.append(("exploding", f"the gradient norm grew {late / early:.0f}-fold during training (exploding): "
                               "consider gradient clipping (clipnorm) or a smaller learning rate"))
        for key, message in new:
            if key not in self._warned:
                self._warned.add(key)
                self.warnings.append(message)
                warnings.warn(f"GradientMonitor: {message}", RuntimeWarning, stacklevel=2)

    def state_dict(self) -> dict[str, Any]:
        """What BackupAndRestore saves, so a resumed run's report covers the whole run."""
        return {**self.to_dict(), "warned": sorted(self._warned)}

    def load_state_dict(self, state) -> None:
        self.records = list(state.get("records", []))
        self.warnings = list(state.get("warnings", []))
        self._warned = set(state.get("warned", []))
        self.top_examples = [(t["norm"], t["index"], t["step"]) for t in state.get("top_examples", [])]

    def to_dict(self) -> dict[str, Any]:
        """Every recorded number (JSON-able)."""
        return {"every": self.every, "records": self.records, "warnings": self.warnings,
                "top_examples": [{"norm": v, "index": i, "step": s} for v, i, s in self.top_examples]}
