"""LSTM layer forward + backward in a user's own `jax.jit(jax.value_and_grad)` loop, against torch.nn.LSTM (CPU).

Workload (../shared/PERFORMANCE.md): batch 64, T 100, 32 -> 128 units, loss = mean of the output
sequence, gradient w.r.t. every parameter. jdl variants: `Recurrent(LSTMCell)` with the fast
backward pass (fast_grad=True, the default: the backward scan forms only the step cotangents and
g_U = Σ_t h_{t-1}ᵀ ρ_t is one product after it) and with JAX's own gradient of the plain scan
(fast_grad=False: g_U accumulated step by step inside the backward loop). torch runs on its
default thread count (the reference) and on one thread. With --more: unroll 2/4, and flax's
`nn.RNN(OptimizedLSTMCell)`.

Every variant is timed `repeats` times, alternating (the order rotates each repeat): wall medians
and minima, then in a second alternating pass process-CPU medians (all threads; CPU time moves
far less than wall time when other processes share the cores). The floor, measured in the same
run: the FLOPs (forward 2·B·T·(F + H)·4H, backward twice that) at the matmul rate of one large
product of the workload's shapes, and, as a second bound, the sequential part alone: 3·T
dependent (B, H) x (H, 4H) products in a `lax.scan` (forward h U, backward ρ Uᵀ and, for plain
JAX, hᵀρ), which no reordering removes.

--single-thread: XLA on one thread (set before JAX starts) against torch's one-thread row, results
in results/lstm_step_single_thread.json: CPU time is then the work done, with no thread-pool
spinning, the comparison least moved by other processes' load.

Run: python benchmarks/lstm_step.py [--repeats 9] [--more] [--single-thread] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys

SINGLE_THREAD = "--single-thread" in sys.argv
if SINGLE_THREAD:  # before JAX starts its CPU backend
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()

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
    """Median process CPU milliseconds per call (all threads), alternating the variants like `compare`."""
    names = list(variants)
    samples = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            samples[name].append(1e3 * timed(variants[name])[1])
    return {name: float(np.median(ms)) for name, ms in samples.items()}


def floors(batch, time, features, units, repeats):
    """(matmul GFLOP/s of one (B·T, F + H) x (F + H, 4H) product, min ms of 3·T dependent (B, H) x (H, 4H) products)."""
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.normal(size=(batch * time, features + units)).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(features + units, 4 * units)).astype(np.float32))
    big = jax.jit(lambda a, w: a @ w)
    u = jnp.asarray(0.01 * rng.normal(size=(units, 4 * units)).astype(np.float32))

    def chain(h):
        def body(h, _):
            return jnp.tanh(h @ u)[:, :units], None

        return jax.lax.scan(body, h, None, length=3 * time)[0]

    small = jax.jit(chain)
    h0 = jnp.ones((batch, units), jnp.float32)
    timings = compare({"big": lambda: jax.block_until_ready(big(a, w)),
                       "chain": lambda: jax.block_until_ready(small(h0))}, repeats=repeats)
    gflops = 2 * a.shape[0] * a.shape[1] * w.shape[1] / (1e-3 * timings["big"]["min_ms"]) / 1e9
    return gflops, timings["chain"]["min_ms"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--time", type=int, default=100)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--more", action="store_true", help="also unroll 2/4 and flax's OptimizedLSTMCell")
    parser.add_argument("--single-thread", action="store_true", help="XLA and torch on one thread each")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 3 repeats, no JSON")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.time, args.features, args.units, args.repeats = 4, 10, 3, 8, 3

    load_before = os.getloadavg()
    x = np.random.default_rng(0).normal(size=(args.batch, args.time, args.features)).astype(np.float32)
    xj = jnp.asarray(x)
    units = args.units
    threads = 1 if args.single_thread else torch.get_num_threads()
    variants = {"torch.nn.LSTM": torch_variant(x, units, threads)}
    if threads > 1:
        variants["torch.nn.LSTM, 1 thread"] = torch_variant(x, units, 1)
    variants["jdl Recurrent(LSTMCell), fast_grad"] = jax_variant(Recurrent(LSTMCell(units), return_sequences=True), xj)
    variants["jdl Recurrent(LSTMCell), plain JAX grad"] = jax_variant(
        Recurrent(LSTMCell(units), return_sequences=True, fast_grad=False), xj)
    if args.more:
        for unroll in (2, 4):
            variants[f"jdl fast_grad, unroll={unroll}"] = jax_variant(
                Recurrent(LSTMCell(units), return_sequences=True, unroll=unroll), xj)
        variants["flax nn.RNN(OptimizedLSTMCell)"] = jax_variant(nn.RNN(nn.OptimizedLSTMCell(units)), xj)
    timings = compare(variants, repeats=args.repeats)
    cpu = cpu_medians(variants, args.repeats)
    gflops, chain_ms = floors(args.batch, args.time, args.features, units, args.repeats)
    load_after = os.getloadavg()

    flops = 3 * 2 * args.batch * args.time * (args.features + units) * 4 * units
    floor_ms = 1e3 * flops / (gflops * 1e9)
    reference = timings["torch.nn.LSTM"]
    by_min = min(reference["min_ms"], timings.get("torch.nn.LSTM, 1 thread", reference)["min_ms"])
    cpu_reference = cpu["torch.nn.LSTM"]
    print(f"LSTM forward+backward, batch {args.batch}, T {args.time}, {args.features} -> {units}; "
          f"{flops / 1e9:.2f} GFLOP")
    print(f"floor: {floor_ms:.1f} ms at the measured {gflops:.0f} GFLOP/s of one large product; "
          f"3·T dependent small products alone: {chain_ms:.1f} ms")
    print(f"{'variant':<44}{'median ms':>10}{'min ms':>9}{'med/torch':>10}{'min/best torch':>15}"
          f"{'CPU ms':>9}{'CPU/torch':>10}")
    for name, t in timings.items():
        print(f"{name:<44}{t['median_ms']:>10.1f}{t['min_ms']:>9.1f}{t['median_ms'] / reference['median_ms']:>9.2f}x"
              f"{t['min_ms'] / by_min:>14.2f}x{cpu[name]:>9.1f}{cpu[name] / cpu_reference:>9.2f}x")
    print(f"1-minute load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} "
          f"on {os.cpu_count()} cores (other processes share them: medians move, minima and CPU time less)")
    if args.quick:
        return
    report = {
        "workload": {"batch": args.batch, "time": args.time, "features": args.features, "units": units,
                     "loss": "mean of the output sequence", "gflop": flops / 1e9},
        "floor": {"matmul_gflops_measured": gflops, "floor_ms_at_measured_rate": floor_ms,
                  "sequential_small_products_ms": chain_ms},
        "machine": machine_info(jax, load_before, load_after),
        "versions": versions(jax, flax, torch, np),
        "torch_threads": threads,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "reference": "torch.nn.LSTM",
        "results": {name: {"median_ms": t["median_ms"], "min_ms": t["min_ms"], "max_ms": t["max_ms"],
                           "ratio_vs_torch": t["median_ms"] / reference["median_ms"],
                           "min_ratio_vs_best_torch_min": t["min_ms"] / by_min, "cpu_median_ms": cpu[name],
                           "cpu_ratio_vs_torch": cpu[name] / cpu_reference} for name, t in timings.items()},
    }
    print(f"wrote {write_json('lstm_step_single_thread' if args.single_thread else 'lstm_step', report)}")


if __name__ == "__main__":
    main()
