"""Autoencoders: dense, convolutional (NHWC) and variational; latent-space and reconstruction plots.

Every model outputs logits of the reconstruction (train with `binary_crossentropy` on inputs
scaled to [0, 1]); `output_activation="sigmoid"` is what `Trainer.predict` applies.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl.nn import activations, initializers


def _check_widths(widths: Any, name: str, *, allow_empty: bool = True) -> None:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"{name} must be a sequence of layer widths, got {_checks.describe(widths)}")
    if not allow_empty and not widths:
        raise ValueError(f"{name} must hold at least one width, got {tuple(widths)!r}")
    for width in widths:
        _checks.check_number(width, f"{name} widths", integer=True, positive=True)


def _check_dense_input(x: Any, name: str = "x") -> None:
    if not hasattr(x, "shape") or len(x.shape) != 2:
        got = f"shape {tuple(x.shape)}" if hasattr(x, "shape") else _checks.describe(x)
        raise ValueError(f"{name} must have shape (batch, features) (flatten images first), got {got}")


def _check_latent(z: Any, latent_dim: int) -> None:
    if not hasattr(z, "shape") or len(z.shape) != 2 or z.shape[1] != latent_dim:
        got = f"shape {tuple(z.shape)}" if hasattr(z, "shape") else _checks.describe(z)
        raise ValueError(f"z must have shape (batch, {latent_dim}) (batch, latent_dim), got {got}")


class _Reconstruction(nn.Module):
    """The decoder's output layer h (batch, k) -> logits (batch, features).

    features=None (a standalone `decode` call) reads the width from the parameters built at init.
    """

    kernel_init: Callable[..., jax.Array]

    @nn.compact
    def __call__(self, h: jax.Array, features: int | None = None) -> jax.Array:
        if features is None:
            if not self.has_variable("params", "kernel"):
                raise ValueError("decode needs the model's parameters: initialise it with model.init(key, x) on inputs first")
            features = self.get_variable("params", "kernel").shape[-1]
        kernel = self.param("kernel", self.kernel_init, (h.shape[-1], features))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        return h @ kernel + bias


def _check_codec(model: nn.Module) -> None:
    """ValueError/TypeError for a bad latent_dim, activation, kernel_init or output_activation."""
    _checks.check_number(model.latent_dim, "latent_dim", integer=True, positive=True)
    activations.get(model.activation)
    initializers.get(model.kernel_init)
    if model.output_activation is not None:
        activations.get(model.output_activation)


class _DenseCodec(nn.Module):
    """Shared fields and validation of the dense autoencoders."""

    encoder: Sequence[int] = (256, 64)
    latent_dim: int = 2
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    decoder: Sequence[int] | None = None
    kernel_init: str | Callable[..., jax.Array] = "he_uniform"
    output_activation: str | Callable[[jax.Array], jax.Array] | None = "sigmoid"

    def __post_init__(self) -> None:
        _check_widths(self.encoder, "encoder")
        if self.decoder is not None:
            _check_widths(self.decoder, "decoder")
        _check_codec(self)
        super().__post_init__()

    @property
    def decoder_widths(self) -> tuple[int, ...]:
        return tuple(self.decoder) if self.decoder is not None else tuple(reversed(tuple(self.encoder)))

    def _build(self, latent_outputs: int) -> None:
        init = initializers.get(self.kernel_init)
        self.encoder_layers = [nn.Dense(w, kernel_init=init) for i, w in enumerate(self.encoder)]
        self.latent_layer = nn.Dense(latent_outputs, kernel_init=init)
        self.decoder_layers = [nn.Dense(w, kernel_init=init) for i, w in enumerate(self.decoder_widths)]
        self.reconstruction = _Reconstruction(init)

    def _encoded(self, x: jax.Array) -> jax.Array:
        act = activations.get(self.activation)
        for layer in self.encoder_layers:
            x = act(layer(x))
        return self.latent_layer(x)

    def _decoded(self, z: jax.Array, features: int | None) -> jax.Array:
        act = activations.get(self.activation)
        for layer in self.decoder_layers:
            z = act(layer(z))
        return self.reconstruction(z, features)


class Autoencoder(_DenseCodec):
    """Dense autoencoder x (batch, d) -> code z (batch, latent_dim) -> reconstruction logits (batch, d).

    encoder: hidden widths down to the code; decoder: widths up from it (default: encoder reversed).
    Hidden layers use `activation`; the code is linear. `encode`/`decode` are usable alone:
    `model.apply(variables, x, method=Autoencoder.encode)`.
    """

    def setup(self) -> None:
        self._build(self.latent_dim)

    def encode(self, x: jax.Array) -> jax.Array:
        """x (batch, d) -> z (batch, latent_dim)."""
        _check_dense_input(x)
        return self._encoded(x)

    def decode(self, z: jax.Array) -> jax.Array:
        """z (batch, latent_dim) -> reconstruction logits (batch, d)."""
        _check_latent(z, self.latent_dim)
        return self._decoded(z, None)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Reconstruction logits (batch, d) of x (batch, d)."""
        _check_dense_input(x)
        return self._decoded(self._encoded(x), x.shape[1])


