"""Synthetic sequence-to-sequence tasks on digit strings: reverse a string, add two numbers.

Token convention (one vocabulary for every task, `VOCAB_SIZE` = 14 tokens):
PAD = 0 (padding, always at the end of a row), START = 1 (first decoder input), END = 2 (closes
every target), PLUS = 3 (the "+" of the addition task), digit d = d + 4 (`DIGIT_OFFSET`).

Each generator returns a `SequenceData` of three int32 arrays:
encoder_inputs (n, T_in): the source string, right-padded with PAD;
targets (n, T_out): the answer followed by END, right-padded with PAD;
decoder_inputs (n, T_out): teacher forcing, the targets shifted right one step behind START,
i.e. decoder_inputs[:, 0] = START and decoder_inputs[:, t] = targets[:, t - 1].
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from jdl import _checks

PAD = 0
START = 1
END = 2
PLUS = 3
DIGIT_OFFSET = 4
VOCAB_SIZE = DIGIT_OFFSET + 10

_SYMBOLS = {PAD: "", START: "^", END: "$", PLUS: "+"}


class SequenceData(NamedTuple):
    """encoder_inputs (n, T_in), decoder_inputs (n, T_out), targets (n, T_out): int32 token ids."""

    encoder_inputs: np.ndarray
    decoder_inputs: np.ndarray
    targets: np.ndarray

    @property
    def inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """(encoder_inputs, decoder_inputs): the input pytree a teacher-forced Seq2Seq takes."""
        return self.encoder_inputs, self.decoder_inputs


def _check_seed(seed: int) -> None:
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)


def _pad_rows(rows: list[list[int]], width: int) -> np.ndarray:
    out = np.full((len(rows), width), PAD, np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _pack(sources: list[list[int]], answers: list[list[int]], source_width: int, answer_width: int) -> SequenceData:
    """Pad sources, close answers with END, and build the teacher-forcing decoder inputs."""
    targets = _pad_rows([a + [END] for a in answers], answer_width + 1)
    decoder_inputs = np.concatenate([np.full((len(answers), 1), START, np.int32), targets[:, :-1]], axis=1)
    return SequenceData(_pad_rows(sources, source_width), decoder_inputs, targets)


def digit_tokens(digits: Iterable[int]) -> list[int]:
    """Token ids of decimal digits 0-9: d -> d + DIGIT_OFFSET."""
    return [int(d) + DIGIT_OFFSET for d in digits]


def reverse_digits(n: int, min_len: int = 3, max_len: int = 8, seed: int = 0) -> SequenceData:
    """n random digit strings of uniform length in [min_len, max_len] and their reversals.

    Shapes: encoder_inputs (n, max_len), decoder_inputs and targets (n, max_len + 1).
    """
    _checks.check_number(n, "n", integer=True, positive=True)
    _checks.check_number(min_len, "min_len", integer=True, positive=True)
    _checks.check_number(max_len, "max_len", integer=True, positive=True)
    if min_len > max_len:
        raise ValueError(f"min_len must be <= max_len ({max_len}), got {min_len}")
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    digits = rng.integers(0, 10, size=(n, max_len))
    sources = [digit_tokens(digits[i, : lengths[i]]) for i in range(n)]
    return _pack(sources, [s[::-1] for s in sources], max_len, max_len)


def _number_tokens(value: int, width: int) -> list[int]:
    return digit_tokens(int(c) for c in f"{value:0{width}d}")


def add_digits(n: int, digits: int = 3, seed: int = 0, *, zero_pad: bool = False,
               reverse_answer: bool = False) -> SequenceData:
    """n sums "a+b" -> digits of a + b, with a, b uniform in [0, 10**digits).

    Numbers are written without leading zeros, or with zero_pad at fixed widths (digits for a and b,
    digits + 1 for the sum); reverse_answer writes the sum least significant digit first.
    Shapes: encoder_inputs (n, 2·digits + 1), decoder_inputs and targets (n, digits + 2).
    """
    _checks.check_number(n, "n", integer=True, positive=True)
    _checks.check_number(digits, "digits", integer=True, positive=True)
    if digits > 18:
        raise ValueError(f"digits must be <= 18 (int64 operands), got {digits}")
    _check_seed(seed)
    for name, flag in (("zero_pad", zero_pad), ("reverse_answer", reverse_answer)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {_checks.describe(flag)}")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 10**digits, size=n, dtype=np.int64)
    b = rng.integers(0, 10**digits, size=n, dtype=np.int64)
    width, sum_width = (digits, digits + 1) if zero_pad else (1, 1)
    sources = [_number_tokens(x, width) + [PLUS] + _number_tokens(y, width) for x, y in zip(a.tolist(), b.tolist())]
    answers = [_number_tokens(x + y, sum_width) for x, y in zip(a.tolist(), b.tolist())]
    if reverse_answer:
        answers = [answer[::-1] for answer in answers]
    return _pack(sources, answers, 2 * digits + 1, digits + 1)


def to_string(tokens: Iterable[int], *, stop_at_end: bool = True) -> str:
    """A row of token ids as text: digits as 0-9, "+" for PLUS, "^" START, "$" END, PAD dropped.

    stop_at_end: drop END and everything after it.
    """
    text = []
    for token in np.asarray(tokens).reshape(-1).tolist():
        if token == END and stop_at_end:
            break
        if not 0 <= token < VOCAB_SIZE:
            raise ValueError(f"tokens must be ids in [0, {VOCAB_SIZE - 1}], got {token}")
        text.append(str(token - DIGIT_OFFSET) if token >= DIGIT_OFFSET else _SYMBOLS[token])
    return "".join(text)


def exact_match(predicted: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of rows equal to their targets at every step, PAD included: predicted (n, T'), targets (n, T).

    Steps beyond the shorter of T and T' must be PAD in the longer one.
    """
    predicted, targets = np.asarray(predicted), np.asarray(targets)
    if predicted.ndim != 2 or targets.ndim != 2 or predicted.shape[0] != targets.shape[0]:
        raise ValueError(
            f"predicted and targets must be (n, time) with the same n, got shapes {predicted.shape} and {targets.shape}"
        )
    t = min(predicted.shape[1], targets.shape[1])
    same = np.all(predicted[:, :t] == targets[:, :t], axis=1)
    same &= np.all(predicted[:, t:] == PAD, axis=1) & np.all(targets[:, t:] == PAD, axis=1)
    return float(same.mean())


__all__ = [
    "PAD", "START", "END", "PLUS", "DIGIT_OFFSET", "VOCAB_SIZE", "SequenceData",
    "add_digits", "digit_tokens", "exact_match", "reverse_digits", "to_string",
]
