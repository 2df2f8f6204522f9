"""Convolution (Conv1D, Conv2D), pooling (max, average, min) and Flatten, channels-last, on Flax Linen.

Convolution is cross-correlation, as in every framework: y[i, j, o] = Σ_{u,v,c} x[s·i + d·u, s·j + d·v, c]
· K[u, v, c, o] + b[o] on the zero-padded input. Images are NHWC (batch, height, width, channels),
sequences NWC (batch, steps, channels). Each spatial output size is `output_size(n, f, p, s)` =
floor((n + 2p - f)/s) + 1 for symmetric padding p ("valid": p = 0; "same": ceil(n/s)).

NCHW input: jdl cannot tell (b, 3, 32, 32) in NCHW from a legitimate NHWC tensor of that shape, so
the check is explicit: give a conv layer `input_channels=C`; if x.shape[-1] != C but x.shape[1] == C
it raises "looks like NCHW" with the transpose to apply. Without it, an NCHW image usually fails
the kernel-fits check (height C < kernel), whose message names the same possibility.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jdl import _checks
from jdl.nn import activations, initializers

__all__ = ["Conv1D", "Conv2D", "MaxPool", "AvgPool", "MinPool", "Flatten", "output_size", "pool"]

Padding = str | int | Sequence[int | tuple[int, int]]

_AXES = {1: "(batch, steps, channels)", 2: "(batch, height, width, channels)",
         3: "(batch, depth, height, width, channels)"}
_LAYOUT = {1: ("NCW", "NWC", "x.transpose(0, 2, 1)"), 2: ("NCHW", "NHWC", "x.transpose(0, 2, 3, 1)"),
           3: ("NCDHW", "NDHWC", "x.transpose(0, 2, 3, 4, 1)")}


def output_size(n: int, f: int, p: int = 0, s: int = 1) -> int:
    """Output length of a convolution or pooling along one axis: floor((n + 2p - f)/s) + 1.

    n: input size, f: kernel (window) size, p: zero padding on each side, s: stride.
    """
    _checks.check_number(n, "n", integer=True, positive=True)
    _checks.check_number(f, "f", integer=True, positive=True)
    _checks.check_number(p, "p", integer=True, nonnegative=True)
    _checks.check_number(s, "s", integer=True, positive=True)
    if n + 2 * p < f:
        raise ValueError(f"f must be <= n + 2p (the kernel must fit the padded input), got n={n}, f={f}, p={p}")
    return (n + 2 * p - f) // s + 1


def _ints(value: Any, name: str, rank: int, *, nonnegative: bool = False) -> tuple[int, ...]:
    """An int or a length-`rank` sequence of ints, as a tuple of `rank` ints (positive unless `nonnegative`)."""
    values = (value,) * rank if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != rank:
        raise TypeError(f"{name} must be an int or a sequence of {rank} ints, got {_checks.describe(value)}")
    for v in values:
        _checks.check_number(v, f"{name} entries", integer=True, positive=not nonnegative, nonnegative=nonnegative)
    return tuple(int(v) for v in values)


def _padding(padding: Any, rank: int, *, causal: bool = False) -> str | tuple[tuple[int, int], ...]:
    """"VALID", "SAME", "CAUSAL" or ((lo, hi),) * rank from Keras-style `padding`."""
    options = ("valid", "same", "causal") if causal else ("valid", "same")
    if isinstance(padding, str):
        _checks.check_choice(padding.lower(), "padding", options)
        return padding.upper()
    if isinstance(padding, int) and not isinstance(padding, bool):
        _checks.check_number(padding, "padding", integer=True, nonnegative=True)
        return ((int(padding), int(padding)),) * rank
    expected = (f"padding must be one of {list(options)}, an int p, or {rank} entries each an int p "
                f"or a pair (before, after)")
    if not isinstance(padding, Sequence) or isinstance(padding, bytes) or len(padding) != rank:
        raise TypeError(f"{expected}; got {_checks.describe(padding)}")
    pairs = []
    for entry in padding:
        if isinstance(entry, int) and not isinstance(entry, bool):
            entry = (entry, entry)
        if not isinstance(entry, Sequence) or isinstance(entry, (str, bytes)) or len(entry) != 2:
            raise TypeError(f"{expected}; got {padding!r}")
        for v in entry:
            _checks.check_number(v, "padding entries", integer=True, nonnegative=True)
        pairs.append((int(entry[0]), int(entry[1])))
    return tuple(pairs)


def _spatial_pads(padding: str | tuple, sizes: Sequence[int], windows: Sequence[int],
                  strides: Sequence[int]) -> list[tuple[int, int]]:
    """The (before, after) zeros each spatial axis gets: lax's rule for "SAME", left-only for "CAUSAL"."""
    if padding == "VALID":
        return [(0, 0)] * len(sizes)
    if padding == "CAUSAL":
        return [(w - 1, 0) for w in windows]
    if padding == "SAME":
        pads = []
        for n, w, s in zip(sizes, windows, strides):
            total = max((math.ceil(n / s) - 1) * s + w - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    return list(padding)


def _check_input(x: Any, rank: int, who: str) -> jax.Array:
    if not hasattr(x, "shape") or not hasattr(x, "ndim"):
        x = _checks.as_array(x, "x")
    if x.ndim != rank + 2:
        raise ValueError(
            f"x of {who} must have {rank + 2} dimensions {_AXES[rank]}, got shape {tuple(x.shape)}"
            + ("; single-channel data: add a channel axis with x[..., None]; one example: add a batch axis "
               "with x[None]" if x.ndim == rank + 1 else "")
        )
    return x


def _check_fits(x: jax.Array, pads: Sequence[tuple[int, int]], windows: Sequence[int], who: str,
                what: str) -> None:
    rank = len(windows)
    sizes = x.shape[1:-1]
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(sizes, pads))
    if any(p < w for p, w in zip(padded, windows)):
        nchw, nhwc, fix = _LAYOUT[rank]
        raise ValueError(
            f"{what} {tuple(windows)} of {who} is larger than the padded input {padded} "
            f"(x of shape {tuple(x.shape)}, expected {_AXES[rank]}); use padding='same' or a smaller "
            f"{what}, or, if x is {nchw}, note that jdl uses {nhwc}: {fix}"
        )


