"""The encoder-decoder (seq2seq): a recurrent encoder whose final state starts a recurrent decoder.

Tokens follow `jdl.data.sequences`: PAD = 0 pads rows at the end, START = 1 opens decoding,
END = 2 closes an answer. Training uses teacher forcing (the decoder reads the target shifted
right); inference decodes greedily inside one `lax.scan` of fixed length.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl.data import sequences
from jdl.nn import recurrent

CELLS = recurrent.CELLS


def _check_tokens(tokens: Any, name: str, vocab: int) -> jax.Array:
    """`tokens` as an integer (batch, time) array with ids in [0, vocab) when concrete."""
    if isinstance(tokens, (str, bytes)) or tokens is None:
        raise TypeError(f"{name} must be an integer array of token ids (batch, time), got {_checks.describe(tokens)}")
    if not hasattr(tokens, "dtype"):
        tokens = np.asarray(tokens)
    if np.dtype(tokens.dtype).kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids, got {_checks.describe(tokens)}")
    if tokens.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, time), got shape {tuple(tokens.shape)}")
    if tokens.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step, got shape {tuple(tokens.shape)}")
    if _checks.is_concrete(tokens) and tokens.size:
        values = np.asarray(tokens)
        low, high = values.min().item(), values.max().item()
        if low < 0 or high >= vocab:
            raise ValueError(f"{name} must hold token ids in [0, {vocab - 1}] (vocabulary of {vocab}), "
                             f"got values from {low} to {high}")
    return jnp.asarray(tokens)


class Seq2Seq(nn.Module):
    """(encoder_tokens (batch, T_in), decoder_tokens (batch, T_out)) -> logits (batch, T_out, target_vocab).

    Encoder: embedding -> recurrent cell over the non-PAD prefix of each row; its final carry is the
    decoder's initial carry. Decoder: embedding of the teacher-forced tokens -> recurrent cell ->
    [Luong dot attention: a_ts = softmax_s(h_t·h̄_s) over valid encoder steps, c_t = Σ_s a_ts h̄_s,
    h̃_t = tanh(W_c [c_t; h_t])] -> [dropout] -> Dense(target_vocab). The logits at step t depend on
    decoder_tokens[:, :t + 1] only.

    cell: "lstm", "gru" or "simple_rnn" (same for encoder and decoder); target_vocab_size: the
    decoder's vocabulary (default vocab_size); max_output_length: the default number of greedy
    decoding steps; start/end/pad_token: the special ids of the vocabulary.
    """

    vocab_size: int
    embed_dim: int = 32
    units: int = 64
    cell: str = "lstm"
    target_vocab_size: int | None = None
    max_output_length: int = 16
    attention: bool = False
    dropout: float = 0.0
    start_token: int = sequences.START
    end_token: int = sequences.END
    pad_token: int = sequences.PAD

    def __post_init__(self) -> None:
        _checks.check_number(self.vocab_size, "vocab_size", integer=True, positive=True)
        _checks.check_number(self.embed_dim, "embed_dim", integer=True, positive=True)
        _checks.check_number(self.units, "units", integer=True, positive=True)
        if not isinstance(self.cell, str):
            raise TypeError(f"cell must be a name (str), one of {sorted(CELLS)}, got {_checks.describe(self.cell)}")
        _checks.check_choice(self.cell.lower(), "cell", sorted(CELLS))
        if self.target_vocab_size is not None:
            _checks.check_number(self.target_vocab_size, "target_vocab_size", integer=True, positive=True)
        _checks.check_number(self.max_output_length, "max_output_length", integer=True, positive=True)
        if not isinstance(self.attention, bool):
            raise TypeError(f"attention must be a bool, got {_checks.describe(self.attention)}")
        _checks.check_number(self.dropout, "dropout", nonnegative=True)
        if not self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        _checks.check_number(self.pad_token, "pad_token", integer=True, nonnegative=True)
        if self.pad_token >= self.vocab_size:
            raise ValueError(f"pad_token must be a token id in [0, {self.vocab_size - 1}] (vocab_size), "
                             f"got {self.pad_token}")
        for name in ("start_token", "end_token"):
            value = getattr(self, name)
            _checks.check_number(value, name, integer=True, nonnegative=True)
            if value >= self.output_vocab:
                raise ValueError(f"{name} must be a token id in [0, {self.output_vocab - 1}] (target vocabulary), "
                                 f"got {value}")
        if self.pad_token >= self.output_vocab:
            raise ValueError(f"pad_token must be a token id in [0, {self.output_vocab - 1}] (target vocabulary), "
                             f"got {self.pad_token}")
        super().__post_init__()

    @property
    def output_vocab(self) -> int:
        """The decoder's vocabulary size: target_vocab_size, or vocab_size when None."""
        return self.vocab_size if self.target_vocab_size is None else self.target_vocab_size

    def setup(self) -> None:
        make_cell = CELLS[self.cell.lower()]
        self.encoder_embed = nn.Embed(self.vocab_size, self.embed_dim)
        self.decoder_embed = nn.Embed(self.output_vocab, self.embed_dim)
        self.encoder = recurrent.Recurrent(make_cell(self.units, parent=None), return_sequences=self.attention,
                                           return_state=True)
        self.decoder = recurrent.Recurrent(make_cell(self.units, parent=None), return_sequences=True, return_state=True)
        if self.attention:
            self.combine = nn.Dense(self.units, use_bias=False)
        self.drop = nn.Dropout(self.dropout)
        self.head = nn.Dense(self.output_vocab)

    def encode(self, encoder_tokens: jax.Array) -> tuple[Any, jax.Array | None, jax.Array]:
        """(final carry, encoder outputs (batch, T_in, units) or None without attention, valid mask (batch, T_in))."""
        valid = encoder_tokens != self.pad_token
        lengths = jnp.sum(valid, axis=1).astype(jnp.int32)
        outputs, carry = self.encoder(self.encoder_embed(encoder_tokens), seq_lengths=lengths)
        return carry, (outputs if self.attention else None), valid

    def readout(self, hidden: jax.Array, memory: jax.Array | None, valid: jax.Array, train: bool = False) -> jax.Array:
        """Decoder outputs (batch, T, units) -> logits (batch, T, target_vocab), with attention over memory."""
        if self.attention:
            scores = jnp.einsum("btu,bsu->bts", hidden, memory)
            scores = jnp.where(valid[:, None, :], scores, jnp.finfo(scores.dtype).min)
            context = jnp.einsum("bts,bsu->btu", jax.nn.softmax(scores, axis=-1), memory)
            hidden = jnp.tanh(self.combine(jnp.concatenate([context, hidden], axis=-1)))
        return self.head(self.drop(hidden, deterministic=not train))

    def __call__(self, inputs: tuple[jax.Array, jax.Array], train: bool = False) -> jax.Array:
        """Teacher-forced logits (batch, T_out, target_vocab) of inputs = (encoder_tokens, decoder_tokens)."""
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise TypeError(f"inputs must be a pair (encoder_tokens, decoder_tokens), got {_checks.describe(inputs)}")
        encoder_tokens = _check_tokens(inputs[0], "encoder_tokens", self.vocab_size)
        decoder_tokens = _check_tokens(inputs[1], "decoder_tokens", self.output_vocab)
        if encoder_tokens.shape[0] != decoder_tokens.shape[0]:
            raise ValueError(f"encoder_tokens and decoder_tokens must have the same batch size, got "
                             f"{encoder_tokens.shape[0]} and {decoder_tokens.shape[0]}")
        carry, memory, valid = self.encode(encoder_tokens)
        hidden, _ = self.decoder(self.decoder_embed(decoder_tokens), initial_state=carry)
        return self.readout(hidden, memory, valid, train)

    def decode_step(self, carry: Any, token: jax.Array, memory: jax.Array | None,
                    valid: jax.Array) -> tuple[Any, jax.Array]:
        """One decoder step: (carry, previous token (batch,)) -> (new carry, logits (batch, target_vocab))."""
        hidden, carry = self.decoder(self.decoder_embed(token)[:, None, :], initial_state=carry)
        return carry, self.readout(hidden, memory, valid)[:, 0]

    def greedy_decode(self, encoder_tokens: jax.Array, max_length: int | None = None,
                      return_logits: bool = False) -> jax.Array | tuple[jax.Array, jax.Array]:
        """Greedy decoding from START: tokens (batch, max_length) [, logits (batch, max_length, target_vocab)].

        y_t = argmax p(· | y_<t, x); after END every token is PAD. One `lax.scan`, jit-compatible.
        Use as model.apply(variables, tokens, method=Seq2Seq.greedy_decode).
        """
        encoder_tokens = _check_tokens(encoder_tokens, "encoder_tokens", self.vocab_size)
        max_length = self.max_output_length if max_length is None else max_length
        _checks.check_number(max_length, "max_length", integer=True, positive=True)
        carry, memory, valid = self.encode(encoder_tokens)
        batch = encoder_tokens.shape[0]

        def step(module, state, _):
            carry, token, done = state
            carry, logits = module.decode_step(carry, token, memory, valid)
            token = jnp.where(done, module.pad_token, jnp.argmax(logits, axis=-1).astype(jnp.int32))
            done = done | (token == module.end_token)
            return (carry, token, done), (token, logits)

        scan = nn.scan(step, variable_broadcast="params", split_rngs={"params": False}, length=max_length)
        start = jnp.full((batch,), self.start_token, jnp.int32)
        _, (tokens, logits) = scan(self, (carry, start, jnp.zeros((batch,), bool)), None)
        tokens = tokens.T
        return (tokens, jnp.swapaxes(logits, 0, 1)) if return_logits else tokens

    def generate(self, variables: Any, encoder_tokens: Any, max_length: int | None = None) -> jax.Array:
        """Greedy decoding with `variables` (from init or a TrainState), jit-compiled: (batch, max_length) tokens."""
        if not isinstance(variables, Mapping) or "params" not in variables:
            raise TypeError(f"variables must be a dict with 'params' (e.g. state.variables), "
                            f"got {_checks.describe(variables)}")
        encoder_tokens = _check_tokens(encoder_tokens, "encoder_tokens", self.vocab_size)
        max_length = self.max_output_length if max_length is None else max_length
        _checks.check_number(max_length, "max_length", integer=True, positive=True)
        return _jitted_decode(self.clone(parent=None), max_length)(variables, encoder_tokens)


@functools.lru_cache(maxsize=32)
def _jitted_decode(model: Seq2Seq, max_length: int):
    return jax.jit(lambda variables, tokens: model.apply(variables, tokens, max_length, method=Seq2Seq.greedy_decode))
