"""Long-memory benchmarks for recurrent networks: the adding problem and the copy-memory task.

- Adding problem (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015 and Arjovsky et al.
  2016): x (n, T, 2), channel 0 uniform in [0, 1],
  channel 1 marks one step in each half of the sequence; the target is the sum of the two marked
  values. Predicting the constant 1 scores MSE Var(a + b) = 2/12 = 1/6; below 0.01 the task is solved.
- Copy memory (Hochreiter & Schmidhuber 1997, in the form of Arjovsky et al. 2016): 10 symbols from
  {1..8}, then T - 1 blanks (0), the delimiter 9, and 10 more blanks; the target is T + 10 blanks and
  then the 10 symbols. A model that outputs blank until the delimiter and then a uniform guess over
  the 8 symbols scores the baseline cross-entropy 10 ln 8 / (T + 20) nats per step.
"""

from __future__ import annotations

import math

import numpy as np

from jdl import _checks

ADDING_BASELINE_MSE = 1.0 / 6.0
COPY_SYMBOLS = 8
COPY_LENGTH = 10
COPY_BLANK = 0
COPY_DELIMITER = COPY_SYMBOLS + 1
COPY_VOCAB = COPY_SYMBOLS + 2


def _check(n: int, length: int, seed: int, minimum: int, name: str) -> None:
    _checks.check_number(n, "n", integer=True, positive=True)
    _checks.check_number(length, name, integer=True, positive=True)
    if length < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {length}")
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)


def adding_problem(n: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n adding-problem sequences: x (n, length, 2) float32 (values, markers), y (n, 1) float32 (the marked sum).

    One marker falls uniformly in steps [0, length // 2), the other in [length // 2, length).
    """
    _check(n, length, seed, 2, "length")
    rng = np.random.default_rng(seed)
    values = rng.uniform(size=(n, length))
    rows = np.arange(n)
    first = rng.integers(0, length // 2, size=n)
    second = rng.integers(length // 2, length, size=n)
    markers = np.zeros((n, length))
    markers[rows, first] = 1
    markers[rows, second] = 1
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second])[:, None].astype(np.float32)
    return x, y


def copy_memory(n: int, delay: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n copy-memory sequences of length delay + 20: x (n, delay + 20, 10) float32 one-hot, y (n, delay + 20) int32.

    Tokens: 0 blank, 1..8 symbols, 9 delimiter (at step delay + 9). y is blank except the last 10
    steps, which repeat the first 10 input symbols.
    """
    _check(n, delay, seed, 1, "delay")
    rng = np.random.default_rng(seed)
    total = delay + 2 * COPY_LENGTH
    symbols = rng.integers(1, COPY_SYMBOLS + 1, size=(n, COPY_LENGTH))
    tokens = np.full((n, total), COPY_BLANK, np.int32)
    tokens[:, :COPY_LENGTH] = symbols
    tokens[:, delay + COPY_LENGTH - 1] = COPY_DELIMITER
    y = np.full((n, total), COPY_BLANK, np.int32)
    y[:, -COPY_LENGTH:] = symbols
    x = np.eye(COPY_VOCAB, dtype=np.float32)[tokens]
    return x, y


def copy_baseline(delay: int) -> float:
    """Cross-entropy per step (nats) of blank-until-the-delimiter, then uniform over the symbols: 10 ln 8 / (T + 20)."""
    _checks.check_number(delay, "delay", integer=True, positive=True)
    return COPY_LENGTH * math.log(COPY_SYMBOLS) / (delay + 2 * COPY_LENGTH)


__all__ = [
    "ADDING_BASELINE_MSE", "COPY_BLANK", "COPY_DELIMITER", "COPY_LENGTH", "COPY_SYMBOLS", "COPY_VOCAB",
    "adding_problem", "copy_baseline", "copy_memory",
]
