"""Recurrent models: many-to-one (SequenceClassifier), many-to-many (SequenceTagger), one-to-many (SequenceGenerator).

Each is a stack of `layers` recurrent layers of `units` units ("simple_rnn", "lstm" or "gru" cells,
optionally bidirectional) and a Dense head that outputs logits (or regression values). The
sequence models take x (batch, time, features), or the pair (x, seq_lengths) for padded
variable-length sequences (seq_lengths (batch,)); the pair passes through `jdl.Trainer` as is.
With `vocab_size`, SequenceClassifier and SequenceTagger take integer tokens (batch, time) instead
and start with an `Embedding(vocab_size, embed_dim)`; `mask_zero`: token 0 is padding, and the
recurrent layers skip it (Keras' `Embedding(mask_zero=True)` before an LSTM).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jdl import _checks
from jdl.nn import activations, initializers, recurrent
from jdl.nn.embedding import Embedding, check_tokens


class _RecurrentModel(nn.Module):
    """Fields and validation shared by the recurrent models."""

    cell: str = "lstm"
    units: int = 32
    layers: int = 1
    outputs: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    kernel_init: str | Callable[..., jax.Array] = "xavier_uniform"
    unroll: int = 1
    output_activation: str | Callable[[jax.Array], jax.Array] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cell, str):
            raise TypeError(f'cell must be a cell name ("simple_rnn", "lstm" or "gru"), got {_checks.describe(self.cell)}')
        _checks.lookup("cell", self.cell, recurrent.CELLS)
        _checks.check_number(self.units, "units", integer=True, positive=True)
        _checks.check_number(self.layers, "layers", integer=True, positive=True)
        _checks.check_number(self.outputs, "outputs", integer=True, positive=True)
        if not isinstance(self.bidirectional, bool):
            raise TypeError(f"bidirectional must be a bool, got {_checks.describe(self.bidirectional)}")
        _checks.check_number(self.dropout, "dropout", nonnegative=True)
        if not self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        initializers.get(self.kernel_init)
        _checks.check_number(self.unroll, "unroll", integer=True, positive=True)
        if self.output_activation is not None:
            activations.get(self.output_activation)
        super().__post_init__()

    def _cells(self) -> list[recurrent._Cell]:
        return [recurrent.cell(self.cell.lower(), self.units, parent=None) for _ in range(self.layers)]

    def _head(self) -> nn.Dense:
        return nn.Dense(self.outputs, kernel_init=initializers.get(self.kernel_init), name="head")


def _pair(inputs: Any, what: str) -> tuple[Any, Any]:
    """(x, seq_lengths or None) from x or the pair (x, seq_lengths); what names x's expected form."""
    if not isinstance(inputs, (tuple, list)):
        return inputs, None
    if len(inputs) != 2:
        raise ValueError(f"inputs must be {what} or the pair ({what.split()[0]}, seq_lengths), "
                         f"got a sequence of {len(inputs)}")
    return inputs[0], inputs[1]


def _checked_lengths(lengths: Any, x: jax.Array) -> jax.Array | None:
    return None if lengths is None else recurrent.check_seq_lengths(lengths, x.shape[0], x.shape[1])


def split_inputs(inputs: Any) -> tuple[jax.Array, jax.Array | None]:
    """(x, seq_lengths) from x (batch, time, features) or the pair (x, seq_lengths)."""
    x, lengths = _pair(inputs, "x (batch, time, features)")
    x = recurrent.check_sequence(x)
    return x, _checked_lengths(lengths, x)


def split_token_inputs(inputs: Any, vocab_size: int) -> tuple[jax.Array, jax.Array | None]:
    """(tokens, seq_lengths) from tokens (batch, time) or the pair (tokens, seq_lengths); ids checked < vocab_size when concrete."""
    tokens, lengths = _pair(inputs, "tokens (batch, time)")
    tokens = check_tokens(tokens, "x", vocab_size, "vocab_size")
    if tokens.ndim != 2:
        raise ValueError(f"x must have shape (batch, time) of token ids with vocab_size set, got shape {tuple(tokens.shape)}")
    return tokens, _checked_lengths(lengths, tokens)


