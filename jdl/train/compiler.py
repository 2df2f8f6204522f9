"""XLA compile options of jdl's own programs: on CPU, the programs that run once compile in about half the time.

XLA:CPU's default MLIR fusion emitters take most of a first epoch's compile time. Its classic
elemental emitters compile jdl's programs in about half of it, but the code they emit runs slower:
measured idle on 2 cores (benchmarks/peers.py, one steady-state epoch), the training chunks took
MLP 784-512-512-10 326 ms instead of 277, the CNN 1150 ms instead of 1068, the LSTM 2615 ms instead
of 1991 (the hand-written jit + scan loop: 229, 1116, 2158). So the programs a fit runs thousands of
times, the training steps and chunks, compile with XLA's defaults (`training_options`); the ones that
run once per fit, epoch or call (initializer, permutation, evaluation, prediction, epoch means,
copies, the epoch's last partial batch: `chunk_options`) compile with the classic emitters. Only jdl's programs get these options, never the user's
own `jax.jit` functions; other backends compile with XLA's defaults.

JDL_XLA_DEFAULTS=1 in the environment compiles every jdl program with XLA's defaults.
"""

from __future__ import annotations

import os

import jax

CPU_STEP = {"xla_cpu_use_fusion_emitters": False}
CPU_ONCE = {**CPU_STEP, "xla_backend_optimization_level": 1}


def _cpu() -> bool:
    wanted = os.environ.get("JDL_XLA_DEFAULTS", "0").strip().lower() in ("", "0", "false", "no", "off")
    return wanted and jax.default_backend() == "cpu"


def training_options() -> dict | None:
    """Options for the training steps and chunks: None, XLA's defaults (their steady state is what a fit waits for)."""
    return None


def chunk_options(remainder: bool) -> dict | None:
    """A training chunk's options: XLA's defaults, but the classic emitters for the epoch's last, partial batch.

    That one step runs once per epoch, so its compile time counts and its speed does not: the first
    epoch of the 784-512-512-10 MLP on 10 000 examples took 2.5 s instead of 2.9 s. Every path
    (arrays, Grain sources, populations) compiles its remainder batch alike, so they stay bit-identical.
    """
    return step_options() if remainder else training_options()


def step_options() -> dict | None:
    """Options for programs run once per epoch or call (evaluation, prediction, epoch means, copies): the classic
    emitters, {"xla_cpu_use_fusion_emitters": False}, on CPU."""
    return dict(CPU_STEP) if _cpu() else None


def once_options() -> dict | None:
    """Options for programs that run once or once per epoch (the initializer, the epoch's permutation).

    CPU_STEP plus LLVM -O1: their threefry hashing compiles in about half the time at -O1, and runs
    once. None on other backends.
    """
    return dict(CPU_ONCE) if _cpu() else None
