"""Multi-process (multi-host) runs: start `jax.distributed`, and each process's share of global arrays.

Every process runs the same program; `jax.devices()` then lists the devices of all processes, the
`data` mesh of `jdl.train.sharding` spans them, and each process holds only the rows of a global
array that live on its own devices (`process_rows`, `global_rows`). Collectives run over Gloo on
CPU (NCCL on GPU, the TPU interconnect on TPU).

A lost process is detected by the coordination service's heartbeat, `HEARTBEAT_SECONDS` after it
stops (JAX's default is 100 s); `jdl.launch` turns what JAX then prints into one line.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jdl import _checks
from jdl._processes import check_arguments, requested  # noqa: F401  (re-exported)

HEARTBEAT_SECONDS = 30  # 10 s lost healthy processes in a test on 2 cores at load 25 (heartbeats starved, it seems)
CONNECT_SECONDS = 60


def _reachable(coordinator: str, seconds: float) -> bool:
    """True when a TCP connection to HOST:PORT opens within `seconds` (retried: the coordinator may start later)."""
    import time

    host, _, port = coordinator.rpartition(":")
    host = host.strip("[]")
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=min(1.0, seconds)):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None, *,
               connect_seconds: float = CONNECT_SECONDS, heartbeat_seconds: int = HEARTBEAT_SECONDS) -> None:
    """Join the processes of a run: `jax.distributed.initialize` with Gloo CPU collectives and a short heartbeat.

    Must run before anything touches a JAX backend. Unset arguments are read by JAX from the
    environment (JAX_COORDINATOR_ADDRESS, SLURM). A coordinator that does not answer within
    `connect_seconds` is a ValueError naming --coordinator (process 0 starts it, so only the others
    wait for it). `heartbeat_seconds`: how soon a lost process is noticed by the others.
    """
    check_arguments(coordinator, num_processes, process_id)
    _checks.check_number(connect_seconds, "connect_seconds", positive=True)
    _checks.check_number(heartbeat_seconds, "heartbeat_seconds", integer=True, positive=True)
    if jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    address = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address is not None and process_id not in (None, 0) and not _reachable(address, connect_seconds):
        raise ValueError(f"--coordinator {address} did not answer within {connect_seconds:g} s; start process 0 "
                         "(which serves it) first, or check HOST:PORT and the firewall")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=max(1, int(connect_seconds)),
                                   heartbeat_timeout_seconds=heartbeat_seconds)
    except (RuntimeError, ValueError) as err:  # JaxRuntimeError is a RuntimeError: DEADLINE_EXCEEDED and the like
        message = " ".join(str(err).split())[:300]
        raise ValueError(f"--coordinator {address}: could not join the run within {connect_seconds:g} s "
                         f"({message})") from None


def is_main() -> bool:
    """True in the process that writes logs, metrics, reports and prints (process 0; every single-process run)."""
    return jax.process_index() == 0


def process_rows(rows: int, mesh: Mesh | None) -> slice:
    """The rows [start, stop) of a (rows, ...) array split over `mesh`'s `data` axis that this process's devices hold.

    rows must divide over the mesh's devices; with one process (or no mesh) that is every row.
    """
    if mesh is None or jax.process_count() == 1:
        return slice(0, rows)
    devices = list(mesh.devices.reshape(-1))
    per = rows // len(devices)
    mine = [i for i, d in enumerate(devices) if d.process_index == jax.process_index()]
    if mine != list(range(mine[0], mine[-1] + 1)):
        raise ValueError(f"the mesh's devices of process {jax.process_index()} are not contiguous: {mine}")
    return slice(mine[0] * per, (mine[-1] + 1) * per)


def global_rows(local: Any, rows: int, mesh: Mesh | None) -> Any:
    """A global (rows, ...) array split over `data` from this process's rows `process_rows(rows, mesh)` of it.

    jax.make_array_from_process_local_data: no process holds, or copies, another process's rows.
    """
    if mesh is None:
        return jax.device_put(local)
    split = NamedSharding(mesh, PartitionSpec("data"))
    return jax.tree_util.tree_map(
        lambda a: jax.make_array_from_process_local_data(split, np.asarray(a), (rows,) + np.shape(a)[1:]), local)


def to_host(tree: Any) -> Any:
    """jax.device_get, with arrays split over other processes' devices gathered first (a collective: call it in all)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    spread = [i for i, a in enumerate(leaves) if isinstance(a, jax.Array) and not a.is_fully_addressable]
    if spread:
        from jax.experimental import multihost_utils

        gathered = multihost_utils.process_allgather([leaves[i] for i in spread], tiled=True)
        for i, a in zip(spread, gathered):
            leaves[i] = a
    return jax.device_get(jax.tree_util.tree_unflatten(treedef, leaves))


def barrier(name: str, seconds: int = 600) -> None:
    """Wait up to `seconds` until every process got here (nothing in a single-process run).

    A barrier of JAX's coordination service (through Orbax), not a collective: Gloo gives up on a
    collective whose peers are more than 30 s late, and a run ends with process 0 alone writing the report.
    """
    if jax.process_count() > 1:
        from orbax.checkpoint import multihost

        multihost.sync_global_processes(name, timeout=seconds, processes=set(range(jax.process_count())))
