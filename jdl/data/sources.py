"""Training data that is not a set of in-memory arrays: Grain random-access sources and iterables of batches.

Three kinds of `x` reach `Trainer.fit` (`kind`):

- "arrays": NumPy/JAX arrays or pytrees of them (the in-memory path, placed on the devices once);
- "source": a random-access data source of records, read by index through a Grain `MapDataset`:
  a `jdl.data.packed.PackedSource`, any `grain.MapDataset`, or an object with `__len__` and
  `__getitem__` (Grain's `RandomAccessDataSource` protocol). A record is (x_i, y_i),
  (x_i, y_i, w_i) or a dict {"x", "y"[, "sample_weight"]};
- "iterable": any other iterable of batches (x, y[, w]) of equal size, trained for steps_per_epoch.

jdl's index sampler (`EpochSampler`): epoch e of a source visits its rows in the ONE global
permutation the in-memory path uses, `BatchPlan.order(seed, e)` (drawn once per epoch), cut
into the same batches; process p of P reads only its slice [p·b/P, (p+1)·b/P) of each global
batch of b rows, so P processes together see exactly the batches one process would. Reading
runs in a Grain pipeline, `MapDataset.range(steps).map(sampler)` → `to_iter_dataset` (reader
threads, prefetch buffer) → optional `mp_prefetch` (worker processes) → `batch` (the steps of one
dispatch stacked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from jdl._checks import describe
from jdl.data.batching import BatchPlan
from jdl.data.packed import PackedSource

KINDS = ("arrays", "source", "iterable")


def kind(x: Any) -> str:
    """"arrays", "source" or "iterable": how `fit` reads `x` (module docstring)."""
    import grain

    if isinstance(x, (PackedSource, grain.MapDataset)):
        return "source"
    if isinstance(x, (np.ndarray, list, tuple, dict, Mapping, str, bytes)) or hasattr(x, "shape") or x is None:
        return "arrays"
    if hasattr(x, "__len__") and hasattr(x, "__getitem__"):
        return "source"
    if isinstance(x, Iterable):
        return "iterable"
    return "arrays"


def describe_source(source: Any) -> str:
    """A short name for messages: 'the packed data set at DIR' or the source's type and length."""
    if isinstance(source, PackedSource):
        return f"the packed data set at {source.directory}"
    return f"the data source {type(source).__name__} of {len(source)} records"


def split_record(record: Any, name: str = "record") -> tuple[Any, Any, Any]:
    """(x, y, w or None) of one record or one batch: (x, y), (x, y, w) or {"x", "y"[, "sample_weight"]}."""
    if isinstance(record, Mapping):
        if "x" not in record or "y" not in record or any(k not in ("x", "y", "sample_weight") for k in record):
            raise ValueError(f"{name} must be a dict with keys 'x', 'y' and optionally 'sample_weight', "
                             f"got keys {list(record)}")
        return record["x"], record["y"], record.get("sample_weight")
    if isinstance(record, (tuple, list)) and len(record) in (2, 3):
        return record[0], record[1], record[2] if len(record) == 3 else None
    raise ValueError(f"{name} must be (x, y), (x, y, sample_weight) or a dict with keys 'x', 'y', got "
                     f"{describe(record)}")


def _stack(records: list[Any]) -> tuple[Any, Any, Any]:
    import jax

    parts = [split_record(r) for r in records]
    x = jax.tree_util.tree_map(lambda *a: np.stack(a), *[p[0] for p in parts])
    y = jax.tree_util.tree_map(lambda *a: np.stack(a), *[p[1] for p in parts])
    w = None if parts[0][2] is None else np.asarray([p[2] for p in parts], np.float32)
    return x, y, w


def read_rows(source: Any, index: np.ndarray) -> tuple[Any, Any, Any]:
    """(x, y, w or None) of the rows `index` of a source, stacked; one batched read where the source has one."""
    if isinstance(source, PackedSource):
        columns = source.read(index)
        return columns[0], columns[1], (columns[2].astype(np.float32) if len(columns) == 3 else None)
    index = [int(i) for i in index]
    getitems = getattr(source, "_getitems", None)
    records = list(getitems(index)) if callable(getitems) else [source[i] for i in index]
    return _stack(records)


