"""Find mislabeled examples by their per-example gradient norms.

Flip the labels of 2% of the digits training set, train an MLP for a few epochs, then compute
every training example's exact gradient norm ‖∇θ ℓ(θ; x_i, y_i)‖ with
`jdl.diagnostics.per_example_grad_norms` (the fast path: no per-example gradient is ever
materialized). A clean example the model has learned has a small gradient; an example whose label
contradicts what the model learned from its neighbours keeps a large one. Print how many of the
flipped examples are among the k largest norms (precision and recall at k = number flipped), and
compare the cost of the fast norms with vmap(grad).

Run: python examples/14_per_example_gradients.py [--flip 0.02] [--epochs 15] [--quick]
"""

import argparse
import sys
import time

import jax
import numpy as np

import jdl
from jdl.diagnostics import per_example_grad_norms, per_example_grads


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flip", type=float, default=0.02, help="fraction of training labels to corrupt")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="3 epochs (a smoke run)")
    args = parser.parse_args(argv)
    epochs = 3 if args.quick else args.epochs

    data = jdl.data.load("digits")
    x, y_clean = data.x_train.astype(np.float32), data.y_train.astype(np.int32)
    rng = np.random.default_rng(args.seed)
    flipped = np.sort(rng.choice(len(x), size=max(1, int(round(args.flip * len(x)))), replace=False))
    y = y_clean.copy()
    y[flipped] = (y[flipped] + rng.integers(1, 10, size=len(flipped))) % 10
    print(f"digits: {len(x)} training images, {len(flipped)} labels flipped ({100 * len(flipped) / len(x):.1f}%)")

    model = jdl.models.MLP(hidden=(128,), outputs=10)
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(1e-3),
                          metrics=["accuracy"])
    state, history = trainer.fit(x, y, epochs=epochs, batch_size=32, verbose=0, seed=args.seed)
    print(f"trained {epochs} epochs: train accuracy on the noisy labels {history.history['accuracy'][-1]:.4f}, "
          f"test accuracy {trainer.evaluate(state, data.x_test, data.y_test)['accuracy']:.4f}")

    def loss_fn(params, xi, yi):
        return jdl.losses.sparse_categorical_crossentropy(yi[None], model.apply({"params": params}, xi[None]))

    norms = np.asarray(per_example_grad_norms(loss_fn, state.params, (x, y)))
    k = len(flipped)
    top = np.argsort(-norms)[:k]
    found = np.intersect1d(top, flipped)
    print(f"\nthe {k} largest per-example gradient norms hold {len(found)} of the {k} flipped labels: "
          f"precision@{k} = recall@{k} = {len(found) / k:.3f} (chance: {k / len(x):.3f})")
    top2 = np.argsort(-norms)[: 2 * k]
    print(f"the {2 * k} largest hold {len(np.intersect1d(top2, flipped))} of them "
          f"(recall@{2 * k} = {len(np.intersect1d(top2, flipped)) / k:.3f})")
    print(f"median norm: flipped {np.median(norms[flipped]):.3f}, clean {np.median(np.delete(norms, flipped)):.3f}")
    print("\nlargest norms: index, given label -> true label, norm")
    for i in top[:8]:
        mark = "flipped" if i in flipped else ""
        print(f"  {i:5d}   {y[i]} -> {y_clean[i]}   {norms[i]:8.3f}  {mark}")

    timings = {}
    for name, fn in (("fast norms", lambda: per_example_grad_norms(loss_fn, state.params, (x, y))),
                     ("vmap norms", lambda: per_example_grad_norms(loss_fn, state.params, (x, y), method="vmap")),
                     ("vmap(grad)", lambda: per_example_grads(loss_fn, state.params, (x, y)))):
        jax.block_until_ready(fn())
        start = time.perf_counter()
        jax.block_until_ready(fn())
        timings[name] = 1e3 * (time.perf_counter() - start)
    print("\ntime over the whole training set: " + ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items()))


if __name__ == "__main__":
    sys.exit(main())
