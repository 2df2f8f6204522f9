"""Two inputs and two heads (L = J1 + J2), then transfer learning: freeze a trunk, replace the head.

Part 1, the notes' functional-API model: inputs a (11,) and b (5,), Dense 16 relu, a softmax(4)
head and a linear(1) head, on generated data. The cost is L = J_class + w·J_value; the history
reports each head's cost per epoch and the script checks the total against them.

Part 2, transfer: an MLP trunk (64 → 32) with a 5-class head learns digits 0-4 and is saved
with ModelCheckpoint. A new model with the same trunk and a new head for digits 5-9 gets the
trunk's parameters (`transplant`) and is fine-tuned on a few examples per class with the trunk
frozen (`adam(freeze=["trunk"])`); it is compared with the same model trained from scratch.

Run: python examples/12_multitask_and_transfer.py [--per-class 10] [--out runs/transfer] [--quick]
"""

import argparse
import os
import sys
import tempfile

import jax
import numpy as np

import jdl
from jdl.models.mlp import MLP
from jdl.models.multitask import TwoInputTwoHead
from jdl.models.transfer import TrunkHead, transplant
from jdl.train.checkpoint import load_params


def generated_data(n, seed, task_seed=0):
    """a (n, 11), b (n, 5); class = argmax of 4 linear scores of a; value = b·u + sin(2 b_0) + noise.

    The scores' weights come from `task_seed` (one task); the examples and the noise from `seed`.
    """
    weights = np.random.default_rng(task_seed).normal(size=(11, 4))
    rng = np.random.default_rng(seed + 1000)
    a = rng.normal(size=(n, 11)).astype(np.float32)
    b = rng.normal(size=(n, 5)).astype(np.float32)
    scores = a @ weights
    value = b[:, 1:4] @ np.array([1.0, -0.5, 0.25]) + np.sin(2 * b[:, 0]) + 0.1 * rng.normal(size=n)
    return {"a": a, "b": b}, {"class": np.argmax(scores, axis=1).astype(np.int32), "value": value[:, None].astype(np.float32)}