class _SequenceModel(_RecurrentModel):
    """A recurrent model over a sequence of features, or of tokens through an Embedding (vocab_size, embed_dim, mask_zero)."""

    vocab_size: int | None = None
    embed_dim: int = 32
    mask_zero: bool = False

    def __post_init__(self) -> None:
        if self.vocab_size is not None:
            _checks.check_number(self.vocab_size, "vocab_size", integer=True, positive=True)
        _checks.check_number(self.embed_dim, "embed_dim", integer=True, positive=True)
        if not isinstance(self.mask_zero, bool):
            raise TypeError(f"mask_zero must be a bool, got {_checks.describe(self.mask_zero)}")
        if self.mask_zero and self.vocab_size is None:
            raise ValueError("mask_zero=True needs token inputs: set vocab_size (token 0 is the padding)")
        if self.mask_zero and self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 with mask_zero (token 0 is padding), got {self.vocab_size}")
        super().__post_init__()

    def _sequence(self, inputs: Any) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
        """(x (batch, time, features), seq_lengths or None, mask (batch, time) or None) from the model's inputs."""
        if self.vocab_size is None:
            return (*split_inputs(inputs), None)
        tokens, lengths = split_token_inputs(inputs, self.vocab_size)
        x = Embedding(self.vocab_size, self.embed_dim, name="embedding")(tokens)
        return x, lengths, (tokens != 0) if self.mask_zero else None


class SequenceClassifier(_SequenceModel):
    """Many-to-one: x (batch, time, features) -> logits (batch, outputs) from the last valid output.

    Recurrent layers (the last one returns its final output; with bidirectional, the forward's last
    valid output and the backward's output at t = 0, concatenated) -> [Dropout] -> Dense(outputs).
    dropout: inverted dropout between layers and before the head, in training only. With a
    regression loss (mse) it is a sequence regressor. vocab_size: inputs are tokens (batch, time)
    through Embedding(vocab_size, embed_dim); mask_zero: token 0 is padding, skipped by every layer.
    """

    @nn.compact
    def __call__(self, inputs: Any, train: bool = False) -> jax.Array:
        x, lengths, mask = self._sequence(inputs)
        h = recurrent.StackedRecurrent(self._cells(), bidirectional=self.bidirectional, dropout=self.dropout,
                                       unroll=self.unroll, name="recurrent")(x, lengths, train=train, mask=mask)
        if self.dropout:
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return self._head()(h)


RNNClassifier = SequenceClassifier


class SequenceTagger(_SequenceModel):
    """Many-to-many (equal lengths): x (batch, time, features) -> logits (batch, time, outputs), one per step.

    Recurrent layers returning sequences -> [Dropout] -> the same Dense(outputs) at every step. With
    seq_lengths, the recurrent outputs at padded steps are zero (the head then gives its bias);
    give those steps zero weight or ignore them. Trains with sparse_categorical_crossentropy on
    (batch, time) labels: the loss is averaged over time steps, as in Keras. vocab_size, embed_dim,
    mask_zero: token inputs as in `SequenceClassifier` (masked steps are padded steps here).
    """

    @nn.compact
    def __call__(self, inputs: Any, train: bool = False) -> jax.Array:
        x, lengths, mask = self._sequence(inputs)
        h = recurrent.StackedRecurrent(self._cells(), return_sequences=True, bidirectional=self.bidirectional,
                                       dropout=self.dropout, unroll=self.unroll, name="recurrent")(
            x, lengths, train=train, mask=mask)
        if self.dropout:
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return self._head()(h)


class SequenceGenerator(_RecurrentModel):
    """One-to-many: a vector x (batch, features) -> a sequence (batch, steps, outputs).

    Every layer's initial state is tanh(x W_s + b_s) (for an LSTM both c and h), and the input at
    each of the `steps` steps is x itself, repeated (Keras RepeatVector); then a Dense(outputs) at
    every step. bidirectional is not available (generation runs forward).
    """

    steps: int = 10

    def __post_init__(self) -> None:
        _checks.check_number(self.steps, "steps", integer=True, positive=True)
        if self.bidirectional is True:
            raise ValueError("bidirectional must be False for SequenceGenerator (generation runs forward), got True")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = _checks.as_array(x, "x", dtype_kind="float")
        if x.ndim != 2:
            raise ValueError(f"x must have shape (batch, features), got shape {tuple(x.shape)} ({x.ndim} dimensions)")
        init = initializers.get(self.kernel_init)
        h = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.steps, x.shape[1]))
        for index, layer_cell in enumerate(self._cells()):
            carry = layer_cell.initialize_carry(None, (x.shape[0], x.shape[1]))
            starts = [jnp.tanh(nn.Dense(self.units, kernel_init=init, name=f"state_{index}_{part}")(x))
                      for part in range(len(jax.tree_util.tree_leaves(carry)))]
            carry = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(carry), starts)
            h = recurrent.Recurrent(layer_cell, return_sequences=True, unroll=self.unroll,
                                    name=f"layer_{index}")(h, initial_state=carry)
            if self.dropout:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return self._head()(h)
