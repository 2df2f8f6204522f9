"""The batch planner: which examples each step of an epoch sees, the same for `Trainer.fit` and `batch_indices`.

Epoch e visits the examples in the permutation drawn from fold_in(fold_in(PRNGKey(seed), 0x5EED), e)
(the identity without shuffling): full batches of `batch_size` first, then the remainder padded
with index 0 (mask False) to a multiple of `multiple` (the devices a batch is split over). Steps
run in chunks of at most `steps_per_execution`, each one `lax.scan` dispatch. Everything that
depends on (seed, epoch) is traceable, so the permutation is drawn on the device.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks

MAX_STEPS_PER_EXECUTION = 256
SHUFFLE_SALT = 0x5EED


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One dispatch: `steps` batches of `width` examples starting at step `start` of the epoch."""

    start: int
    steps: int
    width: int
    remainder: bool = False


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """The batches of one epoch of n examples (hashable: its shape-defining fields key compiled chunks)."""

    n: int
    batch_size: int
    shuffle: bool = True
    steps_per_execution: int = MAX_STEPS_PER_EXECUTION
    multiple: int = 1

    def __post_init__(self) -> None:
        _checks.check_number(self.n, "n", integer=True, positive=True)
        _checks.check_number(self.batch_size, "batch_size", integer=True, positive=True)
        _checks.check_number(self.steps_per_execution, "steps_per_execution", integer=True, positive=True)
        _checks.check_number(self.multiple, "multiple", integer=True, positive=True)
        if not isinstance(self.shuffle, bool):
            raise TypeError(f"shuffle must be a bool, got {_checks.describe(self.shuffle)}")

    @property
    def full(self) -> int:
        """Number of full batches."""
        return self.n // self.batch_size

    @property
    def remainder(self) -> int:
        """Examples in the last, partial batch (0 when batch_size divides n)."""
        return self.n - self.full * self.batch_size

    @property
    def padded_remainder(self) -> int:
        """Width of the last batch: the remainder rounded up to a multiple of `multiple`."""
        return int(math.ceil(self.remainder / self.multiple) * self.multiple) if self.remainder else 0

    @property
    def steps(self) -> int:
        """Steps (optimizer updates) per epoch: ⌈n / batch_size⌉."""
        return self.full + (1 if self.remainder else 0)

    def chunks(self) -> list[Chunk]:
        """The epoch's dispatches in order: chunks of full batches, then the remainder (static)."""
        per_chunk = min(self.full, self.steps_per_execution)
        out = [Chunk(start, min(per_chunk, self.full - start), self.batch_size)
               for start in range(0, self.full, per_chunk)] if self.full else []
        if self.remainder:
            out.append(Chunk(self.full, 1, self.padded_remainder, remainder=True))
        return out

    def order(self, seed: Any, epoch: Any) -> jax.Array:
        """The permutation of the n examples for `epoch` (traceable in seed and epoch)."""
        if not self.shuffle:
            return jnp.arange(self.n)
        key = jax.random.fold_in(jax.random.PRNGKey(seed), SHUFFLE_SALT)
        return jax.random.permutation(jax.random.fold_in(key, epoch), self.n)

    def chunk_indices(self, order: jax.Array, chunk: Chunk, start: Any = None) -> tuple[jax.Array, jax.Array]:
        """(indices (steps, width), masks (steps, width) bool) of `chunk`; start (traceable) overrides chunk.start."""
        if chunk.remainder:
            rest = order[self.full * self.batch_size:]
            pad = chunk.width - self.remainder
            indices = jnp.concatenate([rest, jnp.zeros((pad,), rest.dtype)])[None]
            return indices, (jnp.arange(chunk.width) < self.remainder)[None]
        start = chunk.start if start is None else start
        flat = jax.lax.dynamic_slice_in_dim(order, start * self.batch_size, chunk.steps * self.batch_size)
        return flat.reshape(chunk.steps, self.batch_size), jnp.ones((chunk.steps, self.batch_size), bool)

    def batch(self, seed: int, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, mask) of step `step` of `epoch`, on the host (e.g. to recompute one batch)."""
        order = self.order(seed, epoch)
        for chunk in self.chunks():
            if chunk.start <= step < chunk.start + chunk.steps:
                indices, masks = jax.device_get(self.chunk_indices(order, chunk))
                return indices[step - chunk.start], masks[step - chunk.start]
        raise IndexError(f"step must be in [0, {self.steps}), got {step}")

    def epoch_indices(self, seed: Any, epoch: Any) -> tuple[jax.Array, jax.Array]:
        """Every batch of `epoch` as (indices (steps, batch_size), masks); the last batch padded to batch_size."""
        order = self.order(seed, epoch)
        slots = self.steps * self.batch_size
        indices = jnp.concatenate([order, jnp.zeros((slots - self.n,), order.dtype)])
        masks = jnp.arange(slots) < self.n
        return indices.reshape(self.steps, self.batch_size), masks.reshape(self.steps, self.batch_size)