def process_rows(width: int, process_index: int, process_count: int) -> slice:
    """The columns [p·w/P, (p+1)·w/P) of a global batch of `width` rows that process p reads."""
    if width % process_count:
        raise ValueError(f"a batch of {width} rows does not split over {process_count} processes")
    share = width // process_count
    return slice(process_index * share, (process_index + 1) * share)


@dataclasses.dataclass(frozen=True, eq=False)
class EpochSampler:
    """step -> this process's rows of batch `step` of one epoch: (x, y, w, index, mask), w already masked.

    order: the epoch's global permutation (n,) on the host. Full batches hold plan.batch_size rows;
    the last, partial one is padded to plan.padded_remainder with row 0 (mask False, weight 0).
    Picklable (for Grain's worker processes) when the source is.
    """

    source: Any
    order: np.ndarray
    plan: BatchPlan
    process_index: int = 0
    process_count: int = 1

    def indices(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(global row indices, mask) of this process's share of batch `step`."""
        plan = self.plan
        if step < plan.full:
            index = self.order[step * plan.batch_size:(step + 1) * plan.batch_size]
            mask = np.ones(index.shape, bool)
        else:
            rest = self.order[plan.full * plan.batch_size:]
            index = np.concatenate([rest, np.zeros((plan.padded_remainder - rest.size,), rest.dtype)])
            mask = np.arange(index.size) < rest.size
        share = process_rows(index.size, self.process_index, self.process_count)
        return index[share].astype(np.int32), mask[share]

    def __call__(self, step: int) -> tuple[Any, Any, np.ndarray, np.ndarray, np.ndarray]:
        index, mask = self.indices(int(step))
        x, y, w = read_rows(self.source, index)
        w = np.ones(index.shape, np.float32) if w is None else np.asarray(w, np.float32)
        return x, y, np.where(mask, w, np.float32(0)), index, mask


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How a source is read: Grain reader threads, the prefetch buffer (batches; None: one dispatch's) and workers.

    workers > 0 starts that many Grain worker processes every epoch (spawned: each imports jdl,
    seconds per epoch), worth it only when reading a batch costs more than a training step.
    """

    threads: int = 4
    prefetch: int | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        for name in ("threads", "prefetch", "workers"):
            value = getattr(self, name)
            if name == "prefetch" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"read_options.{name} must be a non-negative integer, got {value!r}")


def epoch_chunks(sampler: EpochSampler, start: int, stop: int, per_chunk: int,
                 options: ReadOptions = ReadOptions()) -> Iterator[tuple[Any, ...]]:
    """The batches start..stop-1 of an epoch in stacks of per_chunk (the last may be shorter), read by Grain.

    Each element is (x, y, w, index, mask) with leaves (steps, rows, ...).
    """
    import grain

    dataset = grain.MapDataset.range(start, stop).map(sampler)
    stream = dataset.to_iter_dataset(grain.ReadOptions(num_threads=options.threads,
                                                       prefetch_buffer_size=max(1, options.threads, options.prefetch or per_chunk)))
    if options.workers:
        from absl import flags

        if not flags.FLAGS.is_parsed():  # Grain reads its absl flags in mp_prefetch; outside absl.app they are unparsed
            flags.FLAGS.mark_as_parsed()
        stream = stream.mp_prefetch(grain.MultiprocessingOptions(num_workers=options.workers))
    iterator = iter(stream.batch(per_chunk))
    try:
        yield from iterator
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()


def sample_rows(source: Any, count: int = 8) -> tuple[Any, Any, Any]:
    """(x, y, w or None) of the first min(count, len) rows: what fit checks against the model before any work."""
    return read_rows(source, np.arange(min(count, len(source))))