def multitask(epochs, n, seed, value_weight=0.5):
    x, y = generated_data(n, seed)
    x_test, y_test = generated_data(1000, seed + 1)
    trainer = jdl.Trainer(TwoInputTwoHead(), loss={"class": "sparse_categorical_crossentropy", "value": "mse"},
                          loss_weights={"class": 1.0, "value": value_weight}, optimizer=jdl.optim.adam(3e-3),
                          metrics={"class": ["accuracy"], "value": ["mae"]})
    state, history = trainer.fit(x, y, epochs=epochs, batch_size=32, verbose=0, seed=seed)
    h = history.history
    print(f"part 1: two inputs a (11,), b (5,); heads class (4, softmax) and value (1, linear); {n} examples")
    print(f"L = J_class + {value_weight} * J_value (epoch means over the batches)\n")
    print(f"{'epoch':>5}{'loss':>10}{'class_loss':>12}{'value_loss':>12}{'J1+w*J2':>10}{'class_acc':>11}")
    gap = 0.0
    for e in range(len(history.epoch)):
        total = h["class_loss"][e] + value_weight * h["value_loss"][e]
        gap = max(gap, abs(total - h["loss"][e]))
        if e < 3 or e == len(history.epoch) - 1 or (e + 1) % max(1, epochs // 5) == 0:
            print(f"{e + 1:>5}{h['loss'][e]:>10.4f}{h['class_loss'][e]:>12.4f}{h['value_loss'][e]:>12.4f}"
                  f"{total:>10.4f}{h['class_accuracy'][e]:>11.4f}")
    print(f"\nmax |loss - (J1 + w*J2)| over epochs  {gap:.2e}")
    scores = trainer.evaluate(state, x_test, y_test)
    print(f"test class accuracy                  {scores['class_accuracy']:.4f}")
    print(f"test value MSE                       {scores['value_loss']:.4f}")
    print(f"test value variance                  {float(np.var(y_test['value'])):.4f}  (the MSE of predicting the mean)")


def digits_subset(x, y, classes, per_class=None, seed=0):
    rng = np.random.default_rng(seed)
    picks = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        picks.append(rng.permutation(idx)[:per_class] if per_class else idx)
    idx = np.sort(np.concatenate(picks))
    return x[idx], (y[idx] - classes[0]).astype(np.int32)


def transfer(out, per_class, source_epochs, target_epochs, seed):
    data = jdl.data.load("digits", seed=seed)
    old = list(range(5)), list(range(5, 10))
    x_src, y_src = digits_subset(data.x_train, data.y_train, old[0])
    x_tgt, y_tgt = digits_subset(data.x_train, data.y_train, old[1], per_class, seed)
    x_eval, y_eval = digits_subset(data.x_test, data.y_test, old[1])

    def model():
        return TrunkHead(trunk=MLP(hidden=(64,), outputs=32), head=MLP(hidden=(), outputs=5))

    source = jdl.Trainer(model(), loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(2e-3), metrics=["accuracy"])
    checkpoints = os.path.join(out, "source_checkpoints")
    source_state, _ = source.fit(x_src, y_src, epochs=source_epochs, batch_size=32, verbose=0, seed=seed,
                                 callbacks=[jdl.callbacks.ModelCheckpoint(checkpoints, monitor="loss", save_best_only=True,
                                                                          max_to_keep=1)])
    x_src_test, y_src_test = digits_subset(data.x_test, data.y_test, old[0])
    source_accuracy = source.evaluate(source_state, x_src_test, y_src_test)["accuracy"]
    print(f"\npart 2: transfer. source task digits 0-4: {len(x_src)} training images, {source_epochs} epochs; "
          f"test accuracy {source_accuracy:.4f}")
    print(f"target task digits 5-9: {len(x_tgt)} training images ({per_class} per class), "
          f"{len(x_eval)} test images, {target_epochs} epochs each\n")
    trunk_params = load_params(checkpoints)

    rows = []
    for name, freeze, reuse in (("transplanted trunk, frozen", ["trunk"], True),
                                ("transplanted trunk, fine-tuned", [], True),
                                ("from scratch", [], False)):
        trainer = jdl.Trainer(model(), loss="sparse_categorical_crossentropy",
                              optimizer=jdl.optim.adam(2e-3, freeze=freeze), metrics=["accuracy"])
        state = trainer.init(x_tgt, seed=seed + 1)
        if reuse:
            state = state.replace(params=transplant(state.params, trunk_params, ["trunk"]))
        before = jax.tree.map(np.asarray, state.params["trunk"])
        state, history = trainer.fit(x_tgt, y_tgt, epochs=target_epochs, batch_size=10, verbose=0, seed=seed, state=state)
        same = all(np.array_equal(a, np.asarray(b)) for a, b in
                   zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(state.params["trunk"])))
        scores = trainer.evaluate(state, x_eval, y_eval)
        rows.append((name, history.history["loss"][-1], scores["loss"], scores["accuracy"], same))
    print(f"{'model':<32}{'train loss':>11}{'test loss':>11}{'test acc':>10}  trunk unchanged")
    for name, train_loss, test_loss, accuracy, same in rows:
        print(f"{name:<32}{train_loss:>11.4f}{test_loss:>11.4f}{accuracy:>10.4f}  {'yes' if same else 'no'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=10, help="target-task training images per class (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="directory for the source model's checkpoints (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="a tiny, fast run")
    args = parser.parse_args(argv)
    epochs = (4, 3, 20) if args.quick else (30, 20, 60)
    multitask(epochs[0], 256 if args.quick else 2000, args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or scratch
        transfer(out, args.per_class, epochs[1], epochs[2], args.seed)


if __name__ == "__main__":
    sys.exit(main())
