"""Run an example script in this process, as `python examples/NAME ARGS...` would, and return what it printed.

In-process runs share JAX's compilation caches and skip re-importing jdl, so they are much
faster than a fresh interpreter per script. Output is captured by redirecting `sys.stdout`
(what `capsys` reads too) so that module-scoped fixtures, where `capsys` is not available, can
run a script once and share its output among their tests.
"""

import contextlib
import functools
import importlib.util
import io
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@functools.cache
def load_example(name: str):
    """The module examples/NAME, imported once per process (its name starts with a digit, so no plain import)."""
    path = EXAMPLES / name
    module_name = f"example_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # as an import does, for what looks a class's module up by name
    spec.loader.exec_module(module)
    return module


def run_example(name: str, *args: str) -> str:
    """stdout of `main([ARGS...])` of examples/NAME; fails the test if main raises or returns non-zero."""
    command = " ".join([f"examples/{name}", *args])
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            code = load_example(name).main(list(args))
    except SystemExit as stop:  # argparse on bad arguments, or the script's own sys.exit
        code = stop.code
    except Exception as error:
        raise AssertionError(f"{command} raised {error!r} after printing:\n{printed.getvalue()[-4000:]}") from error
    assert code in (0, None), f"{command} returned {code!r} after printing:\n{printed.getvalue()[-4000:]}"
    return printed.getvalue()
