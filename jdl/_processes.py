"""Whether a run is multi-process, and its arguments checked: pure Python, so `jdl train`'s supervisor never loads JAX."""

from __future__ import annotations

import os

ENVIRONMENT = ("JAX_COORDINATOR_ADDRESS",)  # with SLURM's variables, what jax.distributed.initialize() reads itself


def requested(coordinator: str | None = None, num_processes: int | None = None) -> bool:
    """True when the arguments or the environment ask for a multi-process run.

    The environment asks for one when JAX_COORDINATOR_ADDRESS is set, or inside a SLURM job step
    of several tasks (SLURM_NTASKS > 1), which jax.distributed reads by itself.
    """
    if coordinator is not None or (num_processes is not None and num_processes > 1):
        return True
    if any(os.environ.get(name) for name in ENVIRONMENT):
        return True
    return int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_PROCID" in os.environ


def check_arguments(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """ValueError naming the option unless coordinator is HOST:PORT, num_processes ≥ 1 and 0 ≤ process_id < num_processes."""
    if coordinator is not None:
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--coordinator must be HOST:PORT (e.g. node0:12345), got {coordinator!r}")
    if (num_processes is None) != (process_id is None) and coordinator is not None:
        raise ValueError("--num-processes and --process-id must be given together with --coordinator "
                         f"(or neither, to read them from the environment), got {num_processes} and {process_id}")
    if num_processes is not None:
        if not isinstance(num_processes, int) or num_processes < 1:
            raise ValueError(f"--num-processes must be a positive integer, got {num_processes!r}")
    if process_id is not None:
        if not isinstance(process_id, int) or process_id < 0:
            raise ValueError(f"--process-id must be a non-negative integer, got {process_id!r}")
        if num_processes is not None and process_id >= num_processes:
            raise ValueError(f"--process-id must be in [0, {num_processes}) for --num-processes {num_processes}, "
                             f"got {process_id}")
