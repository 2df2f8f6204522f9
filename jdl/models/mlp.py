"""The multi-layer perceptron: Dense → [BatchNorm] → activation → [Dropout], repeated, then a Dense head."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax

from jdl import _checks
from jdl.nn import activations, initializers


class MLP(nn.Module):
    """x (batch, ...) flattened to (batch, d) -> logits (batch, outputs).

    hidden: widths of the hidden layers; activation and kernel_init by name or callable ("prelu":
    a learnable slope per unit of each hidden layer);
    dropout: inverted-dropout rate after each hidden activation (training only); batch_norm:
    BatchNorm before each hidden activation (Keras momentum 0.99, ε 1e-3; running statistics
    at inference). output_activation: what `Trainer.predict` applies (None: inferred from the loss).
    """

    hidden: Sequence[int] = (64,)
    outputs: int = 1
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    kernel_init: str | Callable[..., jax.Array] = "xavier_uniform"
    dropout: float = 0.0
    batch_norm: bool = False
    output_activation: str | Callable[[jax.Array], jax.Array] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.hidden, (str, bytes)) or not isinstance(self.hidden, Sequence):
            raise TypeError(f"hidden must be a sequence of layer widths, got {_checks.describe(self.hidden)}")
        for width in self.hidden:
            _checks.check_number(width, "hidden widths", integer=True, positive=True)
        _checks.check_number(self.outputs, "outputs", integer=True, positive=True)
        _checks.check_number(self.dropout, "dropout", nonnegative=True)
        if not self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        activations.check(self.activation)
        initializers.get(self.kernel_init)
        if self.output_activation is not None:
            activations.get(self.output_activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        init = initializers.get(self.kernel_init)
        x = x.reshape((x.shape[0], -1))
        for width in self.hidden:
            x = nn.Dense(width, kernel_init=init, use_bias=not self.batch_norm)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(x)
            x = activations.layer(self.activation)(x)
            if self.dropout:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.outputs, kernel_init=init)(x)
