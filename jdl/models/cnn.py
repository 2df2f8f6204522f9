"""Convolutional classifiers: [Conv2D → (BatchNorm) → activation → pool] × L, Flatten, then a Dense head.

`CNN` is the configurable stack; `LeNet` is its LeNet-5-style MNIST preset; `lecture_cnn` builds
the lecture's Keras CNN (Conv2D(32, 3×3, relu) on 32×32×3 → MaxPooling2D(2×2) → Flatten → Dense).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax

from jdl import _checks
from jdl.nn import activations, initializers
from jdl.nn.conv import Conv2D, Flatten, pool as pool_fn, _ints, _padding

ConvSpec = int | tuple[int, int | Sequence[int]] | tuple[int, int | Sequence[int], Any]


def _conv_layers(conv: Any, padding: Any) -> tuple[tuple[int, tuple[int, int], Any], ...]:
    """conv entries (filters | (filters, kernel) | (filters, kernel, padding)) as (filters, kernel, padding)."""
    if isinstance(conv, (str, bytes)) or not isinstance(conv, Sequence):
        raise TypeError(f"conv must be a sequence of conv layers, got {_checks.describe(conv)}")
    layers = []
    for i, entry in enumerate(conv):
        if isinstance(entry, int) and not isinstance(entry, bool):
            entry = (entry, 3)
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) not in (2, 3):
            raise TypeError(
                f"conv[{i}] must be filters, (filters, kernel_size) or (filters, kernel_size, padding), "
                f"got {_checks.describe(entry)}"
            )
        _checks.check_number(entry[0], f"conv[{i}] filters", integer=True, positive=True)
        kernel = _ints(entry[1], f"conv[{i}] kernel_size", 2)
        layer_padding = entry[2] if len(entry) == 3 else padding
        _padding(layer_padding, 2)
        layers.append((int(entry[0]), kernel, layer_padding))
    return tuple(layers)


def _pools(pool: Any, count: int) -> tuple[int | None, ...]:
    """pool (None/0: none; int: after every conv; sequence: one entry per conv, None to skip) per layer."""
    if pool is None or (isinstance(pool, int) and not isinstance(pool, bool) and pool == 0):
        return (None,) * count
    if isinstance(pool, int) and not isinstance(pool, bool):
        _checks.check_number(pool, "pool", integer=True, positive=True)
        return (pool,) * count
    if isinstance(pool, (str, bytes)) or not isinstance(pool, Sequence) or len(pool) != count:
        raise TypeError(
            f"pool must be None, an int pool size, or {count} entries (one per conv layer, each an int "
            f"or None), got {_checks.describe(pool)}"
        )
    for i, size in enumerate(pool):
        if size is not None:
            _checks.check_number(size, f"pool[{i}]", integer=True, nonnegative=True)
    return tuple(size or None for size in pool)


class CNN(nn.Module):
    """Images x (batch, H, W, C) -> logits (batch, outputs).

    conv: one entry per conv layer, `filters` (3×3), `(filters, kernel_size)` or `(filters,
    kernel_size, padding)`; padding: the default for entries without one ("valid", "same", int p).
    Each layer: Conv2D (stride 1) → [BatchNorm] → activation → [pool]. pool: pool size after every
    conv layer (stride = size), None/0 for none, or one entry per layer; pooling: "max", "avg" or
    "min". dense: widths of the hidden Dense layers after Flatten, each followed by the activation
    and inverted dropout (rate `dropout`, training only). batch_norm: Keras momentum 0.99, ε 1e-3,
    running statistics at inference. input_channels: C, checked against x (catches NCHW input).
    fast_grad: convolution gradients by forward convolutions (see Conv2D); False allows jax.jvp.
    output_activation: what `Trainer.predict` applies (None: inferred from the loss).
    """

    conv: Sequence[ConvSpec] = ((32, 3), (64, 3))
    pool: int | Sequence[int | None] | None = 2
    dense: Sequence[int] = (128,)
    outputs: int = 10
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    batch_norm: bool = False
    dropout: float = 0.0
    kernel_init: str | Callable[..., jax.Array] = "he_normal"
    output_activation: str | Callable[[jax.Array], jax.Array] | None = None
    padding: Any = "valid"
    pooling: str = "max"
    input_channels: int | None = None
    fast_grad: bool = True

    def __post_init__(self) -> None:
        layers = _conv_layers(self.conv, self.padding)
        _pools(self.pool, len(layers))
        if isinstance(self.dense, (str, bytes)) or not isinstance(self.dense, Sequence):
            raise TypeError(f"dense must be a sequence of layer widths, got {_checks.describe(self.dense)}")
        for width in self.dense:
            _checks.check_number(width, "dense widths", integer=True, positive=True)
        _checks.check_number(self.outputs, "outputs", integer=True, positive=True)
        _checks.check_number(self.dropout, "dropout", nonnegative=True)
        if not self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.batch_norm, bool):
            raise TypeError(f"batch_norm must be a bool, got {_checks.describe(self.batch_norm)}")
        _checks.check_choice(self.pooling, "pooling", ("max", "avg", "min"))
        activations.get(self.activation)
        initializers.get(self.kernel_init)
        if self.output_activation is not None:
            activations.get(self.output_activation)
        if self.input_channels is not None:
            _checks.check_number(self.input_channels, "input_channels", integer=True, positive=True)
        if not isinstance(self.fast_grad, bool):
            raise TypeError(f"fast_grad must be a bool, got {_checks.describe(self.fast_grad)}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 4:
            hint = ""
            if x.ndim == 3:
                hint = "; grayscale images (batch, H, W): add a channel axis with x[..., None]"
            elif x.ndim == 2:
                hint = "; flat images (batch, H·W·C): reshape with x.reshape(-1, H, W, C)"
            raise ValueError(
                f"x of {type(self).__name__} must have 4 dimensions (batch, height, width, channels), "
                f"got shape {tuple(x.shape)}{hint}"
            )
        act = activations.get(self.activation)
        init = initializers.get(self.kernel_init)
        layers = _conv_layers(self.conv, self.padding)
        for i, ((filters, kernel, padding), size) in enumerate(zip(layers, _pools(self.pool, len(layers)))):
            x = Conv2D(filters, kernel, padding=padding, use_bias=not self.batch_norm, kernel_init=init,
                       input_channels=self.input_channels if i == 0 else None, fast_grad=self.fast_grad)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(x)
            x = act(x)
            if size is not None:
                x = pool_fn(x, self.pooling, size)
        x = Flatten()(x)
        for width in self.dense:
            x = act(nn.Dense(width, kernel_init=init)(x))
            if self.dropout:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.outputs, kernel_init=init)(x)


class LeNet(CNN):
    """LeNet-style MNIST classifier: x (batch, 28, 28, 1) -> logits (batch, 10).

    Conv2D(6, 5×5, same) → relu → MaxPool 2 → Conv2D(16, 5×5, valid) → relu → MaxPool 2 → Flatten
    (5·5·16 = 400) → Dense 120 → relu → Dense 84 → relu → Dense 10. Every CNN option applies.
    """

    conv: Sequence[ConvSpec] = ((6, 5, "same"), (16, 5, "valid"))
    pool: int | Sequence[int | None] | None = 2
    dense: Sequence[int] = (120, 84)
    outputs: int = 10


def lecture_cnn(dense: Sequence[int] = (64,), outputs: int = 10, **options: Any) -> CNN:
    """The lecture's Keras CNN: Conv2D(32, 3×3, relu) on 32×32×3 → MaxPooling2D(2×2) → Flatten → Dense head.

    x (batch, 32, 32, 3) -> (batch, 30, 30, 32) -> (batch, 15, 15, 32) -> 7200 -> dense -> logits
    (batch, outputs). Keras defaults: Glorot-uniform kernels. options: any further CNN attribute.
    """
    settings = dict(conv=((32, 3),), pool=2, dense=dense, outputs=outputs, activation="relu",
                    kernel_init="xavier_uniform", input_channels=3)
    settings.update(options)
    return CNN(**settings)
