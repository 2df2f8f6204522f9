"""A module fixture's result computed once per test session, whichever pytest-xdist workers ask for it.

With `--dist worksteal` the tests that read one module fixture may run on both workers, and each
would compute it. `once` keeps the result (JSON) in a directory the session's workers share: the
first to ask computes it under a lock, the others wait and read it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def shared_directory(tmp_path_factory: Any, name: str) -> Path:
    """tmp/NAME shared by this session's xdist workers (this process's own basetemp without xdist)."""
    base = tmp_path_factory.getbasetemp()
    directory = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    directory.mkdir(exist_ok=True)
    return directory


def once(tmp_path_factory: Any, name: str, compute: Callable[[Path], Any]) -> tuple[Path, Any]:
    """(directory, compute(directory)) where compute runs once per session and returns JSON-able data."""
    directory = shared_directory(tmp_path_factory, name)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kept = directory / "result.json"
        if not kept.exists():
            kept.write_text(json.dumps(compute(directory)))
        return directory, json.loads(kept.read_text())
