"""`probe`: jdl's gradient diagnostics in any training loop, used in place of `jax.value_and_grad`.

    probed = jdl.diagnostics.probe(loss_fn, every=10, moments=True, activations="relu")
    (loss, grads, stats) = probed(params, batch, step)          # inside your jax.jit step

loss_fn(params, x, y, *args) returns the per-example losses ℓ (n,); the cost is their weighted
mean Σ_i w_i ℓ_i / Σ_i w_i (w = 1 for a batch (x, y), the third entry of (x, y, w) otherwise)
plus `penalty(params)` when given, and grads = ∇_θ cost. args (a dropout key, batch statistics)
are passed through; with has_aux loss_fn returns (losses, aux) and probed returns ((loss, aux),
grads, stats). stats, every `every` steps (zeros and on=False in between), keyed by layer as
`GradientMonitor` keys them:

    grad_norm, param_norm  {layer: ‖·‖₂}           finite {layer: bool}
    example_norm (n,)      ‖∇_θ ℓ_i‖₂, 0 where w_i = 0 (per_example)
    gsnr {layer}, noise_scale, noise_signal (|G|²), noise_trace (tr Σ)   from per-example moments (moments)
    activations {layer: {mean, std, saturated, dead}}   (activations="relu", "tanh", ...)
    on, step, index (n,)

Per-example norms come from the step's own backward pass when every parameter is covered by
the fast path and no layer mixes examples (no BatchNorm in training mode); otherwise from a pass
over `example_loss_fn` (default: loss_fn on a batch of one). `GradientMonitor` records through
the same functions (`shared_value_and_grad`, `statistics`, `gated`): one code path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl._tree import call_order, layer_name, layer_names
from jdl.diagnostics import stats as stats_lib
from jdl.diagnostics.per_example import core
from jdl.diagnostics.per_example.contract import OfBatch, check_params, contract_error

METHODS = ("auto", "fast", "vmap")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a probe records and how often (hashable: it keys compiled steps)."""

    every: int = 1
    per_example: bool = True
    moments: bool = False
    activations: str | None = None
    share_backward: bool = True
    method: str = "auto"

    def __post_init__(self):
        _checks.check_number(self.every, "every", integer=True, positive=True)
        for name in ("per_example", "moments", "share_backward"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {_checks.describe(getattr(self, name))}")
        if self.activations is not None:
            from jdl.nn import activations as activations_lib

            if not isinstance(self.activations, str):
                raise TypeError(f"activations must be an activation name such as 'relu' or None, "
                                f"got {_checks.describe(self.activations)}")
            activations_lib.get(self.activations)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")

    @property
    def wants_examples(self) -> bool:
        """True when the step's backward pass should also capture what per-example norms and activations need."""
        return self.share_backward and (self.per_example or self.activations is not None)


# -- the shared functions: the probe and GradientMonitor both record through these ------------------


def shared_value_and_grad(cost_fn: Callable[[Any], tuple[jax.Array, Any]], example_loss: Callable[..., jax.Array],
                          params: Any, batch: tuple[Any, ...], n: int) -> tuple | None:
    """((cost, aux), grads, (SharedPass, captures)) of cost_fn in one pass that also captures per-example terms; or None.

    None when a parameter is not covered by the fast path or cost_fn calls its layers otherwise
    than example_loss does (see `per_example.shared_pass`).
    """
    plan = core.make_plan(example_loss, params, batch, "auto")
    shared = core.shared_pass(cost_fn, params, plan, n)
    if shared is None:
        return None
    (cost, aux), grads, captures = shared.value_and_grad(cost_fn, params)
    return (cost, aux), grads, (shared, captures)


def _layer_leaves(tree: Any) -> dict[str, list[jax.Array]]:
    out: dict[str, list[jax.Array]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        out.setdefault(layer_name(path), []).append(leaf)
    return out


def statistics(settings: Settings, params: Any, grads: Any, example_loss: Callable[..., jax.Array],
               batch: tuple[Any, ...], w: jax.Array, shared: Any,
               preactivations: Callable[[], dict[str, jax.Array]]) -> dict[str, Any]:
    """One step's statistics (see the module docstring) from its params, gradient and batch (x, y) with weights w (n,).

    shared: (SharedPass, captures) from `shared_value_and_grad`, or None; preactivations() gives
    {layer: z} by another forward pass when shared is None.
    """
    out: dict[str, Any] = {
        "grad_norm": stats_lib.layer_norms(grads),
        "param_norm": stats_lib.layer_norms(params),
        "finite": {name: jnp.all(jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
                   for name, leaves in _layer_leaves(grads).items()},
    }
    if shared is not None and settings.per_example:
        out["example_norm"] = shared[0].example_norms(shared[1], w)
    if (settings.per_example and shared is None) or settings.moments:
        plan = core.make_plan(example_loss, params, batch, settings.method)
        if settings.per_example and shared is None:
            leaf_sq = core.leaf_sq_norms(example_loss, params, batch, plan)
            out["example_norm"] = jnp.where(w > 0, jnp.sqrt(sum(leaf_sq[1:], leaf_sq[0])), 0.0)
        if settings.moments:
            keep = w > 0
            total, squares = core.moments(example_loss, params, batch, plan, mask=keep)
            count = jnp.maximum(jnp.sum(keep), 2)
            out["gsnr"] = stats_lib.gsnr(total, squares, count)
            out["noise_scale"] = stats_lib.noise_scale(total, squares, count)
            out["noise_signal"], out["noise_trace"] = stats_lib.noise_parts(total, squares, count)
    if settings.activations is not None:
        z = shared[0].preactivations(shared[1]) if shared is not None else preactivations()
        out["activations"] = {name: stats_lib.activation_stats(value, settings.activations) for name, value in z.items()}
    return out


def gated(every: int, step: jax.Array, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """compute() when step % every == 0, zeros of its shapes otherwise (one `lax.cond`), with "on" and "step" added."""
    step = jnp.asarray(step)
    on = step % every == 0
    if every == 1:
        values = compute()
    else:
        shapes = jax.eval_shape(compute)
        zeros = lambda: jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)  # noqa: E731
        values = jax.lax.cond(on, compute, zeros)
    values["on"] = on
    values["step"] = step
    return values


def update_ratios(params: Any, new_params: Any) -> dict[str, jax.Array]:
    """‖θ_new − θ‖ / ‖θ‖ per layer: add it to a probe's stats after the optimizer step (stats["update_ratio"])."""
    return stats_lib.update_ratios(params, new_params)


def mixes_examples(run: Callable[[], Any]) -> bool:
    """True when run() calls a BatchNorm in training mode (batch statistics mix the examples), traced abstractly."""
    found = []

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if isinstance(module, nn.BatchNorm) and context.method_name == "__call__":
            running = kwargs.get("use_running_average", args[1] if len(args) > 1 else None)
            running = module.use_running_average if running is None else running
            found.append(not running)
        return next_fun(*args, **kwargs)

    def traced():
        with nn.intercept_methods(interceptor):
            return run()

    jax.eval_shape(traced)
    return any(found)


# -- the probe for custom loops -------------------------------------------------------------------


def _unpack(batch: Any) -> tuple[Any, Any, jax.Array | None, int]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise TypeError(f"batch must be (x, y) or (x, y, w) with a leading example axis, got {_checks.describe(batch)}")
    x, y = batch[0], batch[1]
    leaves = jax.tree_util.tree_leaves((x, y))
    if not leaves or any(np.ndim(a) == 0 for a in leaves):
        raise ValueError("every array of batch (x, y) must have a leading example axis (n, ...), got a scalar or nothing")
    sizes = sorted({int(np.shape(a)[0]) for a in leaves})
    if len(sizes) > 1:
        raise ValueError(f"x and y must have the same number of examples, got leading sizes {sizes}")
    n = sizes[0]
    w = None
    if len(batch) == 3:
        w = jnp.asarray(batch[2])
        if w.shape != (n,):
            raise ValueError(f"batch's weights w must have shape (n,) = ({n},), got {tuple(w.shape)}")
    return x, y, w, n


class Probed:
    """The function `probe` returns: (loss, grads, stats) = probed(params, batch, step, *args, index=None).

    After its first trace, `layer_names` lists the layers in network call order (what `Recorder`
    writes records in).
    """

    def __init__(self, loss_fn: Callable[..., Any], settings: Settings, has_aux: bool,
                 penalty: Callable[[Any], jax.Array] | None, example_loss_fn: Callable[..., Any] | None):
        self.loss_fn, self.settings, self.has_aux = loss_fn, settings, has_aux
        self.penalty, self.example_loss_fn = penalty, example_loss_fn
        self.layer_names: list[str] | None = None

    @property
    def every(self) -> int:
        return self.settings.every

    def _losses(self, params: Any, x: Any, y: Any, args: tuple) -> tuple[jax.Array, Any]:
        out = self.loss_fn(params, x, y, *args)
        if self.has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError("with has_aux=True loss_fn must return (losses (n,), aux), "
                                f"got {_checks.describe(out)}")
            return out[0], out[1]
        return out, None

    def _check_losses(self, params: Any, x: Any, y: Any, n: int, args: tuple) -> None:
        """ValueError naming the contract unless loss_fn gives (n,) losses on the batch and (1,) on a batch of one."""
        shapes = [np.shape(a) for a in jax.tree_util.tree_leaves((x, y))]
        try:
            losses = jax.eval_shape(lambda p: self._losses(p, x, y, args)[0], params)
        except TypeError:
            raise
        except Exception as error:  # the user's function failed on the batch: say what it must be
            raise contract_error("was not tried", f"failed with {type(error).__name__}: "
                                 f"{str(error).strip()[:300]}", n, shapes) from None
        if getattr(losses, "shape", None) != (n,):
            raise ValueError(f"loss_fn(params, x, y) must return the per-example losses, shape (n,) = ({n},) "
                             f"(reduction='none', no .mean()), got {getattr(losses, 'shape', type(losses).__name__)}")

    def __call__(self, params: Any, batch: Any, step: Any, *args: Any, index: Any = None) -> tuple[Any, Any, dict]:
        check_params(params)
        x, y, w, n = _unpack(batch)
        w = jnp.ones((n,), jnp.float32) if w is None else w
        self._check_losses(params, x, y, n, args)
        settings = self.settings

        def cost_fn(p):
            losses, aux = self._losses(p, x, y, args)
            cost = jnp.sum(w * losses) / jnp.maximum(jnp.sum(w), jnp.finfo(jnp.float32).tiny)
            if self.penalty is not None:
                cost = cost + self.penalty(p)
            return cost, aux

        one = self.example_loss_fn if self.example_loss_fn is not None else self.loss_fn
        example_loss = OfBatch(lambda p, xb, yb: self._losses_of(one, p, xb, yb, args))
        if self.layer_names is None:
            self.layer_names = layer_names(params, call_order(lambda p: cost_fn(p)[0], params))

        supplied = None
        if settings.wants_examples and not mixes_examples(lambda: cost_fn(params)):
            supplied = shared_value_and_grad(cost_fn, example_loss, params, (x, y), n)
        if supplied is None:
            (cost, aux), grads = jax.value_and_grad(cost_fn, has_aux=True)(params)
            shared = None
        else:
            (cost, aux), grads, shared = supplied

        def preactivations():
            return stats_lib.captured_preactivations(lambda: self._losses(params, x, y, args))

        values = gated(settings.every, step, lambda: statistics(settings, params, grads, example_loss, (x, y), w,
                                                                 shared, preactivations))
        if settings.per_example:
            values["index"] = jnp.arange(n) if index is None else jnp.asarray(index)
        return ((cost, aux) if self.has_aux else cost), grads, values

    def _losses_of(self, fn: Callable, params: Any, x: Any, y: Any, args: tuple) -> jax.Array:
        out = fn(params, x, y, *args)
        return out[0] if self.has_aux and isinstance(out, (tuple, list)) else out


def probe(loss_fn: Callable[..., Any], *, every: int = 1, per_example: bool = True, moments: bool = False,
          activations: str | None = None, has_aux: bool = False, penalty: Callable[[Any], jax.Array] | None = None,
          example_loss_fn: Callable[..., Any] | None = None, share_backward: bool = True,
          method: str = "auto") -> Probed:
    """A jit-compatible replacement for `jax.value_and_grad(cost)` that also returns gradient statistics.

    loss_fn(params, x, y, *args) -> per-example losses (n,), or ((n,), aux) with has_aux.
    every: record every k-th step (others return zeros, stats["on"] False).
    per_example: exact ‖∇ℓ_i‖ of every example; moments: GSNR and noise scale B_simple;
    activations: the hidden activation's name for saturation and dead-unit fractions.
    penalty(params) -> scalar: added to the cost, not to the per-example losses.
    example_loss_fn: like loss_fn, what per-example statistics differentiate when the batch pass
    cannot be shared (e.g. the model in inference mode); default loss_fn on a batch of one.
    share_backward False: never take per-example norms from the step's backward pass (a model
    that mixes examples other than by BatchNorm). method: "auto", "fast" or "vmap" for the others.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable loss_fn(params, x, y) -> per-example losses (n,), "
                        f"got {_checks.describe(loss_fn)}")
    for name, fn in (("penalty", penalty), ("example_loss_fn", example_loss_fn)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable or None, got {_checks.describe(fn)}")
    if not isinstance(has_aux, bool):
        raise TypeError(f"has_aux must be True or False, got {_checks.describe(has_aux)}")
    return Probed(loss_fn, Settings(every, per_example, moments, activations, share_backward, method), has_aux,
                  penalty, example_loss_fn)
