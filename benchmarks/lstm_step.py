"""LSTM forward + backward: jdl's scan-based LSTM against torch.nn.LSTM (CPU) in the same run.

Workload (../shared/PERFORMANCE.md): batch 64, T 100, 32 -> 128 units, loss = mean of the output
sequence, gradient w.r.t. every parameter. Variants of jdl: unroll 1/2/4/8 (steps per scan
iteration); the same cell with the input projection inside the scan (flax `nn.RNN`, one small
matmul per step instead of one big one before the scan); flax's own `LSTMCell` (eight unfused
gate matmuls) and `OptimizedLSTMCell` (fused) under `nn.RNN`. Wall-time medians (`compare`) and,
in a second alternating pass, process-CPU medians (all threads). The floor: forward 2·B·T·(F + H)·4H
FLOPs, backward twice that, over ≈ 360 GFLOP/s. torch runs on its default thread count (the
reference) and on one thread: on a loaded machine its thread pool can stall (seen here: 0.5 s for a
tiny LSTM on 2 threads, 2 ms on 1).

Run: python benchmarks/lstm_step.py [--repeats 9] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import compare, machine_info, timed, versions, write_json  # noqa: E402

from jdl.nn.recurrent import LSTMCell, Recurrent  # noqa: E402


def jax_variant(module: nn.Module, x: jax.Array):
    """A blocking callable: jitted value_and_grad of mean(module(x)) w.r.t. the parameters."""
    params = module.init(jax.random.key(0), x)
    step = jax.jit(jax.value_and_grad(lambda p: jnp.mean(module.apply(p, x))))
    return lambda: jax.block_until_ready(step(params))


def torch_variant(x: np.ndarray, units: int, threads: int):
    """A blocking callable: forward, mean, backward of torch.nn.LSTM on `threads` intra-op threads."""
    lstm = torch.nn.LSTM(x.shape[-1], units, batch_first=True)
    inputs = torch.from_numpy(x)

    def run():
        torch.set_num_threads(threads)
        for p in lstm.parameters():
            p.grad = None
        out, _ = lstm(inputs)
        loss = out.mean()
        loss.backward()
        return loss.item()

    return run


def cpu_medians(variants, repeats):
    """Median process CPU milliseconds per call (all threads), alternating the variants like `compare`.

    CPU time counts the work done, so it moves far less than wall time when other processes share
    the cores (threads that spin while waiting still count).
    """
    names = list(variants)
    samples = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            samples[name].append(1e3 * timed(variants[name])[1])
    return {name: float(np.median(ms)) for name, ms in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 3 repeats, no JSON")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.time, args.features, args.units, args.repeats = 4, 10, 3, 8, 3

    load_before = os.getloadavg()
    x = np.random.default_rng(0).normal(size=(args.batch, args.time, args.features)).astype(np.float32)
    xj = jnp.asarray(x)
    units = args.units
    threads = torch.get_num_threads()
    variants = {"torch.nn.LSTM": torch_variant(x, units, threads)}
    if threads > 1:
        variants["torch.nn.LSTM, 1 thread"] = torch_variant(x, units, 1)
    for unroll in (1, 2, 4, 8):
        variants[f"jdl Recurrent(LSTMCell) unroll={unroll}"] = jax_variant(
            Recurrent(LSTMCell(units), return_sequences=True, unroll=unroll), xj)
    variants["jdl LSTMCell, projection per step (nn.RNN)"] = jax_variant(nn.RNN(LSTMCell(units)), xj)
    variants["flax nn.RNN(LSTMCell)"] = jax_variant(nn.RNN(nn.LSTMCell(units)), xj)
    variants["flax nn.RNN(OptimizedLSTMCell)"] = jax_variant(nn.RNN(nn.OptimizedLSTMCell(units)), xj)
    timings = compare(variants, repeats=args.repeats)
    cpu = cpu_medians(variants, args.repeats)
    load_after = os.getloadavg()

    flops = 3 * 2 * args.batch * args.time * (args.features + units) * 4 * units
    floor_ms = 1e3 * flops / 360e9
    reference = timings["torch.nn.LSTM"]["median_ms"]
    cpu_reference = cpu["torch.nn.LSTM"]
    print(f"LSTM forward+backward, batch {args.batch}, T {args.time}, {args.features} -> {units}; "
          f"{flops / 1e9:.2f} GFLOP, floor at 360 GFLOP/s: {floor_ms:.1f} ms")
    print(f"{'variant':<46}{'median ms':>10}{'min ms':>9}{'vs torch':>10}{'CPU ms':>9}{'vs torch':>10}")
    for name, t in timings.items():
        print(f"{name:<46}{t['median_ms']:>10.1f}{t['min_ms']:>9.1f}{t['median_ms'] / reference:>9.2f}x"
              f"{cpu[name]:>9.1f}{cpu[name] / cpu_reference:>9.2f}x")
    print(f"1-minute load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    if args.quick:
        return
    report = {
        "workload": {"batch": args.batch, "time": args.time, "features": args.features, "units": units,
                     "loss": "mean of the output sequence", "gflop": flops / 1e9, "floor_ms_at_360_gflops": floor_ms},
        "machine": machine_info(jax, load_before, load_after),
        "versions": versions(jax, flax, torch, np),
        "torch_threads": threads,
        "reference": "torch.nn.LSTM",
        "results": {name: {"median_ms": t["median_ms"], "min_ms": t["min_ms"], "max_ms": t["max_ms"],
                           "ratio_vs_torch": t["median_ms"] / reference, "cpu_median_ms": cpu[name],
                           "cpu_ratio_vs_torch": cpu[name] / cpu_reference} for name, t in timings.items()},
    }
    print(f"wrote {write_json('lstm_step', report)}")


if __name__ == "__main__":
    main()
