"""What every jdl benchmark shares: timing with medians, the machine and versions, and the JSON file.

A benchmark is a program: it times a jdl workload and a reference in the same process, alternating,
prints a table and writes `results/NAME.json` with the machine, the versions, every median and the
ratios against the reference (../shared/PERFORMANCE.md, "Method").
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], Any]) -> tuple[float, float, float]:
    """(wall, process CPU, calling-thread CPU) seconds of fn(), which must block until its results are ready.

    XLA computes on its own threads, so the calling thread's CPU time is the host-side (Python,
    dispatch, validation) work; it is far less sensitive to other processes' load than wall time.
    """
    w0, c0, t0 = time.perf_counter(), time.process_time(), time.thread_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0, time.thread_time() - t0


def median_time(fn: Callable[[], Any], repeats: int = 7) -> float:
    """Median wall seconds of fn() over `repeats` calls (after one untimed call)."""
    fn()
    return statistics.median(timed(fn)[0] for _ in range(repeats))


def compare(variants: Mapping[str, Callable[[], Any]], repeats: int = 9) -> dict[str, dict[str, Any]]:
    """Time every variant `repeats` times, alternating them (the order rotates each repeat), after one warm-up each.

    Each fn must block until its result is ready (`jax.block_until_ready`, `.item()`, ...).
    Returns {name: {"median_ms", "min_ms", "max_ms", "ms"}}.
    """
    names = list(variants)
    for name in names:
        variants[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            samples[name].append(1e3 * timed(variants[name])[0])
    return {name: {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "ms": ms}
            for name, ms in samples.items()}


def machine_info(jax: Any, load_before: tuple[float, ...], load_after: tuple[float, ...]) -> dict[str, Any]:
    """Platform, CPU model, usable cores, memory, JAX backend and devices, 1-minute load before and after."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        mem_gib = None
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_model": model,
            "cpu_count": os.cpu_count(), "cpus_usable": usable, "memory_gib": mem_gib,
            "jax_backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)]}


def versions(*modules: Any) -> dict[str, str]:
    """{"python": ..., module name: __version__ ...} of the libraries a benchmark measured."""
    found = {"python": platform.python_version()}
    for module in modules:
        found[module.__name__] = getattr(module, "__version__", "unknown")
    return found


def write_json(name: str, report: Mapping[str, Any]) -> Path:
    """Write `report` (plus the date) to results/NAME.json and return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {"benchmark": name, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **report}
    path.write_text(json.dumps(body, indent=2, default=float) + "\n")
    return path
