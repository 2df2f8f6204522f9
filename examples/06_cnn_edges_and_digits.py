"""Convolution by hand (the vertical-edge kernel, padding, stride, pooling), then a CNN on the digits.

Part 1 reproduces the lecture: a 6×6 image (left half 0, right half 255, scaled by 1/255)
cross-correlated with the vertical-edge kernel [[1,0,-1],[2,0,-2],[1,0,-1]] gives a 4×4 map whose
every row is [0, -4, -4, 0]; padding 1 keeps 6×6; the output size is floor((n + 2p - f)/s) + 1.
Part 2 trains jdl.models.CNN (conv 32 3×3 same → relu → max pool 2 → conv 64 3×3 same → relu →
max pool 2 → dense 128 → 10) on the 8×8 digits with Adam and reports the test accuracy.
`--mnist DIR` trains LeNet on MNIST read from DIR instead (if only the 10 000-image test split is
there, it is split 80/20 into training and test sets).

Run: python examples/06_cnn_edges_and_digits.py [--epochs 30] [--quick] [--mnist DIR]
"""

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jdl
from jdl.models.cnn import CNN, LeNet
from jdl.nn.conv import AvgPool, Conv2D, MaxPool, MinPool, output_size

EDGE = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)


def show(name, matrix):
    print(name)
    for row in np.asarray(matrix):
        print("  " + " ".join(f"{v:6.2f}" for v in row))


def by_hand():
    """The lecture's convolution, padding and pooling, through jdl's layers with the kernel set by hand."""
    image = np.zeros((6, 6), np.float32)
    image[:, 3:] = 255
    x = (image / 255)[None, :, :, None]
    params = {"params": {"kernel": jnp.asarray(EDGE)[:, :, None, None], "bias": jnp.zeros(1)}}
    show("image (6×6, /255):", x[0, :, :, 0])
    show("vertical-edge kernel:", EDGE)
    valid = Conv2D(1, 3).apply(params, x)[0, :, :, 0]
    show(f"valid convolution, stride 1 -> {valid.shape[0]}×{valid.shape[1]} (every row 0 -4 -4 0):", valid)
    padded = Conv2D(1, 3, padding=1).apply(params, x)[0, :, :, 0]
    show(f"padding 1 -> {padded.shape[0]}×{padded.shape[1]}:", padded)
    strided = Conv2D(1, 3, strides=2, padding=1).apply(params, x)
    print(f"padding 1, stride 2 -> {strided.shape[1]}×{strided.shape[2]}")

    print("\noutput size floor((n + 2p - f)/s) + 1 against jdl's Conv2D:")
    print(f"  {'n':>3} {'f':>3} {'p':>3} {'s':>3} {'formula':>8} {'Conv2D':>7}")
    for n, f, p, s in [(6, 3, 0, 1), (6, 3, 1, 1), (7, 3, 1, 2), (28, 5, 2, 1), (32, 3, 0, 1), (39, 3, 0, 2)]:
        shape = jax.eval_shape(lambda v: Conv2D(1, f, strides=s, padding=p).init_with_output(jax.random.key(0), v)[0],
                               jax.ShapeDtypeStruct((1, n, n, 1), jnp.float32)).shape
        print(f"  {n:>3} {f:>3} {p:>3} {s:>3} {output_size(n, f, p, s):>8} {shape[1]:>7}")

    grid = np.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]], np.float32)[None, :, :, None]
    show("\npooling input (4×4):", grid[0, :, :, 0])
    for name, layer in (("max", MaxPool(2)), ("average", AvgPool(2)), ("min", MinPool(2))):
        show(f"{name} pooling 2×2, stride 2 (Keras default) -> 2×2:", layer(grid)[0, :, :, 0])
    print(f"max pooling 3×3, stride 1 -> {MaxPool(3, strides=1)(grid).shape[1]}×{MaxPool(3, strides=1)(grid).shape[2]}")


def digits_data(seed):
    data = jdl.data.load("digits", seed=seed)
    side = int(np.sqrt(data.x_train.shape[1]))
    return (data.x_train.reshape(-1, side, side, 1), data.y_train, data.x_test.reshape(-1, side, side, 1),
            data.y_test, "digits (8×8, 16 grey levels)")


def mnist_data(path, seed):
    try:
        data = jdl.data.load("mnist", path=path)
        return data.x_train, data.y_train, data.x_test, data.y_test, "MNIST"
    except FileNotFoundError:
        data = jdl.data.load("mnist", path=path, split="test")
        train, test = jdl.data.split(data.x_test, data.y_test, fractions=(0.8, 0.2), seed=seed)
        return train.x, train.y, test.x, test.y, "MNIST test split, 80/20"


def train(x_train, y_train, x_test, y_test, model, epochs, batch_size, seed):
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(1e-3),
                          metrics=["accuracy"])
    start = time.perf_counter()
    state, history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0, seed=seed)
    seconds = time.perf_counter() - start
    scores = trainer.evaluate(state, x_test, y_test)
    params = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(state.params))
    return history.history, scores, seconds, params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a tiny, fast run (a narrow CNN, 5 epochs on the first 1024 training images)")
    parser.add_argument("--mnist", metavar="DIR", help="train LeNet on MNIST read from DIR (IDX or npz files)")
    args = parser.parse_args(argv)

    by_hand()
    if args.mnist:
        x_train, y_train, x_test, y_test, name = mnist_data(args.mnist, args.seed)
        model, label = LeNet(), "LeNet: conv 6 5×5 same, pool 2, conv 16 5×5, pool 2, dense 120, 84, 10 (relu)"
    else:
        x_train, y_train, x_test, y_test, name = digits_data(args.seed)
        if args.quick:  # 32 full batches: no remainder batch to compile
            x_train, y_train = x_train[:1024], y_train[:1024]
        width = (8, 16, 32) if args.quick else (32, 64, 128)
        model = CNN(conv=((width[0], 3, "same"), (width[1], 3, "same")), pool=2, dense=(width[2],), outputs=10)
        label = (f"CNN: conv {width[0]} 3×3 same, relu, max pool 2, conv {width[1]} 3×3 same, relu, max pool 2, "
                 f"dense {width[2]}, 10")
    epochs = 5 if args.quick else args.epochs
    print(f"\n{name}: {len(x_train)} training and {len(x_test)} test images of shape {x_train.shape[1:]}")
    print(f"model: {label}; adam(1e-3), batch {args.batch_size}, {epochs} epochs")
    history, scores, seconds, params = train(x_train, y_train, x_test, y_test, model, epochs, args.batch_size, args.seed)
    print(f"parameters    {params}")
    print(f"fit seconds   {seconds:.1f}")
    print(f"first loss    {history['loss'][0]:.4f}")
    print(f"final loss    {history['loss'][-1]:.4f}")
    print(f"train accuracy {history['accuracy'][-1]:.4f}")
    print(f"test loss     {float(scores['loss']):.4f}")
    print(f"test accuracy {float(scores['accuracy']):.4f}")


if __name__ == "__main__":
    sys.exit(main())