def _specs(rank: int) -> tuple[str, str, str]:
    return {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}[rank]


SHIFTED_TERMS = 36
"""At most this many window taps × input channels, `_forward_conv` sums shifted views instead of calling lax."""


def _forward_conv(x: jax.Array, k: jax.Array, strides: Sequence[int], pads: Sequence[tuple[int, int]],
                  dilation: Sequence[int]) -> jax.Array:
    """y = Σ_{u,c} x_pad[:, d·u + s·i, c] K[u, c, :] (the channels-last convolution of the fast-gradient path).

    With few taps × input channels (a first layer on grey or RGB images, 3×3 or 5×5) the sum runs as
    one fused elementwise loop over the shifted views: XLA:CPU's convolution is 2-4× slower there
    (28×28×1 → 32 with a 3×3 kernel, batch 128, bias and ReLU after it: 0.9 against 3.5 ms).
    Otherwise it is `lax.conv_general_dilated`. Both sum the same products; the last bits may differ.
    """
    windows = k.shape[:x.ndim - 2]
    if math.prod(windows) * x.shape[-1] > SHIFTED_TERMS:
        return lax.conv_general_dilated(x, k, tuple(strides), tuple(pads), rhs_dilation=tuple(dilation),
                                        dimension_numbers=_specs(x.ndim - 2))
    wide = jnp.promote_types(x.dtype, jnp.float32)
    x_pad = _pad_spatial(x, pads)
    out = tuple(output_size(n, d * (w - 1) + 1, 0, s)
                for n, w, s, d in zip(x_pad.shape[1:-1], windows, strides, dilation))
    y = None
    for offset, view in zip(itertools.product(*(range(w) for w in windows)),
                            _window_views(x_pad, windows, strides, dilation, out)):
        for c in range(x.shape[-1]):
            term = view[..., c:c + 1].astype(wide) * k[(*offset, c)].astype(wide)
            y = term if y is None else y + term
    return y.astype(jnp.result_type(x.dtype, k.dtype))