def kl_standard_normal(mu: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1) per example: (batch, k) -> (batch,)."""
    return 0.5 * jnp.sum(mu**2 + jnp.exp(log_var) - log_var - 1.0, axis=-1)


class VAE(_DenseCodec):
    """Variational autoencoder x (batch, d) -> (μ, log σ²) (batch, latent_dim) each -> logits (batch, d).

    Training mode samples z = μ + σ ⊙ ε, ε ~ N(0, I) from the "sample" RNG stream; inference
    mode uses z = μ (deterministic). The KL term β·KL(N(μ, σ²) ‖ N(0, I)) per example is sown
    into the "losses" collection, which the Trainer adds to the cost. With the Trainer's
    `binary_crossentropy` (a mean over the d pixels) and the default β = 1/d, the cost is
    (Σ_pixels BCE + KL) / d = −ELBO / d, the negative evidence lower bound per pixel.
    Any other β > 0 weighs the KL term against the mean per-pixel BCE directly (β-VAE).
    """

    beta: float | None = None

    def __post_init__(self) -> None:
        if self.beta is not None:
            _checks.check_number(self.beta, "beta", positive=True)
        super().__post_init__()

    def setup(self) -> None:
        self._build(2 * self.latent_dim)

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x (batch, d) -> (μ, log σ²), each (batch, latent_dim)."""
        _check_dense_input(x)
        h = self._encoded(x)
        return h[:, : self.latent_dim], h[:, self.latent_dim :]

    def decode(self, z: jax.Array) -> jax.Array:
        """z (batch, latent_dim) -> reconstruction logits (batch, d)."""
        _check_latent(z, self.latent_dim)
        return self._decoded(z, None)

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Reconstruction logits (batch, d); sows β·KL (batch,) into "losses"/"kl"."""
        mu, log_var = self.encode(x)
        if train:
            eps = jax.random.normal(self.make_rng("sample"), mu.shape, mu.dtype)
            z = mu + jnp.exp(0.5 * log_var) * eps
        else:
            z = mu
        beta = 1.0 / x.shape[1] if self.beta is None else self.beta
        self.sow("losses", "kl", beta * kl_standard_normal(mu, log_var))
        return self._decoded(z, x.shape[1])


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder on images x (batch, H, W, C) -> code (batch, latent_dim) -> logits (batch, H, W, C).

    Encoder: 3×3 convolutions with stride 2 ('SAME') for each of `filters`, flatten, Dense(latent_dim).
    Decoder: Dense back to the last feature map, 3×3 transposed convolutions with stride 2 for the
    filters in reverse, a 3×3 convolution to C channels, cropped to H×W.
    """

    input_shape: tuple[int, int, int]
    filters: Sequence[int] = (16, 32)
    latent_dim: int = 16
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    kernel_init: str | Callable[..., jax.Array] = "he_uniform"
    output_activation: str | Callable[[jax.Array], jax.Array] | None = "sigmoid"

    def __post_init__(self) -> None:
        shape = self.input_shape
        if (isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 3
                or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise ValueError(f"input_shape must be (H, W, C), three positive integers, got {shape!r}")
        _check_widths(self.filters, "filters", allow_empty=False)
        _check_codec(self)
        super().__post_init__()

    @property
    def code_map_shape(self) -> tuple[int, int, int]:
        """(h, w, filters[-1]) of the last encoder feature map: each stride-2 'SAME' conv maps n to ⌈n/2⌉."""
        h, w, _ = self.input_shape
        for _ in self.filters:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        return h, w, int(self.filters[-1])

    def setup(self) -> None:
        init = initializers.get(self.kernel_init)
        self.down = [nn.Conv(int(f), (3, 3), strides=(2, 2), padding="SAME", kernel_init=init)
                     for i, f in enumerate(self.filters)]
        self.to_code = nn.Dense(self.latent_dim, kernel_init=init)
        self.from_code = nn.Dense(math.prod(self.code_map_shape), kernel_init=init)
        up = tuple(reversed(tuple(self.filters)))
        self.up = [nn.ConvTranspose(int(f), (3, 3), strides=(2, 2), padding="SAME", kernel_init=init)
                   for i, f in enumerate(up)]
        self.to_pixels = nn.Conv(int(self.input_shape[2]), (3, 3), padding="SAME", kernel_init=init)

    def _check_input(self, x: Any) -> None:
        if not hasattr(x, "shape") or len(x.shape) != 4 or tuple(x.shape[1:]) != tuple(self.input_shape):
            got = f"shape {tuple(x.shape)}" if hasattr(x, "shape") else _checks.describe(x)
            h, w, c = self.input_shape
            raise ValueError(f"x must have shape (batch, {h}, {w}, {c}) (NHWC, input_shape={tuple(self.input_shape)}), got {got}")

    def encode(self, x: jax.Array) -> jax.Array:
        """x (batch, H, W, C) -> z (batch, latent_dim)."""
        self._check_input(x)
        act = activations.get(self.activation)
        for conv in self.down:
            x = act(conv(x))
        return self.to_code(x.reshape((x.shape[0], -1)))

    def decode(self, z: jax.Array) -> jax.Array:
        """z (batch, latent_dim) -> reconstruction logits (batch, H, W, C)."""
        _check_latent(z, self.latent_dim)
        act = activations.get(self.activation)
        h = act(self.from_code(z)).reshape((z.shape[0], *self.code_map_shape))
        for deconv in self.up:
            h = act(deconv(h))
        height, width, _ = self.input_shape
        return self.to_pixels(h)[:, :height, :width, :]

    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Reconstruction logits (batch, H, W, C) of x (batch, H, W, C)."""
        return self.decode(self.encode(x))


# -- plots -----------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _check_path(path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path (str or os.PathLike), got {_checks.describe(path)}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    return path


def latent_plot(encoded: Any, labels: Any, path: str | os.PathLike, *, inputs: Any = None,
                title: str = "latent space") -> str:
    """Scatter of 2-D codes colored by label, saved as a PNG; returns the path.

    encoded: codes (n, k), or a function applied to `inputs` returning codes or (μ, log σ²)
    (then μ is plotted). Codes with k > 2 are projected on their first two principal components.
    labels: (n,) integer labels.
    """
    if callable(encoded):
        if inputs is None:
            raise ValueError("inputs must be given when encoded is a function (the codes are encoded(inputs))")
        encoded = encoded(inputs)
        if isinstance(encoded, (tuple, list)):
            encoded = encoded[0]
    points = np.asarray(_checks.as_array(encoded, "encoded"), np.float64)
    if points.ndim != 2 or points.shape[1] < 2:
        raise ValueError(f"encoded must have shape (n, k) with k >= 2 latent dimensions, got {points.shape}")
    labels = np.asarray(_checks.as_array(labels, "labels", dtype_kind="int"))
    if labels.shape != (points.shape[0],):
        raise ValueError(f"labels must have shape ({points.shape[0]},), one per code, got {labels.shape}")
    axes_names = ("z1", "z2")
    if points.shape[1] > 2:
        centred = points - points.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        points = centred @ vt[:2].T
        axes_names = ("principal component 1", "principal component 2")
    path = _check_path(path)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        pick = labels == c
        ax.scatter(points[pick, 0], points[pick, 1], s=8, color=cmap(i % cmap.N), label=str(c), alpha=0.8)
    ax.set_xlabel(axes_names[0])
    ax.set_ylabel(axes_names[1])
    ax.set_title(title)
    ax.legend(title="label", markerscale=2, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _as_images(x: Any, name: str, image_shape: tuple[int, ...] | None) -> np.ndarray:
    array = np.asarray(_checks.as_array(x, name), np.float64)
    if image_shape is not None:
        if array.ndim < 2 or math.prod(array.shape[1:]) != math.prod(image_shape):
            raise ValueError(f"{name} must hold n images of {math.prod(image_shape)} values (image_shape={image_shape}), "
                             f"got shape {array.shape}")
        array = array.reshape((array.shape[0], *image_shape))
    elif array.ndim == 2:
        side = math.isqrt(array.shape[1])
        if side * side != array.shape[1]:
            raise ValueError(f"{name} is flat (n, {array.shape[1]}) and {array.shape[1]} is not a square; give image_shape")
        array = array.reshape((array.shape[0], side, side))
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[-1] != 3):
        raise ValueError(f"{name} must hold images (n, H, W), (n, H, W, 1) or (n, H, W, 3), got shape {array.shape}")
    return array


def reconstruction_grid(originals: Any, reconstructions: Any, path: str | os.PathLike, *,
                        image_shape: tuple[int, ...] | None = None, max_images: int = 10,
                        title: str = "top: originals, bottom: reconstructions") -> str:
    """Originals (top row) above their reconstructions (bottom row), saved as a PNG; returns the path.

    originals, reconstructions: (n, H, W[, C]) images, or flat (n, d) with `image_shape`
    (square images by default); values in [0, 1]. At most `max_images` columns.
    """
    _checks.check_number(max_images, "max_images", integer=True, positive=True)
    top = _as_images(originals, "originals", image_shape)
    bottom = _as_images(reconstructions, "reconstructions", image_shape)
    if top.shape != bottom.shape:
        raise ValueError(f"originals and reconstructions must have the same shape, got {top.shape} and {bottom.shape}")
    n = min(len(top), max_images)
    if n == 0:
        raise ValueError("originals must hold at least one image, got 0")
    path = _check_path(path)
    plt = _pyplot()
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.8), squeeze=False)
    for row, images in enumerate((top, bottom)):
        for col in range(n):
            ax = axes[row, col]
            ax.imshow(np.clip(images[col], 0.0, 1.0), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstructed")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
