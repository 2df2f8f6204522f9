"""Dynamic loss scaling for float16 training, as Keras' LossScaleOptimizer: small gradients survive, overflows skip.

The step differentiates S·cost and divides the gradients by S, so the float16 backward pass
carries cotangents S times larger (S a power of two: the scaling itself is exact). A step whose
unscaled gradient is not finite is skipped: parameters, optimizer state and model state stay as
they were, the step counter advances, and S halves (never below 1). After `period` finite steps in
a row S doubles. Keras' defaults: S₀ = 2¹⁵, period 2000. `jdl.Trainer(precision="float16")`
trains with it; the epoch logs count the skipped steps ("skipped_steps") and give S ("loss_scale").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jdl import _checks

INITIAL_SCALE = 2.0 ** 15
GROWTH_PERIOD = 2000


@struct.dataclass
class LossScale:
    """scale S (float32) and the finite steps since it last changed (int32); period is static."""

    scale: jax.Array
    good_steps: jax.Array
    period: int = struct.field(pytree_node=False, default=GROWTH_PERIOD)

    def value_and_grad(self, cost_fn: Callable[[Any], tuple[jax.Array, Any]], params: Any) -> tuple[tuple[jax.Array, Any], Any]:
        """((cost, aux), ∇cost) of cost_fn(params) -> (cost, aux), computed as ∇(S·cost)/S."""
        def scaled(p):
            cost, aux = cost_fn(p)
            return cost * self.scale, (cost, aux)

        (_, (cost, aux)), grads = jax.value_and_grad(scaled, has_aux=True)(params)
        return (cost, aux), jax.tree_util.tree_map(lambda g: g / self.scale.astype(g.dtype), grads)

    def after(self, finite: jax.Array) -> LossScale:
        """The scale for the next step: halved (≥ 1) after a non-finite gradient, doubled after `period` finite ones."""
        grown = self.good_steps + 1 >= self.period
        scale = jnp.where(finite, jnp.where(grown, self.scale * 2.0, self.scale), jnp.maximum(self.scale / 2.0, 1.0))
        good_steps = jnp.where(finite & ~grown, self.good_steps + 1, 0)
        return self.replace(scale=scale.astype(jnp.float32), good_steps=good_steps.astype(jnp.int32))


def initial(scale: float = INITIAL_SCALE, period: int = GROWTH_PERIOD) -> LossScale:
    """A fresh dynamic loss scale S = `scale` (a power of two keeps the scaling exact) that doubles every `period` finite steps."""
    _checks.check_number(scale, "scale", positive=True)
    _checks.check_number(period, "period", integer=True, positive=True)
    return LossScale(scale=jax.device_put(np.float32(scale)), good_steps=jax.device_put(np.int32(0)), period=int(period))


def device_logs(state: Any, chunk_logs: list[dict]) -> dict[str, Any]:
    """What an epoch's host read adds under loss scaling: the scale and each chunk's skipped flags ({} without)."""
    if state.loss_scale is None:
        return {}
    return {"loss_scale": state.loss_scale.scale, "skipped": [c["skipped"] for c in chunk_logs]}


def epoch_logs(host: dict[str, Any], member: int | None = None) -> dict[str, float]:
    """{"loss_scale", "skipped_steps"} of an epoch from what `device_logs` read ({} without scaling).

    member: a population member's index (the read values then have a member axis: (P,) and (steps, P)).
    """
    if "loss_scale" not in host:
        return {}
    pick = (lambda a: np.asarray(a)) if member is None else (lambda a: np.asarray(a)[..., member])
    return {"loss_scale": float(pick(host["loss_scale"])),
            "skipped_steps": float(sum(np.sum(pick(c)) for c in host["skipped"]))}


def for_precision(precision: str) -> LossScale | None:
    """A fresh dynamic loss scale for float16 compute; None (no scaling) for float32 and bfloat16, whose range is float32's."""
    return initial() if precision == "float16" else None
