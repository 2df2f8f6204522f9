"""The XLA compiler settings of the test suite: the same programs, compiled in about half the time.

The suite is compile-bound (compiling and tracing take about 80% of its time on 2 cores), so it
compiles with LLVM at -O0 and XLA's classic elemental emitters instead of the MLIR fusion emitters:
the whole suite took 584 s instead of 747 s at -O1 (15m49s of CPU instead of 21m23s).
Every computation means the same; without LLVM's optimizations (no fused multiply-adds) the last
bits of float32 results may differ. The tests that compare with numbers recorded elsewhere (Keras'
activations) at that precision compile their computation as users do (`users_jit`). The bit-for-bit check against the parameters recorded before the engine-core
change (tests/train/test_equivalence.py) runs in a fresh interpreter with XLA's defaults.

JDL_TEST_DEFAULT_COMPILER=1 runs the whole suite with XLA's default settings instead.
"""

import os

SUITE_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=0",
                   "--xla_cpu_parallel_codegen_split_count=1")


def wanted() -> bool:
    return os.environ.get("JDL_TEST_DEFAULT_COMPILER", "0").strip().lower() in ("", "0", "false", "no", "off")


def use_suite_flags() -> None:
    """Add the suite's flags to XLA_FLAGS (before JAX starts its backend), keeping the user's own."""
    if not wanted():
        return
    own = os.environ.get("XLA_FLAGS", "").split()
    names = {flag.split("=", 1)[0] for flag in own}
    os.environ["XLA_FLAGS"] = " ".join(own + [f for f in SUITE_XLA_FLAGS if f.split("=", 1)[0] not in names])


def default_compiler_env() -> dict[str, str]:
    """os.environ without the suite's XLA flags: for a fresh interpreter that must compile as users do."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if f not in SUITE_XLA_FLAGS]
    if flags:
        env["XLA_FLAGS"] = " ".join(flags)
    else:
        env.pop("XLA_FLAGS", None)
    return env


USERS_OPTIONS = {"xla_backend_optimization_level": 2, "xla_cpu_use_fusion_emitters": True}  # XLA:CPU's defaults


def users_jit(fn):
    """jax.jit(fn) compiled with XLA's default CPU options, whatever the suite's flags: as a user's program is."""
    import jax

    return jax.jit(fn, compiler_options=USERS_OPTIONS if jax.default_backend() == "cpu" else None)