def _pad_spatial(x: jax.Array, pads: Sequence[tuple[int, int]]) -> jax.Array:
    """x with zeros added (or, for negative pads, rows cropped) before and after each spatial axis."""
    return lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _channels_last_conv(x, k, strides, pads, dilation):
    return _forward_conv(x, k, strides, pads, dilation)


def _channels_last_conv_fwd(x, k, strides, pads, dilation):
    return _forward_conv(x, k, strides, pads, dilation), (x, k)


def _channels_last_conv_bwd(strides, pads, dilation, residuals, dy):
    """Both gradients as channels-last forward convolutions (XLA:CPU runs these fast, also inside loops).

    dK[u, c, o] = Σ_{b,i} x_pad[b, s·i + d·u, c] dy[b, i, o]: a convolution of x_pad with batch and
    channel axes swapped, by dy as the kernel (dilated by s, window stride d), cropped to the kernel.
    dx[m] = Σ_u dy_s[m + p_lo - d·u] K[u]: dy dilated by s and padded, convolved with the flipped,
    transposed kernel (dilation d).
    """
    x, k = residuals
    rank = x.ndim - 2
    windows = k.shape[:rank]
    x_pad = _pad_spatial(x, pads)
    dk = kernel_grad(x_pad, dy, windows, strides, dilation)
    config = [(0, 0, 0)]
    for n, w, (lo, _), s, d, m in zip(x.shape[1:-1], windows, pads, strides, dilation, dy.shape[1:-1]):
        before = d * (w - 1) - lo
        after = n + d * (w - 1) - ((m - 1) * s + 1) - before
        config.append((before, after, s - 1))
    config.append((0, 0, 0))
    dy_pad = lax.pad(dy, jnp.zeros((), dy.dtype), config)
    k_flip = jnp.flip(k, tuple(range(rank))).swapaxes(-1, -2)
    dx = lax.conv_general_dilated(dy_pad, k_flip, (1,) * rank, "VALID", rhs_dilation=tuple(dilation),
                                  dimension_numbers=_specs(rank))
    return dx, dk


COLUMN_CHANNELS = 8
"""Below this many input channels `kernel_grad` stacks the window's views into one column matrix."""


def kernel_grad(x_pad: jax.Array, dy: jax.Array, windows: Sequence[int], strides: Sequence[int],
                dilation: Sequence[int]) -> jax.Array:
    """dK[u, c, o] = Σ_{b,i} x_pad[b, s·i + d·u, c] dy[b, i, o] for each window offset u: (*windows, C, O).

    x_pad (batch, *padded, C), dy (batch, *out, O). Each offset's view V_u = x_pad[:, d·u + s·i] is a
    strided slice (batch·out, C); dK[u] = V_uᵀ dy. With few channels the K views are stacked into
    one (batch·out, K·C) column matrix and dK is ONE product (K·C, O); otherwise K products (C, O).
    Both replace the batch-as-channels convolution XLA:CPU runs slowly for large "kernels" (dy).
    """
    c, o = x_pad.shape[-1], dy.shape[-1]
    views = [v.reshape(-1, c) for v in _window_views(x_pad, windows, strides, dilation, dy.shape[1:-1])]
    rows = dy.reshape(-1, o)
    if c < COLUMN_CHANNELS:
        dk = jnp.tensordot(jnp.concatenate(views, axis=1), rows, axes=(0, 0))
    else:
        dk = jnp.stack([jnp.tensordot(v, rows, axes=(0, 0)) for v in views])
    return dk.reshape(*windows, c, o)


