"""Random image augmentation as pure, jit-able functions of (key, images), Keras-like.

Each factory (`random_flip`, `random_rotation`, `random_zoom`, `random_brightness`) returns
`fn(key, images) -> images` for float NHWC batches (n, H, W, C); the key is split into one key
per image and each image draws its own parameters. `compose` chains them. The deterministic
transforms they apply (`flip`, `rotate`, `zoom`, `adjust_brightness`) take the parameters
explicitly. Geometry is about the image centre ((H-1)/2, (W-1)/2), sampled with
`jax.scipy.ndimage.map_coordinates`; points from outside the image get `fill_mode`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.ndimage import map_coordinates

from jdl._checks import check_choice, check_number, describe, is_concrete

__all__ = [
    "adjust_brightness",
    "compose",
    "flip",
    "random_brightness",
    "random_flip",
    "random_rotation",
    "random_zoom",
    "rotate",
    "zoom",
]

Augmentation = Callable[[jax.Array, jax.Array], jax.Array]
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
FILL_MODES = ("constant", "nearest", "reflect", "wrap")
INTERPOLATIONS = {"bilinear": 1, "nearest": 0}


# -- validation ------------------------------------------------------------------------------------


def _images(images: Any) -> jax.Array:
    """4-D float NHWC images as a JAX array; ValueError/TypeError naming `images` otherwise."""
    if not hasattr(images, "shape") or not hasattr(images, "dtype"):
        if isinstance(images, (str, bytes)) or images is None:
            raise TypeError(f"images must be a float array (n, height, width, channels), got {describe(images)}")
        images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            f"images must be 4-D NHWC, shape (n, height, width, channels), got shape {tuple(images.shape)}"
        )
    if np.dtype(images.dtype).kind != "f":
        raise TypeError(f"images must have a float dtype (scale integers first, e.g. x / 255), got {describe(images)}")
    return jnp.asarray(images)


def _key(key: Any) -> jax.Array:
    """A typed or raw (uint32) JAX PRNG key; TypeError naming `key` otherwise."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) and key.ndim == 0:
        return key
    if dtype is not None and dtype == jnp.uint32 and key.ndim == 1:
        return key
    raise TypeError(f"key must be a JAX PRNG key, e.g. jax.random.key(0), got {describe(key)}")


def _per_image(values: Any, name: str, n: int, width: int = 1) -> jax.Array:
    """Per-image parameters as a float array (n,) (or (n, width) when width > 1); a scalar is broadcast."""
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"{name} must be a real array, got {describe(values)}")
    arr = jnp.asarray(values)
    if np.dtype(arr.dtype).kind not in "biuf":
        raise TypeError(f"{name} must be a real array, got {describe(values)}")
    if np.dtype(arr.dtype).kind != "f":
        arr = arr.astype(jnp.result_type(float))
    if arr.ndim == 0:
        arr = jnp.broadcast_to(arr, (n,))
    shapes = [(n,)] + ([(n, width)] if width > 1 else [])
    if tuple(arr.shape) not in shapes:
        raise ValueError(f"{name} must have shape {' or '.join(map(str, shapes))} (one per image), got {tuple(arr.shape)}")
    return arr


def _range(factor: Any, name: str, *, low: float, high: float) -> tuple[float, float]:
    """A Keras factor: x -> (-x, x) with x >= 0, or (lower, upper) with lower <= upper, within [low, high]."""
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ValueError(f"{name} must be a number or a (lower, upper) pair, got {factor!r}")
        lower, upper = factor
        check_number(lower, f"{name}[0]")
        check_number(upper, f"{name}[1]")
        if lower > upper:
            raise ValueError(f"{name} must have lower <= upper, got {factor!r}")
    else:
        check_number(factor, name, nonnegative=True)
        lower, upper = -factor, factor
    if lower < low or upper > high:
        raise ValueError(f"{name} must give a range inside [{low}, {high}], got {factor!r} -> ({lower}, {upper})")
    return float(lower), float(upper)


def _fill(interpolation: Any, fill_mode: Any, fill_value: Any) -> tuple[int, str, float]:
    check_choice(interpolation, "interpolation", INTERPOLATIONS)
    check_choice(fill_mode, "fill_mode", FILL_MODES)
    check_number(fill_value, "fill_value")
    return INTERPOLATIONS[interpolation], fill_mode, float(fill_value)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _uniform_per_image(key: jax.Array, n: int, lower: float, upper: float) -> jax.Array:
    keys = jax.random.split(key, n)
    return jax.vmap(lambda k: jax.random.uniform(k, (), minval=lower, maxval=upper))(keys)


