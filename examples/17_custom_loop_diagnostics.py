"""jdl's gradient diagnostics in your own training loop: a Flax Transformer, optax and a hand-written jax.jit step.

`jdl.diagnostics.probe(loss_fn)` replaces `jax.value_and_grad`: inside the jitted step it returns
the loss, the gradient and the statistics GradientMonitor records (per-layer gradient and
parameter norms, exact per-example gradient norms, GSNR and noise scale, activation statistics).
A `Recorder` keeps them on the device, fetches them once per epoch and writes a run directory;
`jdl report RUN_DIR` (here: the same function) renders it.

The task: sequences of 8 tokens; the label is which of the tokens 1, 2, 3 occurs most often.
A few labels are flipped: they show up among the examples with the largest gradient norms.

Run: python examples/17_custom_loop_diagnostics.py [--out runs/17_custom_loop] [--epochs 8] [--quick]
"""

import argparse
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jdl
from jdl.diagnostics import Recorder, probe, stats

VOCAB, LENGTH, CLASSES = 12, 8, 3


class Transformer(nn.Module):
    """Token and position embeddings, one pre-norm encoder block of flax attention, mean pooling, a linear head."""

    width: int = 32
    heads: int = 4
    dropout: float = 0.1

    @nn.compact
    def __call__(self, tokens, train: bool = False):
        h = nn.Embed(VOCAB, self.width, name="token_embedding")(tokens)
        h = h + self.param("position", nn.initializers.normal(0.02), (LENGTH, self.width))
        a = nn.MultiHeadDotProductAttention(num_heads=self.heads, dropout_rate=self.dropout,
                                            deterministic=not train)(nn.LayerNorm()(h))
        h = h + a
        m = nn.Dense(2 * self.width)(nn.LayerNorm()(h))
        h = h + nn.Dense(self.width)(nn.Dropout(self.dropout, deterministic=not train)(nn.relu(m)))
        return nn.Dense(CLASSES, name="head")(nn.LayerNorm()(h).mean(axis=1))


def make_data(n: int, seed: int, flip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens (n, 8), labels (n,), indices of flipped labels)."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCAB, size=(n, LENGTH)).astype(np.int32)
    counts = np.stack([(tokens == t).sum(1) for t in (1, 2, 3)], axis=1)
    labels = np.argmax(counts, axis=1).astype(np.int32)
    flipped = np.sort(rng.choice(n, size=int(round(flip * n)), replace=False))
    labels[flipped] = (labels[flipped] + rng.integers(1, CLASSES, size=len(flipped))) % CLASSES
    return tokens, labels, flipped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/17_custom_loop", help="run directory to write")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--every", type=int, default=4, help="record every k-th step")
    parser.add_argument("--flip", type=float, default=0.03, help="fraction of training labels to corrupt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="256 examples, 2 epochs (a smoke run)")
    args = parser.parse_args(argv)
    n, epochs = (256, 2) if args.quick else (args.examples, args.epochs)
    x, y, flipped = make_data(n, args.seed, args.flip)
    x_val, y_val, _ = make_data(512, args.seed + 1, 0.0)
    print(f"{n} training sequences, {len(flipped)} labels flipped; {len(x_val)} validation sequences")

    model = Transformer()
    root = jax.random.PRNGKey(args.seed)
    params = model.init(root, x[:1])["params"]
    tx = optax.adamw(3e-3, weight_decay=1e-4)
    opt_state = tx.init(params)

    def loss_fn(params, tokens, labels, key):
        """Per-example losses (n,) in training mode: what the probe differentiates."""
        logits = model.apply({"params": params}, tokens, train=True, rngs={"dropout": key})
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels)

    probed = probe(loss_fn, every=args.every, moments=True, activations="relu")

    @jax.jit
    def train_step(params, opt_state, tokens, labels, index, step):
        key = jax.random.fold_in(root, step)
        loss, grads, st = probed(params, (tokens, labels), step, key, index=index)
        updates, opt_state = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        return new_params, opt_state, loss, {**st, "update_ratio": stats.update_ratios(params, new_params)}

    @jax.jit
    def evaluate(params, tokens, labels):
        logits = model.apply({"params": params}, tokens)
        return (optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(),
                jnp.mean(jnp.argmax(logits, -1) == labels))

    recorder = Recorder(probed, top_k=10, name="17_custom_loop")
    steps_per_epoch = n // args.batch_size
    step = 0
    for epoch in range(epochs):
        order = np.random.default_rng((args.seed, epoch)).permutation(n)
        losses = []
        for b in range(steps_per_epoch):
            index = order[b * args.batch_size:(b + 1) * args.batch_size]
            params, opt_state, loss, st = train_step(params, opt_state, x[index], y[index], index, step)
            recorder.record(st)
            losses.append(loss)
            step += 1
        train_loss, train_acc = evaluate(params, x, y)
        val_loss, val_acc = evaluate(params, x_val, y_val)
        recorder.end_epoch(loss=jnp.mean(jnp.stack(losses)), accuracy=train_acc, val_loss=val_loss,
                           val_accuracy=val_acc)
        print(f"epoch {epoch + 1}/{epochs}: loss {recorder.curves[-1]['loss']:.4f}, "
              f"validation accuracy {float(val_acc):.3f}")

    out = Path(args.out)
    recorder.save(out, params=params, config={"model": "Transformer (flax MultiHeadDotProductAttention)",
                                              "optimizer": "adamw", "learning_rate": 3e-3,
                                              "batch_size": args.batch_size, "every": args.every})
    page, _ = jdl.diagnostics.report.training_report(out).save(out)
    print(f"layers in call order: {', '.join(recorder.log.layers[:4])}, ... ({len(recorder.log.layers)} in all)")
    top = recorder.log.top_examples
    hits = sum(t["index"] in set(flipped.tolist()) for t in top)
    print(f"largest per-example gradient norms: examples {[t['index'] for t in top]}; "
          f"{hits} of these {len(top)} have flipped labels (chance: {len(flipped) / n:.2f} each)")
    print(f"wrote {out}/ (monitor.json, metrics.csv, summary.json, model.json; report: {page})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