def _window_views(x_pad: jax.Array, windows: Sequence[int], strides: Sequence[int], dilation: Sequence[int],
                  out: Sequence[int]) -> list[jax.Array]:
    """V_u = x_pad[:, d·u + s·i, :] for each window offset u (row-major): strided slices (batch, *out, C)."""
    c, views = x_pad.shape[-1], []
    for offset in itertools.product(*(range(w) for w in windows)):
        start = (0, *(d * u for u, d in zip(offset, dilation)), 0)
        limit = (x_pad.shape[0], *(d * u + s * (m - 1) + 1 for u, d, s, m in zip(offset, dilation, strides, out)), c)
        views.append(lax.slice(x_pad, start, limit, (1, *strides, 1)))
    return views


_channels_last_conv.defvjp(_channels_last_conv_fwd, _channels_last_conv_bwd)


def channels_last_conv(lhs: jax.Array, rhs: jax.Array, window_strides: Sequence[int], padding: Any,
                       lhs_dilation: Sequence[int] | None = None, rhs_dilation: Sequence[int] | None = None,
                       dimension_numbers: Any = None, feature_group_count: int = 1, precision: Any = None,
                       **options: Any) -> jax.Array:
    """`lax.conv_general_dilated` for channels-last x (batch, *spatial, C) and kernel (*window, C, O).

    Same values (to the last bits: see `_forward_conv`); the gradient is computed by forward
    convolutions only, which XLA:CPU runs on its fast path even inside `lax.scan` (where the default
    transposed convolutions fall back to a loop ~50× slower). Other configurations (input dilation,
    groups, string padding) go to lax unchanged.
    Reverse mode only (a custom VJP): jax.jvp / jax.jacfwd need `lax.conv_general_dilated` itself.
    """
    rank = lhs.ndim - 2
    channels_last = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _specs(rank)) if rank in (1, 2, 3) else None
    if dimension_numbers is not None and not isinstance(dimension_numbers, lax.ConvDimensionNumbers):
        dimension_numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    plain = (channels_last is not None and dimension_numbers in (None, channels_last)
             and isinstance(padding, Sequence) and not isinstance(padding, str)
             and all(d == 1 for d in (lhs_dilation or (1,) * rank)) and feature_group_count == 1
             and precision is None and not options)
    if not plain:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision, **options)
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    return _channels_last_conv(lhs, rhs, tuple(int(s) for s in window_strides), pads,
                               tuple(int(d) for d in (rhs_dilation or (1,) * rank)))


class _Conv(nn.Module):
    """Shared by Conv1D and Conv2D; `rank` is the number of spatial axes."""

    rank: ClassVar[int] = 2

    filters: int
    kernel_size: int | Sequence[int]
    strides: int | Sequence[int] = 1
    padding: Padding = "valid"
    activation: str | Callable[[jax.Array], jax.Array] | None = None
    use_bias: bool = True
    kernel_init: str | Callable[..., jax.Array] = "xavier_uniform"
    bias_init: str | Callable[..., jax.Array] = "zeros"
    dilation_rate: int | Sequence[int] = 1
    input_channels: int | None = None
    fast_grad: bool = True

    def __post_init__(self) -> None:
        _checks.check_number(self.filters, "filters", integer=True, positive=True)
        if not isinstance(self.fast_grad, bool):
            raise TypeError(f"fast_grad must be a bool, got {_checks.describe(self.fast_grad)}")
        _ints(self.kernel_size, "kernel_size", self.rank)
        _ints(self.strides, "strides", self.rank)
        _ints(self.dilation_rate, "dilation_rate", self.rank)
        _padding(self.padding, self.rank, causal=self.rank == 1)
        if self.activation is not None:
            activations.check(self.activation)
        initializers.get(self.kernel_init)
        initializers.get(self.bias_init)
        if not isinstance(self.use_bias, bool):
            raise TypeError(f"use_bias must be a bool, got {_checks.describe(self.use_bias)}")
        if self.input_channels is not None:
            _checks.check_number(self.input_channels, "input_channels", integer=True, positive=True)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        who = f"{type(self).__name__} {self.name!r}" if self.name else type(self).__name__
        x = _check_input(x, self.rank, who)
        self._check_channels(x, who)
        kernel = _ints(self.kernel_size, "kernel_size", self.rank)
        strides = _ints(self.strides, "strides", self.rank)
        dilation = _ints(self.dilation_rate, "dilation_rate", self.rank)
        padding = _padding(self.padding, self.rank, causal=self.rank == 1)
        dilated = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
        pads = _spatial_pads(padding, x.shape[1:-1], dilated, strides)
        _check_fits(x, pads, dilated, who, "kernel_size (dilated)" if max(dilation) > 1 else "kernel_size")
        conv = nn.Conv(
            self.filters, kernel, strides=strides, padding=tuple(pads), kernel_dilation=dilation,
            use_bias=self.use_bias, kernel_init=initializers.get(self.kernel_init),
            bias_init=initializers.get(self.bias_init),
            conv_general_dilated=channels_last_conv if self.fast_grad else lax.conv_general_dilated,
        )
        nn.share_scope(self, conv)
        y = conv(x)
        return y if self.activation is None else activations.layer(self.activation)(y)

    def _check_channels(self, x: jax.Array, who: str) -> None:
        c = self.input_channels
        if c is None or x.shape[-1] == c:
            return
        nchw, nhwc, fix = _LAYOUT[self.rank]
        if x.shape[1] == c:
            raise ValueError(
                f"x of {who} looks like {nchw} (shape {tuple(x.shape)}, input_channels={c} on axis 1); "
                f"jdl uses {nhwc}, transpose with {fix}"
            )
        raise ValueError(
            f"x of {who} must have input_channels={c} on its last axis {_AXES[self.rank]}, "
            f"got shape {tuple(x.shape)}"
        )