@functools.partial(jax.jit, static_argnums=1)
def _coin_flips_per_image(key: jax.Array, n: int) -> jax.Array:
    return jax.vmap(lambda k: jax.random.bernoulli(k, 0.5, (2,)))(jax.random.split(key, n))


# -- deterministic transforms ----------------------------------------------------------------------


def flip(images: Any, horizontal: Any, vertical: Any = None) -> jax.Array:
    """Mirror image i left-right where horizontal[i] and top-bottom where vertical[i]; (n,) bools."""
    images = _images(images)
    n = images.shape[0]
    out = images
    for mask, axis, name in ((horizontal, 2, "horizontal"), (vertical, 1, "vertical")):
        if mask is None:
            continue
        mask = jnp.asarray(mask)
        if mask.dtype != jnp.bool_ or mask.shape != (n,):
            raise ValueError(f"{name} must be a bool array of shape ({n},) (one per image), got {describe(mask)}")
        out = jnp.where(mask[:, None, None, None], jnp.flip(out, axis=axis), out)
    return out


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _resample(images: jax.Array, matrices: jax.Array, order: int, mode: str, cval: float) -> jax.Array:
    """out[i, p] = images[i, c + A_i (p - c)] for (row, col) positions p and centre c; A_i (n, 2, 2)."""
    _, height, width, _ = images.shape
    dtype = jnp.promote_types(images.dtype, jnp.float32)
    centre = jnp.array([(height - 1) / 2, (width - 1) / 2], dtype=dtype)
    rows, cols = jnp.meshgrid(jnp.arange(height, dtype=dtype), jnp.arange(width, dtype=dtype), indexing="ij")
    offsets = jnp.stack([rows, cols]) - centre[:, None, None]

    def one(image: jax.Array, matrix: jax.Array) -> jax.Array:
        coords = jnp.einsum("ij,jhw->ihw", matrix.astype(dtype), offsets) + centre[:, None, None]
        sample = lambda channel: map_coordinates(channel, [coords[0], coords[1]], order, mode=mode, cval=cval)
        return jax.vmap(sample, in_axes=2, out_axes=2)(image)

    return jax.vmap(one)(images, matrices)


