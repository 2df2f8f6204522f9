"""Keras-spelled layers for `jdl.models.Sequential`: Dense, Dropout, BatchNormalization, Activation, MaxPooling2D, LSTM, GRU.

Each is a thin Flax Linen module around the Flax or jdl layer that does the work (nn.Dense,
nn.Dropout, nn.BatchNorm, jdl's pooling, Recurrent with LSTMCell/GRUCell), sharing its scope, so
the parameters are named as the wrapped layer names them ("kernel", "bias", "cell/...") and the
per-example fast path covers them. Conv2D, Flatten and Embedding are jdl's own (jdl.nn.conv,
jdl.nn.embedding). Layers with parameters declare their regularizers and constraints
(`declared_regularizers`, `declared_constraints`: (path, value) pairs) for the model to apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax

from jdl import _checks, constraints, regularizers
from jdl.nn import activations, initializers
from jdl.nn.cells import GRUCell, LSTMCell
from jdl.nn.conv import MaxPool
from jdl.nn.layers import PReLU
from jdl.nn.recurrent import Recurrent, check_sequence

ActivationSpec = str | Callable[[jax.Array], jax.Array] | None


def _check_activation(activation: Any) -> None:
    if activation != "prelu":
        activations.get(activation)


def _check_float_input(x: Any, who: str, min_ndim: int = 2) -> jax.Array:
    x = _checks.as_array(x, f"x of {who}", dtype_kind="float")
    if x.ndim < min_ndim:
        raise ValueError(f"x of {who} must have shape (batch, ..., features), got shape {tuple(x.shape)}")
    return x


def _check_rate(rate: Any) -> None:
    _checks.check_number(rate, "rate", nonnegative=True)
    if not rate < 1:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")


class Dense(nn.Module):
    """Keras Dense: y = activation(x W + b), x (batch, ..., d) -> (batch, ..., units).

    activation: a name ("relu", ...; "prelu": a learned PReLU after the affine map, whose kernel then
    takes the vmap path of per-example gradients: a PReLU() layer after it keeps the fast one), a
    function or None (linear). kernel_initializer / bias_initializer: jdl initializer names
    ("glorot_uniform", Keras' default) or functions. kernel_regularizer / bias_regularizer: a
    `jdl.regularizers` value or name, added to the cost; kernel_constraint / bias_constraint: a
    `jdl.constraints` value or name, applied after each update (both by the Trainer, for a layer of
    a `jdl.models.Sequential` or of a model whose `declared_regularizers` / `declared_constraints`
    name it). Parameters: kernel (d, units), bias (units,).
    """

    units: int
    activation: ActivationSpec = None
    use_bias: bool = True
    kernel_initializer: str | Callable[..., jax.Array] = "glorot_uniform"
    bias_initializer: str | Callable[..., jax.Array] = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    kernel_constraint: Any = None
    bias_constraint: Any = None

    def __post_init__(self) -> None:
        _checks.check_number(self.units, "units", integer=True, positive=True)
        _check_activation(self.activation)
        if not isinstance(self.use_bias, bool):
            raise TypeError(f"use_bias must be a bool, got {_checks.describe(self.use_bias)}")
        initializers.get(self.kernel_initializer)
        initializers.get(self.bias_initializer)
        for name in ("kernel_regularizer", "bias_regularizer"):
            regularizers.get(getattr(self, name))
        for name in ("kernel_constraint", "bias_constraint"):
            constraints.get(getattr(self, name))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = _check_float_input(x, f"Dense {self.name!r}" if self.name else "Dense")
        dense = nn.Dense(self.units, use_bias=self.use_bias, kernel_init=initializers.get(self.kernel_initializer),
                         bias_init=initializers.get(self.bias_initializer))
        nn.share_scope(self, dense)
        y = dense(x)
        if self.activation == "prelu":
            return PReLU(name="p_re_lu")(y)
        return activations.get(self.activation)(y)

    @nn.nowrap
    def declared_regularizers(self) -> regularizers.Declared:
        """(("kernel",), r) and (("bias",), r) for the regularizers given."""
        pairs = [(("kernel",), regularizers.get(self.kernel_regularizer))]
        if self.use_bias:
            pairs.append((("bias",), regularizers.get(self.bias_regularizer)))
        return tuple((path, r) for path, r in pairs if r is not None)

    @nn.nowrap
    def declared_constraints(self) -> constraints.Declared:
        """(("kernel",), c) and (("bias",), c) for the constraints given."""
        pairs = [(("kernel",), constraints.get(self.kernel_constraint))]
        if self.use_bias:
            pairs.append((("bias",), constraints.get(self.bias_constraint)))
        return tuple((path, c) for path, c in pairs if c is not None)


class Dropout(nn.Module):
    """Keras Dropout: in training each unit is zeroed with probability rate, survivors × 1/(1 - rate); identity at inference."""

    rate: float

    def __post_init__(self) -> None:
        _check_rate(self.rate)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        dropout = nn.Dropout(self.rate, deterministic=not train)
        nn.share_scope(self, dropout)
        return dropout(x)


class BatchNormalization(nn.Module):
    """Keras BatchNormalization: γ (x - μ)/√(σ² + ε) + β per feature (last axis); μ, σ² of the batch in training.

    At inference the running statistics are used; momentum: of the running statistics (Keras 0.99); epsilon (Keras 1e-3). Parameters scale γ and
    bias β (trainable), batch_stats mean and var (non-trainable), each (features,).
    """

    momentum: float = 0.99
    epsilon: float = 1e-3
    center: bool = True
    scale: bool = True

    def __post_init__(self) -> None:
        _checks.check_number(self.momentum, "momentum", nonnegative=True)
        if not self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        _checks.check_number(self.epsilon, "epsilon", positive=True)
        for flag in ("center", "scale"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {_checks.describe(getattr(self, flag))}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = _check_float_input(x, "BatchNormalization")
        norm = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, epsilon=self.epsilon,
                            use_bias=self.center, use_scale=self.scale)
        nn.share_scope(self, norm)
        return norm(x)


class Activation(nn.Module):
    """Keras Activation: y = activation(x), element-wise (softmax over the last axis); no parameters."""

    activation: ActivationSpec

    def __post_init__(self) -> None:
        activations.get(self.activation)
        super().__post_init__()

    def __call__(self, x: jax.Array) -> jax.Array:
        return activations.get(self.activation)(x)


class MaxPooling2D(MaxPool):
    """Keras MaxPooling2D: x (batch, H, W, C) -> (batch, H', W', C), the max over each pool_size window.

    pool_size (Keras default (2, 2)), strides (default pool_size), padding "valid" or "same".
    """

    pool_size: int | Sequence[int] = (2, 2)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = _checks.as_array(x, "x of MaxPooling2D") if not hasattr(x, "ndim") else x
        if x.ndim != 4:
            raise ValueError(
                f"x of MaxPooling2D must have 4 dimensions (batch, height, width, channels), got shape {tuple(x.shape)}"
            )
        return super().__call__(x)


class _RecurrentLayer(nn.Module):
    """Shared by LSTM and GRU: a jdl `Recurrent` over the cell, sharing this layer's scope."""

    units: int
    activation: ActivationSpec = "tanh"
    recurrent_activation: ActivationSpec = "sigmoid"
    kernel_initializer: str | Callable[..., jax.Array] = "glorot_uniform"
    recurrent_initializer: str | Callable[..., jax.Array] = "orthogonal"
    bias_initializer: str | Callable[..., jax.Array] = "zeros"
    return_sequences: bool = False
    return_state: bool = False

    def __post_init__(self) -> None:
        self._cell()
        for flag in ("return_sequences", "return_state"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {_checks.describe(getattr(self, flag))}")
        super().__post_init__()

    @nn.nowrap
    def _cell(self) -> Any:
        raise NotImplementedError

    @nn.compact
    def __call__(self, x: jax.Array) -> Any:
        x = check_sequence(x, f"x of {type(self).__name__}")
        layer = Recurrent(self._cell(), return_sequences=self.return_sequences, return_state=self.return_state)
        nn.share_scope(self, layer)
        return layer(x)


class LSTM(_RecurrentLayer):
    """Keras LSTM: x (batch, time, features) -> h_T (batch, units), or (batch, time, units) with return_sequences.

    Gates i, f, g, o (see jdl.nn.cells.LSTMCell); unit_forget_bias: the forget gate's bias starts
    at 1 (Keras). With return_state: (outputs, (c_T, h_T)). Parameters: cell/input kernel
    (features, 4·units) and bias (4·units,), cell/recurrent_kernel (units, 4·units).
    """

    unit_forget_bias: bool = True

    @nn.nowrap
    def _cell(self) -> LSTMCell:
        return LSTMCell(self.units, kernel_init=self.kernel_initializer, recurrent_init=self.recurrent_initializer,
                        bias_init=self.bias_initializer, activation=self.activation,
                        recurrent_activation=self.recurrent_activation, unit_forget_bias=self.unit_forget_bias,
                        parent=None)


class GRU(_RecurrentLayer):
    """Keras GRU (reset_after=True, Keras' default): x (batch, time, features) -> h_T (batch, units) or the sequence.

    See jdl.nn.cells.GRUCell. With return_state: (outputs, h_T). Parameters: cell/input kernel
    (features, 3·units) and bias, cell/recurrent_kernel (units, 3·units) and recurrent_bias (3·units,).
    """

    @nn.nowrap
    def _cell(self) -> GRUCell:
        return GRUCell(self.units, kernel_init=self.kernel_initializer, recurrent_init=self.recurrent_initializer,
                       bias_init=self.bias_initializer, activation=self.activation,
                       recurrent_activation=self.recurrent_activation, parent=None)


__all__ = ["Activation", "BatchNormalization", "Dense", "Dropout", "GRU", "LSTM", "MaxPooling2D"]