class Conv2D(_Conv):
    """2-D convolution (Keras Conv2D): x (batch, H, W, C) -> (batch, H', W', filters).

    y[b, i, j, o] = act(Σ_{u,v,c} x_pad[b, s_h·i + d_h·u, s_w·j + d_w·v, c] · K[u, v, c, o] + b[o]),
    H' = floor((H + p_top + p_bottom - d_h(k_h - 1) - 1)/s_h) + 1 (likewise W'); "same" gives ceil(H/s_h).
    kernel_size, strides, dilation_rate: int or (h, w). padding: "valid", "same", an int p (p zeros on
    every side), or ((top, bottom), (left, right)). Parameters: kernel (k_h, k_w, C, filters), bias
    (filters,). input_channels: optional C, checked against x (catches NCHW input). fast_grad: the
    gradient by forward convolutions (`channels_last_conv`); False for forward-mode autodiff (jax.jvp).
    """

    rank: ClassVar[int] = 2


class Conv1D(_Conv):
    """1-D convolution (Keras Conv1D): x (batch, steps, C) -> (batch, steps', filters).

    y[b, t, o] = act(Σ_{u,c} x_pad[b, s·t + d·u, c] · K[u, c, o] + b[o]); steps' = floor((steps + p_left
    + p_right - d(k - 1) - 1)/s) + 1. padding: "valid", "same", "causal" (d(k - 1) zeros on the left
    only, so y[t] sees x[≤ t]), an int p, or ((left, right),). Parameters: kernel (k, C, filters),
    bias (filters,). Other options as Conv2D.
    """

    rank: ClassVar[int] = 1


