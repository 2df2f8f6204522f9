"""Data parallelism over every visible device: a Mesh with one axis `data`.

Batches are sharded along their first axis over `data`, and so is the on-device training set
(`shard_rows`: each device holds 1/devices of its rows); parameters and optimizer state are
replicated. With one device there is no mesh and nothing changes. Multi-host: call
`jdl.train.distributed.initialize()` in every process before `fit`; each process places only the
rows its own devices hold (`jax.make_array_from_process_local_data`), and validation and
evaluation data are split over the devices like the training set.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jdl.train import distributed

AXIS = "data"


def data_mesh(devices: list[Any] | None = None) -> Mesh | None:
    """A 1-D Mesh named `data` over `devices` (default all), or None for a single device."""
    devices = jax.devices() if devices is None else list(devices)
    if len(devices) <= 1:
        return None
    return Mesh(np.asarray(devices), (AXIS,))


def device_count(mesh: Mesh | None) -> int:
    """Number of devices a batch is split over."""
    return 1 if mesh is None else mesh.devices.size


def check_batch_size(batch_size: int, mesh: Mesh | None, name: str = "batch_size") -> None:
    """ValueError unless `batch_size` divides evenly over the mesh's devices."""
    count = device_count(mesh)
    if batch_size % count:
        raise ValueError(
            f"{name} must be divisible by the number of devices ({count}) for data parallelism, "
            f"got {batch_size}; use a multiple of {count}, e.g. {count * max(1, round(batch_size / count))}"
        )


def replicated(mesh: Mesh | None) -> NamedSharding | None:
    """The layout of an array whole on every device of `mesh` (None without a mesh: the default device)."""
    return None if mesh is None else NamedSharding(mesh, PartitionSpec())


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """Place every leaf of `tree` on all devices (or on the default device without a mesh)."""
    if mesh is None:
        return jax.device_put(tree)
    whole = replicated(mesh)
    return jax.tree_util.tree_map(
        lambda a: jax.make_array_from_callback(np.shape(a), whole, lambda index: np.asarray(a)[index]), tree
    )


def shard_batch(tree: Any, mesh: Mesh | None) -> Any:
    """Constrain every leaf's first axis to be split over the `data` axis (inside jit)."""
    if mesh is None:
        return tree
    batch = NamedSharding(mesh, PartitionSpec(AXIS))
    return jax.tree_util.tree_map(lambda a: jax.lax.with_sharding_constraint(a, batch), tree)


def shard_rows(tree: Any, mesh: Mesh | None) -> Any:
    """Place every leaf split along its first axis over `data`, or on the default device without a mesh.

    Leaves (n, ...) become (n', ...) global arrays, n' = n rounded up to a multiple of the
    devices (the extra rows are zeros, never indexed), each device holding n'/devices rows.
    """
    if mesh is None:
        return jax.device_put(tree)
    count = device_count(mesh)
    rows_split = NamedSharding(mesh, PartitionSpec(AXIS))
    if jax.process_count() > 1:
        return jax.tree_util.tree_map(lambda leaf: _process_rows(np.asarray(leaf), mesh, rows_split), tree)

    def place(leaf: Any) -> Any:
        host = np.asarray(leaf)
        n = host.shape[0]
        shape = (-(-n // count) * count,) + host.shape[1:]

        def rows(index: tuple[slice, ...]) -> np.ndarray:
            start, stop, _ = index[0].indices(shape[0])
            part = host[start:min(stop, n)]
            if part.shape[0] < stop - start:
                part = np.concatenate([part, np.zeros((stop - start - part.shape[0],) + host.shape[1:], host.dtype)])
            return part

        return jax.make_array_from_callback(shape, rows_split, rows)

    return jax.tree_util.tree_map(place, tree)


def _process_rows(host: np.ndarray, mesh: Mesh, rows_split: NamedSharding) -> jax.Array:
    """`host` (n, ...) as a global array split over `data`, from this process's rows only (zero rows pad the end)."""
    n, count = host.shape[0], device_count(mesh)
    rows = -(-n // count) * count
    mine = distributed.process_rows(rows, mesh)
    part = host[mine.start:min(mine.stop, n)]
    if part.shape[0] < mine.stop - mine.start:
        part = np.concatenate([part, np.zeros((mine.stop - mine.start - part.shape[0],) + host.shape[1:], host.dtype)])
    return jax.make_array_from_process_local_data(rows_split, part, (rows,) + host.shape[1:])