def rotate(
    images: Any,
    angles: Any,
    *,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> jax.Array:
    """Rotate image i counter-clockwise (as displayed) by angles[i] radians about its centre.

    Output pixel at offset (y, x) from the centre (y down) samples the input at
    (y', x') = (sin θ·x + cos θ·y, cos θ·x - sin θ·y); angles (n,) or a scalar.
    """
    images = _images(images)
    order, mode, cval = _fill(interpolation, fill_mode, fill_value)
    theta = _per_image(angles, "angles", images.shape[0])
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    matrices = jnp.stack([jnp.stack([cos, sin], -1), jnp.stack([-sin, cos], -1)], -2)
    return _resample(images, matrices, order, mode, cval)


def zoom(
    images: Any,
    scales: Any,
    *,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> jax.Array:
    """Resample about the centre: output offset d samples the input at s·d (Keras RandomZoom's convention).

    s > 1 zooms out (the content shrinks, borders get fill_mode), s < 1 zooms in. scales (n,) keep
    the aspect ratio; (n, 2) give (height, width) scales; a scalar applies to every image.
    """
    images = _images(images)
    order, mode, cval = _fill(interpolation, fill_mode, fill_value)
    s = _per_image(scales, "scales", images.shape[0], width=2)
    if s.ndim == 1:
        s = jnp.stack([s, s], -1)
    if is_concrete(s) and bool(jnp.any(s <= 0)):
        raise ValueError(f"scales must be > 0, got minimum {float(jnp.min(s))!r}")
    matrices = jax.vmap(jnp.diag)(s)
    return _resample(images, matrices, order, mode, cval)


def adjust_brightness(images: Any, deltas: Any, value_range: tuple[float, float] = (0.0, 1.0)) -> jax.Array:
    """clip(images[i] + deltas[i], *value_range): one additive delta per image; deltas (n,) or a scalar."""
    images = _images(images)
    low, high = _value_range(value_range)
    d = _per_image(deltas, "deltas", images.shape[0]).astype(images.dtype)
    return jnp.clip(images + d[:, None, None, None], low, high)


def _value_range(value_range: Any) -> tuple[float, float]:
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise ValueError(f"value_range must be a (low, high) pair, got {value_range!r}")
    check_number(value_range[0], "value_range[0]")
    check_number(value_range[1], "value_range[1]")
    if not value_range[0] < value_range[1]:
        raise ValueError(f"value_range must have low < high, got {value_range!r}")
    return float(value_range[0]), float(value_range[1])


# -- random augmentation factories -----------------------------------------------------------------


def random_flip(mode: str = "horizontal") -> Augmentation:
    """Flip each image with probability 1/2 (independently per axis for "horizontal_and_vertical")."""
    check_choice(mode, "mode", FLIP_MODES)

    def apply(key: jax.Array, images: jax.Array) -> jax.Array:
        key, images = _key(key), _images(images)
        draws = _coin_flips_per_image(key, images.shape[0])
        horizontal = draws[:, 0] if mode != "vertical" else None
        vertical = draws[:, 1] if mode != "horizontal" else None
        return flip(images, horizontal, vertical)

    return apply


def random_rotation(
    factor: float | tuple[float, float],
    *,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> Augmentation:
    """Rotate each image by θ ~ U[lower·2π, upper·2π]; factor f means (-f, f); positive = counter-clockwise."""
    lower, upper = _range(factor, "factor", low=-math.inf, high=math.inf)
    options = dict(interpolation=interpolation, fill_mode=fill_mode, fill_value=fill_value)
    _fill(**options)

    def apply(key: jax.Array, images: jax.Array) -> jax.Array:
        key, images = _key(key), _images(images)
        angles = _uniform_per_image(key, images.shape[0], 2 * math.pi * lower, 2 * math.pi * upper)
        return rotate(images, angles, **options)

    return apply


def random_zoom(
    factor: float | tuple[float, float],
    *,
    interpolation: str = "bilinear",
    fill_mode: str = "constant",
    fill_value: float = 0.0,
) -> Augmentation:
    """Zoom each image by s = 1 + u, u ~ U[lower, upper]; factor f means (-f, f), f < 1.

    Keras RandomZoom's sign convention: u > 0 zooms out (content shrinks), u < 0 zooms in.
    One scale per image for both axes (aspect ratio kept).
    """
    lower, upper = _range(factor, "factor", low=-1.0, high=math.inf)
    if lower <= -1.0:
        raise ValueError(f"factor must keep the scale 1 + u > 0 (lower > -1), got {factor!r}")
    options = dict(interpolation=interpolation, fill_mode=fill_mode, fill_value=fill_value)
    _fill(**options)

    def apply(key: jax.Array, images: jax.Array) -> jax.Array:
        key, images = _key(key), _images(images)
        scales = 1.0 + _uniform_per_image(key, images.shape[0], lower, upper)
        return zoom(images, scales, **options)

    return apply


def random_brightness(
    factor: float | tuple[float, float], value_range: tuple[float, float] = (0.0, 1.0)
) -> Augmentation:
    """Add δ = u·(high - low), u ~ U[lower, upper], to every pixel of an image, then clip to value_range.

    factor f means (-f, f); factors lie in [-1, 1] (Keras RandomBrightness).
    """
    lower, upper = _range(factor, "factor", low=-1.0, high=1.0)
    low, high = _value_range(value_range)

    def apply(key: jax.Array, images: jax.Array) -> jax.Array:
        key, images = _key(key), _images(images)
        deltas = _uniform_per_image(key, images.shape[0], lower, upper) * (high - low)
        return adjust_brightness(images, deltas, (low, high))

    return apply


def compose(*augmentations: Augmentation) -> Augmentation:
    """One augmentation applying each in order, with its own key split from the given one."""
    for i, fn in enumerate(augmentations):
        if not callable(fn):
            raise TypeError(f"augmentations[{i}] must be a callable fn(key, images), got {describe(fn)}")

    def apply(key: jax.Array, images: jax.Array) -> jax.Array:
        key, images = _key(key), _images(images)
        if not augmentations:
            return images
        for fn, sub in zip(augmentations, jax.random.split(key, len(augmentations))):
            images = fn(sub, images)
        return images

    return apply
