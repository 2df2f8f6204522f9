"""Suite-wide fixtures, and JAX's persistent compilation cache for the test run.

The cache lives in a temporary directory shared by all pytest-xdist workers of one run (they share
PYTEST_XDIST_TESTRUNUID) and by the interpreters the tests start (they inherit JAX_COMPILATION_CACHE_DIR), so a
program compiled once, by any of them, is loaded instead of compiled again. A run without xdist uses a fresh
temporary directory. The directory is removed when the run ends. Small CPU compiles are cached too.

- JAX_COMPILATION_CACHE_DIR set in the environment (as .ci/run does) is used as it is and never removed.
- JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS / JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES set in the environment
  override the thresholds here (0 s and -1: cache every compile).
- JDL_TEST_COMPILATION_CACHE=0 switches the persistent cache off for the run.
"""

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from tests import compiler

compiler.use_suite_flags()  # before JAX starts its CPU backend

import jax  # noqa: E402
import pytest  # noqa: E402

_RUN_ID = "PYTEST_XDIST_TESTRUNUID"
_SETTINGS = {  # JAX's documented options, by environment variable: (the value used here, its type)
    "JAX_COMPILATION_CACHE_DIR": (None, str),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": ("0", float),
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": ("-1", int),
}
_owned = {"directories": [], "variables": []}  # what this process created, to undo at the end of the run


def _cache_wanted() -> bool:
    return os.environ.get("JDL_TEST_COMPILATION_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def _run_directory(run_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"jdl-test-jax-cache-{run_id}"


def _export(name: str, value: str) -> str:
    """The environment's value of `name`, else `value`, put in the environment so started interpreters inherit it."""
    if name not in os.environ:
        os.environ[name] = value
        _owned["variables"].append(name)
    return os.environ[name]


def _use_compilation_cache(directory) -> None:
    for name, (value, kind) in _SETTINGS.items():
        jax.config.update(name.lower(), kind(_export(name, str(directory) if value is None else value)))


def _new_directory(config) -> Path:
    """This run's cache directory: one per xdist run (its workers find it by the run id), else a fresh one."""
    if hasattr(config, "workerinput"):  # an xdist worker whose environment did not carry the directory
        directory = _run_directory(os.environ.get(_RUN_ID) or config.workerinput["testrunuid"])
        directory.mkdir(exist_ok=True)
        return directory
    if getattr(config.option, "numprocesses", None):  # an xdist controller: fix the run id its workers get
        if getattr(config.option, "testrunuid", None) is None:
            config.option.testrunuid = uuid.uuid4().hex
        directory = _run_directory(config.option.testrunuid)
        directory.mkdir(exist_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="jdl-test-jax-cache-"))
    _owned["directories"].append(directory)
    return directory


def pytest_configure(config):
    if not _cache_wanted():
        jax.config.update("jax_enable_compilation_cache", False)
        _export("JAX_ENABLE_COMPILATION_CACHE", "false")
        return
    _use_compilation_cache(jax.config.jax_compilation_cache_dir or _new_directory(config))


def pytest_unconfigure(config):
    while _owned["directories"]:
        shutil.rmtree(_owned["directories"].pop(), ignore_errors=True)
    while _owned["variables"]:
        os.environ.pop(_owned["variables"].pop(), None)


WORKER_MEMORY_GIB = 4  # a worker's peak resident memory is 1.5-3.6 GB (the multihost and sharding tests)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown, and unused, under -p no:xdist
def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject's addopts): one worker more than the usable CPUs, at most one per WORKER_MEMORY_GIB of RAM.

    Many tests wait: on child interpreters (multihost ranks, `jdl train`, the sweep workers) and on
    their heartbeats and signals. A third worker on 2 cores fills those waits: the suite took 351 s
    with 3 workers against 385 s with 2 (663 s against 685 s of CPU). PYTEST_XDIST_AUTO_NUM_WORKERS
    set in the environment wins, as in pytest-xdist.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, min(cpus + 1, int(memory_gib // WORKER_MEMORY_GIB)))


@pytest.fixture
def x64():
    """Run the test with 64-bit JAX types (float64 references), restoring the setting after."""
    with jax.enable_x64(True):
        yield


# -- optional: where the suite's time goes (JDL_TEST_COMPILE_REPORT=DIR writes one JSON per worker: per test, the
# compile events' seconds, wall, this process's CPU and the CPU of the interpreters it waited for) --

_COMPILE_EVENTS = ("/jax/core/compile/backend_compile_duration", "/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration")
_spent: dict[str, float] = {}
_per_test: dict[str, dict[str, float]] = {}


def _listen(event, duration, **_):
    if event in _COMPILE_EVENTS:
        _spent[event] = _spent.get(event, 0.0) + duration


if os.environ.get("JDL_TEST_COMPILE_REPORT"):
    jax.monitoring.register_event_duration_secs_listener(_listen)

    def _clocks() -> dict[str, float]:
        import resource
        import time

        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"wall": time.perf_counter(), "cpu": own.ru_utime + own.ru_stime,
                "children_cpu": children.ru_utime + children.ru_stime}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        before, clocks = dict(_spent), _clocks()
        yield
        after = _clocks()
        _per_test[item.nodeid] = {
            **{k.rsplit("/", 1)[-1]: _spent.get(k, 0.0) - before.get(k, 0.0) for k in _COMPILE_EVENTS},
            **{k: after[k] - clocks[k] for k in after}}

    def pytest_sessionfinish(session):
        import json

        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        path = Path(os.environ["JDL_TEST_COMPILE_REPORT"]) / f"{worker}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_per_test))