def pool(x: jax.Array, kind: str, pool_size: int | Sequence[int] = 2, strides: int | Sequence[int] | None = None,
         padding: str = "valid") -> jax.Array:
    """Max, average or min pooling over the spatial axes of x (batch, *spatial, channels).

    kind: "max", "avg" or "min". strides default to pool_size (Keras; flax.linen.max_pool defaults to 1).
    Output size per axis: floor((n - f)/s) + 1 ("valid") or ceil(n/s) ("same"). With "same", average
    pooling divides by the number of real (unpadded) elements in each window, as Keras does.
    """
    _checks.check_choice(kind, "kind", ("max", "avg", "min"))
    x = _checks.as_array(x, "x") if not hasattr(x, "ndim") else x
    if x.ndim not in (3, 4, 5):
        raise ValueError(
            f"x of {kind} pooling must have 3 to 5 dimensions (batch, *spatial, channels), "
            f"got shape {tuple(x.shape)}"
        )
    rank = x.ndim - 2
    window = _ints(pool_size, "pool_size", rank)
    stride = window if strides is None else _ints(strides, "strides", rank)
    if not isinstance(padding, str):
        raise TypeError(f"padding of pooling must be 'valid' or 'same', got {_checks.describe(padding)}")
    _checks.check_choice(padding.lower(), "padding", ("valid", "same"))
    padding = padding.upper()
    pads = _spatial_pads(padding, x.shape[1:-1], window, stride)
    _check_fits(x, pads, window, f"{kind} pooling", "pool_size")
    if padding == "VALID" and stride == window:
        return _tiled_pool(x, kind, window)
    if kind == "max":
        return nn.max_pool(x, window, stride, padding)
    if kind == "min":
        return -nn.max_pool(-x, window, stride, padding)
    return nn.avg_pool(x, window, stride, padding, count_include_pad=False)


def _tiled_pool(x: jax.Array, kind: str, window: tuple[int, ...]) -> jax.Array:
    """Non-overlapping valid pooling as a reshape and a reduction (its gradient is a cheap mask, no scatter)."""
    outs = tuple(n // w for n, w in zip(x.shape[1:-1], window))
    x = x[(slice(None),) + tuple(slice(0, o * w) for o, w in zip(outs, window))]
    shape = (x.shape[0],) + tuple(d for o, w in zip(outs, window) for d in (o, w)) + (x.shape[-1],)
    axes = tuple(2 + 2 * i for i in range(len(window)))
    reduce = {"max": jnp.max, "min": jnp.min, "avg": jnp.mean}[kind]
    return reduce(x.reshape(shape), axis=axes)


class _Pool(nn.Module):
    kind: ClassVar[str] = "max"

    pool_size: int | Sequence[int] = 2
    strides: int | Sequence[int] | None = None
    padding: str = "valid"

    def __post_init__(self) -> None:
        for name in ("pool_size", "strides"):
            value = getattr(self, name)
            if value is None and name == "strides":
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                _checks.check_number(value, name, integer=True, positive=True)
            else:
                _ints(value, name, len(value) if isinstance(value, Sequence) and not isinstance(value, str) else 1)
        if not isinstance(self.padding, str):
            raise TypeError(f"padding of pooling must be 'valid' or 'same', got {_checks.describe(self.padding)}")
        _checks.check_choice(self.padding.lower(), "padding", ("valid", "same"))
        super().__post_init__()

    def __call__(self, x: jax.Array) -> jax.Array:
        return pool(x, self.kind, self.pool_size, self.strides, self.padding)


class MaxPool(_Pool):
    """Max pooling (Keras MaxPooling1D/2D): y[b, i, j, c] = max over the window of x; (batch, *spatial, C).

    pool_size, strides: int (every spatial axis) or one per axis; strides default to pool_size.
    padding: "valid" (floor((n - f)/s) + 1) or "same" (ceil(n/s); padded cells never win).
    """

    kind: ClassVar[str] = "max"


class AvgPool(_Pool):
    """Average pooling (Keras AveragePooling1D/2D): the mean over each window; (batch, *spatial, C).

    With padding "same" the mean is over the real elements of a window (padding not counted).
    """

    kind: ClassVar[str] = "avg"


class MinPool(_Pool):
    """Min pooling: y = min over each window of x, i.e. -maxpool(-x); (batch, *spatial, C)."""

    kind: ClassVar[str] = "min"


class Flatten(nn.Module):
    """x (batch, d1, d2, ...) -> (batch, d1·d2·...), row-major (Keras Flatten on NHWC)."""

    def __call__(self, x: jax.Array) -> jax.Array:
        x = _checks.as_array(x, "x") if not hasattr(x, "ndim") else x
        if x.ndim < 1:
            raise ValueError(f"x of Flatten must have a batch axis, got a scalar of shape {tuple(x.shape)}")
        return x.reshape((x.shape[0], -1))
