#!/usr/bin/env python
"""Per-example gradient norms: batch gradient vs vmap(grad) vs vmap of norms vs jdl's fast exact norms.

For each model (MLP 784-512-512-10 batch 128; a LeNet-style CNN on 28×28×1 batch 128; an LSTM
32 → 128 over T steps, batch 64, as jdl's SequenceClassifier (recurrent kernel by the recurrent
rule) and as flax's nn.RNN(LSTMCell) (its cell inside nn.scan falls back to vmap)) it times, alternating in one process after a warm-up:
- batch gradient: jax.grad of the mean loss of the model applied to the whole batch (what a
  training step pays),
- vmap grads: jax.vmap(jax.grad(loss)) materializing every per-example gradient,
- vmap norms: `per_example_grad_norms(method="vmap")` (norms of vmap(grad), fused by XLA),
- fast norms: `per_example_grad_norms(method="fast")` (layer algebra; vmap only where needed),
and prints medians and ratios to the batch gradient. Goal: fast norms within 1.5× of it. Data are
arguments of every compiled function (a closed-over batch would be a compile-time constant).

    python benchmarks/per_example.py [--quick] [--repeats 9]

A program, not a test: it prints a table, writes results/per_example.json, and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import compare, machine_info, versions, write_json  # noqa: E402

GOAL = 1.5


def models(quick: bool):
    import flax.linen as nn

    from jdl.models import MLP, SequenceClassifier

    class LeNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.max_pool(nn.relu(nn.Conv(6, (5, 5), padding="SAME")(x)), (2, 2), (2, 2))
            x = nn.max_pool(nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x)), (2, 2), (2, 2))
            x = x.reshape(x.shape[0], -1)
            return nn.Dense(10)(nn.relu(nn.Dense(84)(nn.relu(nn.Dense(120)(x)))))

    class LSTM(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(10)(nn.RNN(nn.LSTMCell(128))(x)[:, -1])

    steps = 20 if quick else 100
    return {
        "MLP 784-512-512-10, batch 128": (MLP(hidden=(512, 512), outputs=10), (128, 784)),
        "LeNet CNN 28x28x1, batch 128": (LeNet(), (128, 28, 28, 1)),
        f"LSTM (jdl) 32->128, T {steps}, batch 64": (SequenceClassifier(cell="lstm", units=128, outputs=10),
                                                     (64, steps, 32)),
        f"LSTM (flax nn.RNN) 32->128, T {steps}, batch 64": (LSTM(), (64, steps, 32)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a short LSTM")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)

    import jax
    import jax.numpy as jnp
    import numpy as np

    import jdl
    from jdl.diagnostics import fast_path_coverage, per_example_grad_norms

    load_before = os.getloadavg()
    rng = np.random.RandomState(0)
    report = {"goal_fast_over_batch": GOAL, "results": {}}
    for title, (model, shape) in models(args.quick).items():
        x = jnp.asarray(rng.randn(*shape), jnp.float32)
        y = jnp.asarray(rng.randint(0, 10, shape[0]))
        params = model.init(jax.random.PRNGKey(0), x[:1])["params"]

        def loss_fn(p, xi, yi, model=model):
            return -jax.nn.log_softmax(model.apply({"params": p}, xi[None])[0])[yi]

        def batch_loss(q, x, y, model=model):
            logits = model.apply({"params": q}, x)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

        batch_grad = jax.jit(jax.grad(batch_loss))
        vmap_grads = jax.jit(lambda p, x, y, loss_fn=loss_fn: jax.vmap(jax.grad(loss_fn), (None, 0, 0))(p, x, y))
        variants = {
            "batch gradient": lambda: jax.block_until_ready(batch_grad(params, x, y)),
            "vmap grads": lambda: jax.block_until_ready(vmap_grads(params, x, y)),
            "vmap norms": lambda: jax.block_until_ready(per_example_grad_norms(loss_fn, params, (x, y), method="vmap")),
            "fast norms": lambda: jax.block_until_ready(per_example_grad_norms(loss_fn, params, (x, y), method="fast")),
        }
        timings = compare(variants, repeats)
        ref = timings["batch gradient"]["median_ms"]
        fast = np.asarray(per_example_grad_norms(loss_fn, params, (x, y), method="fast"))
        slow = np.asarray(per_example_grad_norms(loss_fn, params, (x, y), method="vmap"))
        report["results"][title] = {
            "timings": timings,
            "ratio_to_batch_gradient": {k: v["median_ms"] / ref for k, v in timings.items()},
            "fast_vs_vmap_max_relative_difference": float(np.max(np.abs(fast - slow) / slow)),
            "coverage": fast_path_coverage(loss_fn, params, (x, y)),
        }
    report["machine"] = machine_info(jax, load_before, os.getloadavg())
    report["versions"] = versions(jax, __import__("flax"), jdl)

    print(f"\n{'model':<48}{'variant':<16}{'median ms':>10}{'x batch grad':>14}")
    for title, r in report["results"].items():
        for name, t in r["timings"].items():
            print(f"{title:<48}{name:<16}{t['median_ms']:>10.2f}{r['ratio_to_batch_gradient'][name]:>14.2f}")
        verdict = "meets" if r["ratio_to_batch_gradient"]["fast norms"] <= GOAL else "MISSES"
        print(f"{'':<48}fast vs vmap norms: max rel. diff {r['fast_vs_vmap_max_relative_difference']:.1e}; "
              f"{verdict} the {GOAL}x goal; vmap-path layers: {r['coverage']['vmap'] or 'none'}")
    path = write_json("per_example_quick" if args.quick else "per_example", report)
    print(f"\nwrote {path}")
    return report


if __name__ == "__main__":
    main()
