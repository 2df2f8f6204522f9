"""What the studies share: threads for independent configurations, and a summary of repeats over seeds."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jdl import _checks


def study_workers(workers: int | None, jobs: int) -> int:
    """Threads for `jobs` independent configurations: `workers`, or one per CPU core (None), at most `jobs`."""
    if workers is not None:
        _checks.check_number(workers, "workers", integer=True, positive=True)
    return max(1, min(jobs, workers or os.cpu_count() or 1))


def seed_summary(values: np.ndarray, seeds: int) -> dict[str, Any]:
    """values (k, ...), one row per seed. One seed: the row; k seeds: their mean, "…_spread" (std over seeds)
    and "…_seeds" (the k rows), keyed by the suffix to append to the field's name."""
    if seeds == 1:
        return {"": values[0].tolist()}
    return {"": values.mean(axis=0).tolist(), "_spread": values.std(axis=0).tolist(), "_seeds": values.tolist()}


def seed_fields(name: str, values: Any, seeds: int) -> dict[str, Any]:
    """`seed_summary` of values (k, ...) as record fields: name, and with k > 1 name_spread and name_seeds."""
    return {f"{name}{suffix}": v for suffix, v in seed_summary(np.asarray(values), seeds).items()}
