"""Conv: the Dense rule with a_t the input patch under the kernel at output position t.

g_W = Σ_t a_t δ_tᵀ, by the Gram form Σ_t,t' (a_t·a_t')(δ_t·δ_t') when that is cheaper than forming
the kernel gradient, else the kernel gradient itself: for each kernel offset k, Σ_t x_(t+k)ᵀ δ_t.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl.diagnostics.per_example.rules.base import Rule
from jdl.diagnostics.per_example.rules.forms import Direct, Outer, Summed, wide


def kernel_slices(x: jax.Array, config: tuple[Any, ...]) -> list[jax.Array]:
    """For each kernel offset (in the kernel's (kh, kw) order), the input entries it multiplies: (n, *out, c_in) each.

    kh·kw strided slices of the padded input (memory moves, no multiply-adds).
    """
    kernel, strides, dilation, padding = config
    spatial = len(kernel)
    x = x.reshape((-1,) + x.shape[-spatial - 1:])
    sizes = x.shape[1:-1]
    window = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    pads = jax.lax.padtype_to_pads(sizes, window, strides, padding) if isinstance(padding, str) else padding
    x = jnp.pad(x, ((0, 0), *[tuple(p) for p in pads], (0, 0)))
    out = tuple((n + lo + hi - w) // s + 1 for n, (lo, hi), w, s in zip(sizes, pads, window, strides))
    slices = []
    for offset in np.ndindex(*kernel):
        start = (0,) + tuple(o * d for o, d in zip(offset, dilation)) + (0,)
        limit = (x.shape[0],) + tuple(b + (m - 1) * s + 1 for b, m, s in zip(start[1:-1], out, strides)) + (x.shape[-1],)
        slices.append(jax.lax.slice(x, start, limit, (1,) + tuple(strides) + (1,)))
    return slices


def patches(x: jax.Array, config: tuple[Any, ...]) -> jax.Array:
    """Input patches under a Conv kernel: (positions, kh·kw·c_in) in the kernel's (kh, kw, c_in) order.

    One input channel: `conv_general_dilated_patches` (an identity-kernel convolution). Several:
    stacked kernel slices, since XLA:CPU runs the grouped identity convolution slowly (LeNet's
    14×14×6 → 10×10×150 patches: 7.4 ms by slices, 14.3 ms by convolution, batch 128).
    """
    kernel, strides, dilation, padding = config
    spatial = len(kernel)
    x = x.reshape((-1,) + x.shape[-spatial - 1:])
    if x.shape[-1] == 1:
        specs = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}[spatial]
        p = jax.lax.conv_general_dilated_patches(x, kernel, strides, padding, rhs_dilation=dilation,
                                                 dimension_numbers=specs)
        return p.reshape(-1, math.prod(kernel))
    p = jnp.stack(kernel_slices(x, config), axis=-2)
    return p.reshape(-1, p.shape[-2] * p.shape[-1])


def kernel_gradient(x: jax.Array, delta: jax.Array, config: tuple[Any, ...]) -> jax.Array:
    """One example's Conv kernel gradient (*kernel, c_in, c_out): for each offset k, Σ_t x_(t+k)ᵀ δ_t.

    Products of each kernel slice with δ, without forming the (positions, kh·kw·c_in) patches
    (LeNet, batch 128: conv2 2.4 vs 6.1 ms, conv1 9.9 vs 12.3 ms).
    """
    d = delta.reshape(-1, delta.shape[-1])
    blocks = [s.reshape(-1, s.shape[-1]).T @ d for s in kernel_slices(x, config)]
    return jnp.stack(blocks).reshape(tuple(config[0]) + blocks[0].shape)


def gram_is_cheaper(config: tuple[Any, ...], x: jax.Array, delta: jax.Array) -> bool:
    """Whether Σ_t,t' (a_t·a_t')(δ_t·δ_t') over T output positions costs less than forming the p×q kernel gradient."""
    t = math.prod(delta.shape[:-1])
    p, q = math.prod(config[0]) * x.shape[-1], delta.shape[-1]
    return t * t * (p + q) <= t * p * q + p * q


def _per_axis(value: Any, spatial: int) -> tuple[Any, ...]:
    return (value,) * spatial if isinstance(value, int) else tuple(value)


class ConvRule(Rule):
    """nn.Conv without feature groups, mask or input dilation; config (kernel, strides, dilation, padding)."""

    kind = "conv"

    def accepts(self, module, x):
        return module.feature_group_count == 1 and module.mask is None and module.input_dilation in (None, 1) and (
            not isinstance(module.padding, str) or module.padding.upper() in ("SAME", "VALID"))

    def config(self, module, x):
        spatial = jnp.ndim(x) - 2
        padding = module.padding
        if isinstance(padding, str):
            padding = padding.upper()
        elif isinstance(padding, int):
            padding = ((padding, padding),) * spatial
        else:
            padding = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
        return (_per_axis(module.kernel_size, spatial), _per_axis(module.strides or 1, spatial),
                _per_axis(module.kernel_dilation or 1, spatial), padding)

    def forms(self, call, a, delta, extra):
        roles = dict(call.leaves)
        out = {}
        if not gram_is_cheaper(call.config, a, delta):
            out[roles["kernel"]] = Direct(kernel_gradient(wide(a), wide(delta), call.config).reshape(-1))
            d = delta.reshape(-1, delta.shape[-1])
        else:
            rows = patches(a, call.config)
            d = delta.reshape(-1, delta.shape[-1])
            out[roles["kernel"]] = Outer(wide(rows), wide(d))
        if "bias" in roles:
            out[roles["bias"]] = Summed(wide(d))
        return out
