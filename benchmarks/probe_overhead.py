#!/usr/bin/env python
"""Cost of `jdl.diagnostics.probe` in a hand-written jax.jit loop: probe(every=1) vs the same loop with jax.value_and_grad.

Three plain Flax models, each trained by a jitted optax (Adam) step called from a Python loop over
batches already on the device (`steps` steps per timed call, blocking once at the end):
- MLP 784-256-256-10 (relu), batch 128;
- CNN: Conv(16, 3x3)-relu-Conv(32, 3x3)-relu-Dense(10) on 28x28x1, batch 64;
- Transformer: token + position embeddings (nn.Embed of an (n, T) position array), 2 pre-norm blocks of
  flax.linen.MultiHeadDotProductAttention (4 heads, width 64) and a relu MLP, sequences of 32, batch 32;
- the same with the positions a raw `self.param`: no fast-path rule covers it, so the step's own
  backward pass cannot be shared and the per-example norms take a second pass.
Variants, alternating in one process after a warm-up: "plain" (jax.value_and_grad of the mean
loss), "probe every=1" (per-layer norms and exact per-example norms at every step, the stats
kept on the device by a Recorder), "probe every=1 + activations" and "probe every=10, moments".
Goal: probe every=1 <= 1.3x plain.

    python benchmarks/probe_overhead.py [--quick] [--repeats 5]

A program, not a test: it prints a table, writes results/probe_overhead.json, and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_info, versions, write_json  # noqa: E402

GOAL = 1.3


def models(quick: bool):
    import flax.linen as nn
    import jax.numpy as jnp
    import numpy as np

    width = 128 if quick else 256

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(2):
                x = nn.relu(nn.Dense(width)(x))
            return nn.Dense(10)(x)

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(8 if quick else 16, (3, 3), strides=2)(x))
            x = nn.relu(nn.Conv(16 if quick else 32, (3, 3), strides=2)(x))
            return nn.Dense(10)(x.reshape(x.shape[0], -1))

    class Transformer(nn.Module):
        d: int = 32 if quick else 64
        param_positions: bool = False

        @nn.compact
        def __call__(self, tokens):
            if self.param_positions:  # a raw parameter no fast-path rule covers: no shared pass
                positions = self.param("position", nn.initializers.normal(0.02), (tokens.shape[1], self.d))
            else:
                index = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)  # (n, T): one row per example
                positions = nn.Embed(tokens.shape[1], self.d)(index)
            h = nn.Embed(100, self.d)(tokens) + positions
            for _ in range(2):
                h = h + nn.MultiHeadDotProductAttention(num_heads=4)(nn.LayerNorm()(h))
                h = h + nn.Dense(self.d)(nn.relu(nn.Dense(2 * self.d)(nn.LayerNorm()(h))))
            return nn.Dense(10)(nn.LayerNorm()(h).mean(1))

    rng = np.random.default_rng(0)
    seq = 16 if quick else 32
    return {
        "MLP": (MLP(), lambda n: rng.normal(size=(n, 784)).astype(np.float32), 128),
        "CNN": (CNN(), lambda n: rng.normal(size=(n, 28, 28, 1)).astype(np.float32), 64),
        "Transformer": (Transformer(), lambda n: rng.integers(0, 100, size=(n, seq)).astype(jnp.int32), 32),
        "Transformer (param positions)": (Transformer(param_positions=True),
                                         lambda n: rng.integers(0, 100, size=(n, seq)).astype(jnp.int32), 32),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller models, 8 steps, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--models", default=None, help="comma-separated subset, e.g. 'MLP,CNN'")
    parser.add_argument("--name", default=None, help="results/NAME.json (default probe_overhead[_quick])")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    steps = 8 if args.quick else 20

    import jax
    import numpy as np
    import optax

    import jdl
    from jdl.diagnostics import Recorder, probe

    load_before = os.getloadavg()
    results = {}
    chosen = models(args.quick)
    if args.models:
        chosen = {k: v for k, v in chosen.items() if k in args.models.split(",")}
    for name, (model, make_x, batch) in chosen.items():
        xs = jax.device_put(np.stack([make_x(batch) for _ in range(steps)]))
        ys = jax.device_put(np.random.default_rng(1).integers(0, 10, size=(steps, batch)).astype(np.int32))
        params = model.init(jax.random.PRNGKey(0), xs[0][:1])["params"]
        tx = optax.adam(1e-3)

        def loss_fn(p, x, y):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, x), y)

        @jax.jit
        def plain_step(params, opt_state, x, y):
            loss, grads = jax.value_and_grad(lambda p: loss_fn(p, x, y).mean())(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        def probed_step(probed):
            @jax.jit
            def step(params, opt_state, x, y, i):
                loss, grads, st = probed(params, (x, y), i)
                updates, opt_state = tx.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state, loss, st

            return step

        def run_plain():
            p, o = params, tx.init(params)
            for i in range(steps):
                p, o, loss = plain_step(p, o, xs[i], ys[i])
            jax.block_until_ready(p)

        def run_probed(options):
            probed = probe(loss_fn, **options)
            step = probed_step(probed)

            def run():
                p, o = params, tx.init(params)
                recorder = Recorder(probed)
                for i in range(steps):
                    p, o, loss, st = step(p, o, xs[i], ys[i], i)
                    recorder.record(st)
                jax.block_until_ready((p, recorder._pending))

            return run

        variants = {"plain": run_plain,
                    "probe every=1": run_probed({"every": 1}),
                    "probe every=1 + activations": run_probed({"every": 1, "activations": "relu"}),
                    "probe every=10, moments": run_probed({"every": 10, "moments": True})}
        timings = compare(variants, repeats)
        ref = timings["plain"]["median_ms"]
        results[name] = {"batch": batch, "steps": steps, "parameters": int(sum(np.size(a) for a in
                                                                              jax.tree_util.tree_leaves(params))),
                         "variants": {k: {**v, "ms_per_step": v["median_ms"] / steps,
                                          "ratio_to_plain": v["median_ms"] / ref} for k, v in timings.items()}}
    report = {"goal_probe_every_1_over_plain": GOAL, "results": results,
              "machine": machine_info(jax, load_before, os.getloadavg()),
              "versions": versions(jax, __import__("flax"), __import__("optax"), jdl)}
    print(f"\n{'model':<30}{'variant':<30}{'ms/step':>9}{'x plain':>9}")
    for name, r in results.items():
        for variant, v in r["variants"].items():
            print(f"{name:<30}{variant:<30}{v['ms_per_step']:>9.2f}{v['ratio_to_plain']:>9.2f}")
    for name, r in results.items():
        ratio = r["variants"]["probe every=1"]["ratio_to_plain"]
        print(f"{name}: probe every=1 {ratio:.2f}x plain ({'meets' if ratio <= GOAL else 'MISSES'} the {GOAL}x goal)")
    print(f"1-minute load average before/after: {report['machine']['loadavg_1min_before_after']} "
          f"on {report['machine']['cpus_usable']} usable CPUs")
    path = write_json(args.name or ("probe_overhead_quick" if args.quick else "probe_overhead"), report)
    print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
