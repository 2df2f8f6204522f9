"""XLA compile options of jdl's own programs: on CPU, the same computations compiled in about half the time.

XLA:CPU's default MLIR fusion emitters take most of a first epoch's compile time. Its classic
elemental emitters compile jdl's programs in about half of it: the first epoch of the
784-512-512-10 MLP on 10 000 examples took 2.9-3.1 s instead of 4.2-4.9 s (backend compiles 2.9 s
instead of 4.9-5.4 s; two runs each on 2 shared cores). Steady-state epochs measured alike on that
machine (MLP 0.53-0.58 s against 0.59-0.61 s; the CNN and the LSTM within its noise);
benchmarks/compile_time.py and benchmarks/peers.py measure both. Only jdl's compiled programs get
these options, never the user's own `jax.jit` functions; other backends compile with XLA's defaults.

JDL_XLA_DEFAULTS=1 in the environment compiles jdl's programs with XLA's defaults too.
"""

from __future__ import annotations

import os

import jax

CPU_STEP = {"xla_cpu_use_fusion_emitters": False}
CPU_ONCE = {**CPU_STEP, "xla_backend_optimization_level": 1}


def _cpu() -> bool:
    wanted = os.environ.get("JDL_XLA_DEFAULTS", "0").strip().lower() in ("", "0", "false", "no", "off")
    return wanted and jax.default_backend() == "cpu"


def step_options() -> dict | None:
    """Options for programs that run many times (training chunks, evaluation): {"xla_cpu_use_fusion_emitters": False} on CPU."""
    return dict(CPU_STEP) if _cpu() else None


def once_options() -> dict | None:
    """Options for programs that run once or once per epoch (the initializer, the epoch's permutation).

    CPU_STEP plus LLVM -O1: their threefry hashing compiles in about half the time at -O1, and runs
    once. None on other backends.
    """
    return dict(CPU_ONCE) if _cpu() else None
