"""The compiled forms of the steps, cached by value in bounded caches.

Every key is made of hashable values (the Objective, the StepSpec, the BatchPlan, a chunk's
shape), never of object identities, so two identically configured Trainers, or a Trainer rebuilt
from the same config, reuse the same compiled functions; JAX's own cache then keys them by the
shapes of their arguments.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax

from jdl.data.batching import BatchPlan, Chunk
from jdl.train import compiler, step
from jdl.train.objective import Objective
from jdl.train.step import StepSpec

CACHE_SIZE = 64


@functools.lru_cache(maxsize=CACHE_SIZE)
def train_chunk(spec: StepSpec, plan: BatchPlan, chunk: Chunk, donate: bool, guarded: bool = True) -> Callable:
    """jit(state, halted, data, order, start, values) of `chunk`'s shape; donate: reuse the state's buffers.

    guarded: every step keeps the state unchanged once a step was non-finite (step.train_chunk).
    """
    fn = functools.partial(step.train_chunk, spec, plan, chunk, guarded=guarded)
    return jax.jit(fn, donate_argnums=(0,) if donate else (), compiler_options=compiler.chunk_options(chunk.remainder))


@functools.lru_cache(maxsize=CACHE_SIZE)
def epoch_order(n: int, shuffle: bool, mesh: Any = None) -> Callable:
    """jit(seed, epoch) -> the epoch's permutation of n examples (BatchPlan.order), one compile for every epoch.

    With a mesh the permutation is replicated over its devices, like the data it indexes.

    Drawn in its own small program rather than inside each chunk: the threefry hashing and the sort
    compile once (about 0.7 s on 2 cores for n = 10 000) instead of once per chunk shape.
    """
    plan = BatchPlan(n, 1, shuffle)
    placed = None if mesh is None else jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.jit(plan.order, out_shardings=placed, compiler_options=compiler.once_options())


def chunk_key(chunk: Chunk) -> Chunk:
    """The chunk with its start zeroed: chunks of one shape share one compiled function (start is an argument)."""
    return dataclasses.replace(chunk, start=0)


@functools.lru_cache(maxsize=CACHE_SIZE)
def train_step(spec: StepSpec) -> Callable:
    """jit(state, x, y, w, values) -> (state, logs): one guarded step."""
    return jax.jit(functools.partial(step.train_step, spec), compiler_options=compiler.training_options())


@functools.lru_cache(maxsize=CACHE_SIZE)
def evaluate(objective: Objective, mesh: Any, batches: int) -> Callable:
    """jit(state, data, count, values) -> logs over all rows of data, in `batches` batches."""
    return jax.jit(lambda state, data, count, values: step.evaluate_padded(objective, mesh, state, data, batches, count,
                                                                             values), compiler_options=compiler.step_options())


@functools.lru_cache(maxsize=CACHE_SIZE)
def predict(objective: Objective, mesh: Any, batches: int) -> Callable:
    """jit(state, x) -> outputs after the output activations, in `batches` batches."""
    return jax.jit(lambda state, x: step.predict_padded(objective, mesh, state, x, batches),
                   compiler_options=compiler.step_options())


@functools.lru_cache(maxsize=CACHE_SIZE)
def eval_step(objective: Objective) -> Callable:
    """jit(state, x, y, w, values) -> logs of one batch in inference mode, penalty included."""

    def run(state, x, y, w, values):
        cost, (logs, _) = objective.cost(state.model, state.params, state.model_state, (x, y, w), values,
                                         step.penalty_examples(state, w.shape[0]) if objective.penalized else None,
                                         train=False, key=state.rng)
        return {"loss": cost, **logs}

    return jax.jit(run, compiler_options=compiler.step_options())


@functools.lru_cache(maxsize=CACHE_SIZE)
def epoch_means(weighting: tuple[tuple[str, str], ...]) -> Callable:
    """jit(chunk logs) -> the epoch's mean of each logged name, each step weighted by its Σw or its example count.

    weighting: (name, "weight" or "count") pairs (`Objective.log_weighting`).
    """

    def run(chunk_logs):
        import jax.numpy as jnp

        means = {}
        for name, by in weighting:
            weights = jnp.concatenate([c[by].reshape(-1) for c in chunk_logs])
            values = jnp.concatenate([c[name].reshape(-1) for c in chunk_logs])
            means[name] = jnp.sum(jnp.where(weights > 0, values * weights, 0.0)) / jnp.maximum(weights.sum(), 1e-30)
        return means

    return jax.jit(run, compiler_options=compiler.step_options())


@functools.lru_cache(maxsize=CACHE_SIZE)
def cost_and_grad(objective: Objective, augment: Any) -> Callable:
    """jit(state, x, y, w, values, examples) -> (cost, grads) of a training step (for the non-finite report)."""

    def run(state, x, y, w, values, examples):
        key = jax.random.fold_in(state.rng, state.step)
        if augment is not None:
            key, augment_key = jax.random.split(key)
            x = augment(augment_key, x)

        def cost(params):
            return objective.cost(state.model, params, state.model_state, (x, y, w), values,
                                  examples if objective.penalized else None, train=True, key=key)[0]

        return jax.value_and_grad(cost)(state.params)

    return jax.jit(run, compiler_options=compiler.step_options())


def concurrently(jobs: Sequence[tuple[Callable, Any]]) -> list[Any]:
    """Compile each (jitted function, arguments) pair ahead of its first call, the compiles in parallel threads.

    Each function is traced and lowered here (in order, holding the GIL), and its XLA compile,
    which releases it, runs in a pool of up to os.cpu_count() threads while the next one is
    lowered. JAX keeps the executables in the functions' own caches, so the calls that follow with
    arguments of the same shapes, dtypes and shardings compile nothing. The arguments are a tuple
    (arrays or jax.ShapeDtypeStruct) or a function of the earlier jobs' output shapes
    (`Lowered.out_info`, a list), which this returns.
    """
    if not jobs:
        return []
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="jdl-compile") as pool:
        outputs, compiles = [], []
        for fn, args in jobs:
            args = args(outputs) if callable(args) else args
            key = (fn, signature(args))
            with _LOWERED_LOCK:  # fits may run in several threads at once (the memory and depth studies)
                known = _LOWERED.get(key)
                if known is not None:  # compiled by an earlier call (a later fit of the same shapes): no tracing again
                    _LOWERED.move_to_end(key)
            if known is not None:
                outputs.append(known)
                continue
            lowered = fn.lower(*args)
            outputs.append(lowered.out_info)
            compiles.append(pool.submit(lowered.compile))
            with _LOWERED_LOCK:
                _LOWERED[key] = lowered.out_info
                while len(_LOWERED) > 4 * CACHE_SIZE:
                    _LOWERED.popitem(last=False)
        for future in compiles:
            future.result()
    return outputs


_LOWERED: collections.OrderedDict = collections.OrderedDict()  # (jitted function, signature) -> its outputs' shapes
_LOWERED_LOCK = threading.Lock()


def signature(args: Any) -> tuple:
    """What a jitted function's cache tells calls apart by: the tree structure and each leaf's shape, dtype,
    weak type and sharding (None for host values)."""
    leaves, tree = jax.tree_util.tree_flatten(args)
    return tree, tuple((tuple(getattr(a, "shape", ())), str(getattr(a, "dtype", type(a).__name__)),
                        bool(getattr(a, "weak_type", False)), getattr(a, "sharding", None)) for a in leaves)


@functools.lru_cache(maxsize=1)
def copier() -> Callable:
    """jit(tree) -> a copy of every array of tree (in new buffers)."""
    return jax.jit(lambda tree: jax.tree_util.tree_map(lambda a: a.copy(), tree), compiler_options=compiler.step_options())


def copy(tree: Any) -> Any:
    """A copy of every array of tree, in new buffers (what a donated state is copied to first)."""
    return copier()(tree)
