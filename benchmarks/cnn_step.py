#!/usr/bin/env python
"""Forward + backward time of jdl's LeNet-style MNIST classifier against the same network in PyTorch (CPU).

Network (jdl.models.cnn.LeNet): Conv2D(6, 5×5, same) → relu → MaxPool 2 → Conv2D(16, 5×5, valid)
→ relu → MaxPool 2 → Flatten (400) → Dense 120 → relu → Dense 84 → relu → Dense 10; batch 128 of
28×28×1 float32 images; the work timed is the gradient of the mean softmax cross-entropy w.r.t.
every parameter (and the loss).

Variants, timed alternating in one process (common.compare), medians in ms per forward+backward:
- jdl: `jax.jit(jax.value_and_grad(loss))` of LeNet, one call per step.
- jdl in scan: the same gradient inside a `lax.scan` of S steps (as `Trainer.fit` runs it), per step.
- flax default VJP, and flax default VJP in scan: the same network on plain `flax.linen.Conv`, whose
  gradient uses XLA's transposed convolutions (jdl's Conv2D computes it with forward convolutions).
- torch: `torch.nn.Conv2d` etc. (NCHW), `loss.backward()` after zeroing the gradients.

    python benchmarks/cnn_step.py            # writes results/cnn_step.json
    python benchmarks/cnn_step.py --quick    # smoke run (batch 32, 3 repeats), prints only

A program, not a test: it prints a table, writes JSON, and exits 0 whatever the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_info, versions, write_json  # noqa: E402

FLOAT_OPS_PER_EXAMPLE = 2 * (28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10)  # forward MACs × 2
CEILING_GFLOPS = 360.0


def jax_variants(batch: int, scan_steps: int, seed: int):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    from jdl.models.cnn import LeNet

    class FlaxLeNet(nn.Module):
        """LeNet on plain flax.linen.Conv / max_pool (XLA's default convolution gradient)."""

        @nn.compact
        def __call__(self, x):
            x = nn.max_pool(nn.relu(nn.Conv(6, (5, 5), padding="SAME")(x)), (2, 2), (2, 2))
            x = nn.max_pool(nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x)), (2, 2), (2, 2))
            x = x.reshape((x.shape[0], -1))
            x = nn.relu(nn.Dense(120)(x))
            x = nn.relu(nn.Dense(84)(x))
            return nn.Dense(10)(x)

    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.random((batch, 28, 28, 1), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, batch).astype(np.int32))
    variants = {}
    for name, model in (("jdl", LeNet()), ("flax default VJP", FlaxLeNet())):
        params = jax.jit(model.init)(jax.random.key(seed), x)

        def loss(p, x, y, model=model):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

        step = jax.jit(jax.value_and_grad(loss))

        def scanned(p, x, y, step_fn=jax.value_and_grad(loss)):
            def body(total, _):
                value, grads = step_fn(p, x + total * 1e-12, y)  # depends on the carry: not hoisted
                return total + value + sum(jnp.sum(g) for g in jax.tree_util.tree_leaves(grads)) * 0, None
            return jax.lax.scan(body, jnp.zeros(()), None, length=scan_steps)[0]

        loop = jax.jit(scanned)
        variants[name] = lambda step=step, params=params: jax.block_until_ready(step(params, x, y))
        variants[f"{name} in scan"] = lambda loop=loop, params=params: jax.block_until_ready(loop(params, x, y))
    return variants, jax


def torch_variant(batch: int, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.random((batch, 1, 28, 28), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, batch).astype(np.int64))

    def step():
        model.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss.item()

    return step, torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--scan-steps", type=int, default=10, help="steps per lax.scan call in the scan variants")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="batch 32, 3 repeats, 3 scan steps; no JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats, args.scan_steps = 32, 3, 3

    load_before = os.getloadavg()
    variants, jax = jax_variants(args.batch, args.scan_steps, args.seed)
    torch_step, torch = torch_variant(args.batch, args.seed)
    variants["torch"] = torch_step
    import flax
    import optax

    results = compare(variants, repeats=args.repeats)
    load_after = os.getloadavg()
    for name in results:
        if name.endswith("in scan"):
            for key in ("median_ms", "min_ms", "max_ms"):
                results[name][key] /= args.scan_steps
            results[name]["ms"] = [ms / args.scan_steps for ms in results[name]["ms"]]
            results[name]["per"] = f"step (scan of {args.scan_steps})"
        else:
            results[name]["per"] = "call"
    torch_ms = results["torch"]["median_ms"]
    flops = 3 * FLOAT_OPS_PER_EXAMPLE * args.batch
    floor_ms = flops / (CEILING_GFLOPS * 1e9) * 1e3

    print(f"LeNet forward + backward, batch {args.batch}, 28×28×1 float32; {args.repeats} alternating repeats")
    print(f"FLOP floor: {flops / 1e9:.3f} GFLOP / {CEILING_GFLOPS:.0f} GFLOP/s = {floor_ms:.2f} ms; "
          f"load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(f"{'variant':<28}{'median ms':>10}{'min ms':>9}{'max ms':>9}{'median/torch':>13}{'min/torch':>10}")
    for name, r in results.items():
        r["ratio_vs_torch"] = r["median_ms"] / torch_ms
        r["min_ratio_vs_torch"] = r["min_ms"] / results["torch"]["min_ms"]
        print(f"{name:<28}{r['median_ms']:>10.2f}{r['min_ms']:>9.2f}{r['max_ms']:>9.2f}"
              f"{r['ratio_vs_torch']:>13.2f}{r['min_ratio_vs_torch']:>10.2f}")
    print(f"jdl/torch (one call)        {results['jdl']['median_ms'] / torch_ms:.2f}")
    print(f"jdl/torch (in scan)         {results['jdl in scan']['median_ms'] / torch_ms:.2f}")
    print(f"flax default / jdl in scan  {results['flax default VJP in scan']['median_ms'] / results['jdl in scan']['median_ms']:.1f}")

    if not args.quick:
        path = write_json("cnn_step", {
            "workload": "LeNet (conv 6 5x5 same, pool, conv 16 5x5, pool, dense 120, 84, 10) grad of mean cross-entropy",
            "batch": args.batch, "repeats": args.repeats, "scan_steps": args.scan_steps,
            "machine": machine_info(jax, load_before, load_after),
            "versions": versions(jax, flax, optax, torch, np),
            "flop_floor_ms": floor_ms, "results": results,
            "ratio_jdl_vs_torch": results["jdl"]["median_ms"] / torch_ms,
            "ratio_jdl_in_scan_vs_torch": results["jdl in scan"]["median_ms"] / torch_ms,
            "min_ratio_jdl_vs_torch": results["jdl"]["min_ratio_vs_torch"],
            "note": "the machine is shared; with other processes running, torch's medians suffer most "
                    "(see loadavg): compare the min ratios as well",
        })
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
