"""The XLA compiler settings of the test suite: the same programs, compiled in about half the time.

The suite is compile-bound (about 80% of its time on 2 cores is XLA's CPU backend compiling), so it
compiles with LLVM at -O1 and XLA's classic elemental emitters instead of the MLIR fusion emitters.
(-O0 would compile about 30% faster, but it changes float32 results beyond rounding: GELU near x = -2.9
moves 5e-5 relative from Keras' value.)
Every computation means the same; only the last bits of some fused floating-point reductions may
differ, and every comparison in the suite is either within one process (both sides compiled alike)
or has a tolerance. The bit-for-bit check against the parameters recorded before the engine-core
change (tests/train/test_equivalence.py) runs in a fresh interpreter with XLA's defaults.

JDL_TEST_DEFAULT_COMPILER=1 runs the whole suite with XLA's default settings instead.
"""

import os

SUITE_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=1",
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
