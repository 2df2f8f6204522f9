"""`Trainer.fit` on data read while training: a Grain random-access source or an iterable of batches.

The epoch loop is `EpochLoop`'s (callbacks, checkpoints, mid-epoch resume, the non-finite guard);
only the feed differs. Instead of gathering rows of an on-device data set, each dispatch receives
the stacked batches of its steps, (steps, rows, ...) per leaf, with their global example indices
and masks, and scans the same `step_candidate` over them (`train_chunk`).

- A source (`jdl.data.sources`): epoch e's batches come from `BatchPlan.order(seed, e)`, the
  in-memory path's permutation, so the same seed trains on the same batches in the same order;
  a mid-epoch checkpoint resumes at its step by reading from there. Process p of P reads only its
  share of each global batch; the global batch is assembled with
  `jax.make_array_from_process_local_data`.
- An iterable: `steps_per_epoch` batches per epoch, read on from where the previous epoch
  stopped; its order is the caller's. Every epoch runs guarded (its batches cannot be read twice);
  a run out of batches ends training with a warning.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jdl import _checks
from jdl.data import sources
from jdl.data.batching import MAX_STEPS_PER_EXECUTION, BatchPlan, Chunk
from jdl.data.packed import PackedSource
from jdl.train import compiled, compiler, inputs, sharding, step
from jdl.train.loop import EpochLoop
from jdl.train.objective import SINGLE
from jdl.train.state import TrainState
from jdl.train.step import StepSpec

class SourceMismatch(ValueError):
    """A data source or iterable whose records do not fit the model or the loss (raised before any training)."""


CHUNK_BYTES = 32 << 20
ALL_TARGETS_BYTES = 256 << 20  # a packed set's targets up to this size are checked whole before training  # a dispatch's batches on the host: a bound on the feed's anonymous memory


def train_chunk(spec: StepSpec, state: TrainState, halted: jax.Array, batches: tuple[Any, ...], values: Any, *,
                guarded: bool = True) -> tuple[TrainState, jax.Array, dict]:
    """`step.train_chunk` over given batches (x, y, w, index, mask), leaves (steps, rows, ...), w already masked."""

    def body(carry, batch):
        state, halted = carry
        x, y, w, index, mask = batch
        x, y, w, present = sharding.shard_batch((x, y, w, mask), spec.mesh)
        new_state, logs, finite, records = step.step_candidate(spec, state, x, y, w, values, index, present)
        logs = {**logs, "nonfinite": ~finite & ~halted, "weight": jnp.where(halted, 0.0, logs["weight"]),
                "count": jnp.where(halted, 0.0, logs["count"]), "hooks": records}
        if guarded:
            new_state = step.keep_if(finite & ~halted, new_state, state)
        return (new_state, halted | ~finite), logs

    (state, halted), logs = jax.lax.scan(body, (state, halted), batches)
    return state, halted, logs


@functools.lru_cache(maxsize=compiled.CACHE_SIZE)
def compiled_chunk(spec: StepSpec, donate: bool, guarded: bool, remainder: bool = False) -> Callable:
    """jit(state, halted, batches, values); one compile per chunk shape (JAX keys it by the batches' shapes).

    remainder: for the epoch's last, partial batch (compiled as the in-memory path compiles it, `compiler.chunk_options`).
    """
    return jax.jit(functools.partial(train_chunk, spec, guarded=guarded), donate_argnums=(0,) if donate else (),
                   compiler_options=compiler.chunk_options(remainder))


def place(tree: Any, mesh: Any) -> Any:
    """This process's rows (steps, local rows, ...) as global arrays split over `data` along axis 1."""
    if mesh is None:
        return jax.device_put(tree)
    split = NamedSharding(mesh, PartitionSpec(None, sharding.AXIS))
    count = jax.process_count()

    def one(leaf: np.ndarray) -> jax.Array:
        shape = (leaf.shape[0], leaf.shape[1] * count, *leaf.shape[2:])
        return jax.make_array_from_process_local_data(split, leaf, shape)

    return jax.tree_util.tree_map(one, tree)


def chunk_steps(per_batch_bytes: int, steps_per_execution: int) -> int:
    """Steps per dispatch of a feed: steps_per_execution, at most CHUNK_BYTES of batches (≥ 1)."""
    return max(1, min(steps_per_execution, CHUNK_BYTES // max(1, per_batch_bytes)))


def _bytes(tree: Any) -> int:
    return sum(int(np.asarray(a).nbytes) for a in jax.tree_util.tree_leaves(tree))


@dataclasses.dataclass
class Feed:
    """What fit needs from a source or an iterable before building the loop.

    sample: a few checked rows (inputs.Data) for initialising and checking the model; n, batch_size,
    plan: the epoch's layout; validation: in-memory validation Data or None; loop(...) the EpochLoop.
    """

    kind: str
    sample: inputs.Data
    n: int
    batch_size: int
    plan: BatchPlan
    validation: Any
    source: Any = None
    iterator: Any = None
    options: sources.ReadOptions = sources.ReadOptions()
    name: str = "x"

    @property
    def prefix(self) -> str:
        """How messages about the checked rows name them."""
        return f"{self.name}: " if self.kind == "source" else "the first batch's "

    def check(self, trainer: Any, state: TrainState) -> inputs.Data:
        """The sample rows checked against the model (inputs) and the loss (targets); SourceMismatch otherwise."""
        try:
            labels = None if not isinstance(self.source, PackedSource) else self.source.arrays["y"]
            if labels is not None and labels.nbytes <= ALL_TARGETS_BYTES:  # every row's targets, not only the sample's
                inputs.check_against_model(trainer.objective, state, inputs.Data(self.sample.x, np.asarray(labels),
                                                                                 self.sample.w))
            return inputs.check_against_model(trainer.objective, state, self.sample)
        except ValueError as err:
            raise SourceMismatch(f"{self.prefix}{' '.join(str(err).split())}") from None

    def init(self, trainer: Any, seed: int) -> TrainState:
        """A fresh state for the feed's examples; a model that cannot take them is a ValueError naming x."""
        try:
            return trainer.init(self.sample.x, seed, steps_per_epoch=self.plan.steps)
        except (TypeError, ValueError) as err:
            shapes = [tuple(np.shape(a)[1:]) for a in jax.tree_util.tree_leaves(self.sample.x)]
            raise SourceMismatch(f"{self.prefix}examples of shape {', '.join(map(str, shapes))} do not fit the "
                                 f"model: {' '.join(str(err).split()) or type(err).__name__}") from None

    def loop(self, *args: Any) -> EpochLoop:
        """The EpochLoop that reads this feed (args as EpochLoop's, data None)."""
        if self.kind == "source":
            return SourceLoop(*args, source=self.source, options=self.options)
        return IterableLoop(*args, iterator=self.iterator, sample=self.sample, name=self.name)


def open_feed(trainer: Any, x: Any, y: Any, *, batch_size: Any, steps_per_epoch: Any, shuffle: bool,
              sample_weight: Any, class_weight: Any, validation_split: float, validation_data: Any,
              read_options: Any) -> Feed | None:
    """The Feed of a source or an iterable x; None for arrays (the in-memory path). Checks everything first."""
    what = sources.kind(x)
    if what == "arrays":
        if steps_per_epoch is not None:
            raise ValueError("steps_per_epoch applies to an iterable of batches; with arrays every epoch visits every "
                             f"example once, got steps_per_epoch={steps_per_epoch!r}")
        if read_options is not None:
            raise ValueError("read_options applies to a data source (a packed data set or a Grain MapDataset), "
                             "not to arrays")
        return None
    for name, value in (("y", y), ("sample_weight", sample_weight), ("class_weight", class_weight)):
        if value is not None:
            raise ValueError(f"{name} must be None when x is {'an iterable of batches' if what == 'iterable' else 'a data source'}"
                             f" ({type(x).__name__}): its records hold x, y and the sample weights; got {name} "
                             f"{_checks.describe(value)}")
    validation = None if validation_data is None else trainer._split(None, validation_data, 0.0)[1]
    options = sources.ReadOptions() if read_options is None else read_options
    if not isinstance(options, sources.ReadOptions):
        raise TypeError(f"read_options must be a jdl.data.sources.ReadOptions, got {_checks.describe(options)}")
    devices = sharding.device_count(trainer.mesh)
    spe = trainer.steps_per_execution or MAX_STEPS_PER_EXECUTION
    if what == "source":
        return _source_feed(trainer, x, batch_size, steps_per_epoch, shuffle, validation_split, validation, options,
                            devices, spe)
    return _iterable_feed(trainer, x, steps_per_epoch, validation_split, validation, devices, spe)


def _checked(trainer: Any, x: Any, y: Any, w: Any, name: str, label: str = "") -> inputs.Data:
    """Rows as validated Data; a mistake is a SourceMismatch starting with `label` (what x is)."""
    try:
        return inputs.data(trainer.objective, inputs.model_inputs(trainer.model, x), y, w, name=name)
    except (TypeError, ValueError) as err:
        raise SourceMismatch(f"{label}{' '.join(str(err).split())}") from None


def _source_feed(trainer, source, batch_size, steps_per_epoch, shuffle, validation_split, validation, options,
                 devices, spe) -> Feed:
    if steps_per_epoch is not None:
        raise ValueError("steps_per_epoch applies to an iterable of batches; a data source's epochs visit every record "
                         f"once, got steps_per_epoch={steps_per_epoch!r}")
    total = len(source)
    if total < 1:
        raise ValueError(f"x ({sources.describe_source(source)}) holds no records")
    label = f"x ({sources.describe_source(source)})"
    sample = _checked(trainer, *sources.sample_rows(source), name="", label=f"{label}: ")
    n = total
    if validation is None and validation_split > 0:
        n = int(math.floor(total * (1.0 - validation_split)))
        if n == 0 or n == total:
            raise ValueError(f"validation_split={validation_split} leaves {total - n} of {total} records for "
                             "validation and needs at least one for each of training and validation")
        validation = _checked(trainer, *sources.read_rows(source, np.arange(n, total)), name="validation rows of x ",
                              label=f"{label}: ")
    batch_size = inputs.batch_size_for(batch_size, n, trainer.mesh)
    row_bytes = _bytes((sample.x, sample.y)) / sample.size
    plan = BatchPlan(n, batch_size, shuffle, chunk_steps(int(row_bytes * batch_size), spe), devices)
    return Feed("source", sample, n, batch_size, plan, validation, source=source, options=options,
                name=label)


def _iterable_feed(trainer, iterable, steps_per_epoch, validation_split, validation, devices, spe) -> Feed:
    if steps_per_epoch is None:
        raise ValueError("steps_per_epoch must be given when x is an iterable of batches (the steps of one epoch), "
                         "got None")
    _checks.check_number(steps_per_epoch, "steps_per_epoch", integer=True, positive=True)
    if validation_split > 0:
        raise ValueError("validation_split needs random access to the data; with an iterable of batches pass "
                         "validation_data=(x_val, y_val)")
    iterator = iter(iterable)
    try:
        first = next(iterator)
    except StopIteration:
        raise ValueError("x is an iterable of batches, but it yields no batch") from None
    sample = _checked(trainer, *sources.split_record(first, "a batch of x"), name="the first batch's ")
    batch_size = sample.size
    sharding.check_batch_size(batch_size, trainer.mesh, "the batches' size (the first batch's rows)")
    n = batch_size * steps_per_epoch
    plan = BatchPlan(n, batch_size, False, chunk_steps(_bytes((sample.x, sample.y)), spe), devices)
    return Feed("iterable", sample, n, batch_size, plan, validation, iterator=itertools.chain([first], iterator),
                name="x")


def _feed_epoch(loop: EpochLoop, state: TrainState, batches: Iterator[tuple[Chunk, Any]], donate: bool,
                guarded: bool, callbacks: bool, done_logs: list[dict]) -> tuple[TrainState, Any, list[dict]]:
    """Dispatch every (chunk, host batches) pair: EpochLoop.epoch with given batches.

    After dispatching chunk k the host waits for chunk k-1 to finish, so it reads and places chunk
    k+1 while chunk k runs, and no more than two chunks' batches (≤ 2·CHUNK_BYTES) are held.
    """
    chunk_logs = list(done_logs)
    halted = jax.device_put(np.bool_(any(np.any(c["nonfinite"]) for c in chunk_logs)))
    previous = None
    for chunk, host in batches:
        run = compiled_chunk(loop.spec, donate, guarded, chunk.remainder)
        state, halted, logs = run(state, halted, place(host, loop.spec.mesh), loop.values)
        if previous is not None:  # at most two dispatches in flight: the host reads ahead by one, not by the epoch
            previous.block_until_ready()
        previous = halted
        state = loop.dispatched(chunk, state, logs, chunk_logs, callbacks)
    return state, halted, chunk_logs


@dataclasses.dataclass
class SourceLoop(EpochLoop):
    """EpochLoop reading a random-access source through Grain, in the in-memory path's order."""

    compiles_ahead = False

    source: Any = None
    options: sources.ReadOptions = sources.ReadOptions()

    def epoch_order(self, seed: Any, epoch: int) -> np.ndarray:
        return np.asarray(jax.device_get(compiled.epoch_order(self.plan.n, self.plan.shuffle)(seed, np.int32(epoch))))

    def sampler(self, order: np.ndarray) -> sources.EpochSampler:
        return sources.EpochSampler(self.source, order, self.plan, jax.process_index(), jax.process_count())

    def host_batch(self, epoch: int, batch: int) -> tuple[Any, Any, Any]:
        x, y, w, _, _ = self.sampler(self.epoch_order(jax.device_put(np.uint32(self.seed)), epoch))(batch)
        return x, y, w

    def epoch(self, state, order, donate, guarded, callbacks, done=0, done_logs=()):
        sampler = self.sampler(order)
        chunks = [c for c in self.plan.chunks() if c.start >= done]

        def batches():
            full = [c for c in chunks if not c.remainder]
            if full:
                per_chunk = min(self.plan.full, self.plan.steps_per_execution)
                read = sources.epoch_chunks(sampler, full[0].start, self.plan.full, per_chunk, self.options)
                try:
                    yield from zip(full, read)
                finally:
                    read.close()  # stops Grain's reader threads and worker processes now, not at garbage collection
            if chunks and chunks[-1].remainder:
                yield chunks[-1], jax.tree_util.tree_map(lambda a: a[None], sampler(self.plan.full))

        return _feed_epoch(self, state, batches(), donate, guarded, callbacks, list(done_logs))


@dataclasses.dataclass
class IterableLoop(EpochLoop):
    """EpochLoop reading steps_per_epoch batches per epoch from an iterator; every epoch guarded."""

    compiles_ahead = False

    iterator: Any = None
    sample: Any = None
    name: str = "x"
    always_guarded = True
    batches_read: int = 0

    def epoch_order(self, seed: Any, epoch: int) -> None:
        return None

    def host_batch(self, epoch: int, batch: int) -> None:
        return None

    def next_batch(self) -> tuple[Any, ...] | None:
        """The next batch as (x, y, w, index, mask), padded to batch_size with weight-0 rows; None when exhausted."""
        try:
            batch = next(self.iterator)
        except StopIteration:
            return None
        objective, where = self.spec.objective, f"batch {self.batches_read} of "
        data = inputs.data(objective, *sources.split_record(batch, f"{where}{self.name}"), name=where)
        width = self.plan.batch_size
        if data.size > width:
            raise ValueError(f"{where}{self.name} has {data.size} rows, more than the first batch's {width}; "
                             "batches must not grow")
        shapes = lambda tree: [np.shape(a)[1:] for a in jax.tree_util.tree_leaves(tree)]  # noqa: E731
        if shapes(data.x) != shapes(self.sample.x):
            raise ValueError(f"{where}x has example shapes {shapes(data.x)}, but the first batch's are "
                             f"{shapes(self.sample.x)}")
        y = {SINGLE: data.y} if objective.single else data.y
        checked = {h.name: inputs.check_targets(h.loss, y[h.name], self._outputs[h.name], inputs.y_name(where, h.name))
                   for h in objective.heads}
        data = inputs.Data(data.x, checked[SINGLE] if objective.single else checked, data.w)
        index = np.arange(self.batches_read * width, (self.batches_read + 1) * width, dtype=np.int32)
        mask = np.arange(width) < data.size
        if data.size < width:
            data = data.padded(width)
        self.batches_read += 1
        return data.x, data.y, np.where(mask, data.w, np.float32(0)), index, mask

    def run(self, state: TrainState) -> TrainState:
        self._outputs = inputs.check_inputs(self.spec.objective, state, self.sample.x)
        return super().run(state)

    def epoch(self, state, order, donate, guarded, callbacks, done=0, done_logs=()):
        chunks = [c for c in self.plan.chunks() if c.start >= done]

        def batches():
            for chunk in chunks:
                taken = []
                for _ in range(chunk.steps):
                    batch = self.next_batch()
                    if batch is None:
                        break
                    taken.append(batch)
                if taken:
                    stacked = jax.tree_util.tree_map(lambda *a: np.stack(a), *taken)
                    yield dataclasses.replace(chunk, steps=len(taken)), stacked
                if len(taken) < chunk.steps:
                    message = (f"{self.name} ran out of batches after {self.batches_read} (steps_per_epoch="
                               f"{self.plan.steps}); training stopped")
                    warnings.warn(message, RuntimeWarning, stacklevel=6)
                    self.context.stop_training = True
                    self.context.history.stop_reason = message
                    return

        return _feed_epoch(self, state, batches(), donate, guarded, callbacks, list(done_logs))
