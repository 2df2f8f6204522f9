"""Run an example script as a user runs it and return what it printed."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, timeout: float = 600) -> str:
    """stdout of `python examples/NAME ARGS...`; fails the test with its stderr if the script fails."""
    done = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{name} exited with {done.returncode}:\n{done.stderr[-4000:]}"
    return done.stdout
