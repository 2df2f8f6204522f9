"""Text classification: which book of the King James Bible a verse comes from, by Embedding -> Bidirectional LSTM.

The labelled data is built from the corpus that ships with jdl (`jdl.data.text.verse_books`): each
verse of Genesis, Exodus, 1 and 2 Samuel, 1 and 2 Kings becomes integer tokens (0 pads the end,
1 is a word outside the vocabulary), labelled by its book. The Keras model of the notes,

    Embedding(vocab, 32, mask_zero=True) -> Bidirectional(LSTM(32)) -> Dense(books)

is `SequenceClassifier(cell="lstm", bidirectional=True, vocab_size=..., embed_dim=32, mask_zero=True)`:
the padding is skipped by both directions. Test accuracy is compared with the majority-class
baseline (always answering the most frequent book of the training set). Last, exact per-example
gradient norms on the fast path (every layer, the reversed and masked scans included) against a
Python loop of jax.grad.

Run: python examples/18_text_classification.py [--epochs 6] [--units 32] [--quick]
"""

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jdl
from jdl.data import text
from jdl.diagnostics import fast_path_coverage, per_example_grad_norms
from jdl.models.rnn import SequenceClassifier


def split(data, test_fraction, seed, limit=None):
    """Shuffled train and test rows (the first `limit` rows of the shuffle only, when given)."""
    order = np.random.default_rng(seed).permutation(len(data.labels))[:limit]
    n_test = int(round(test_fraction * len(order)))
    return order[n_test:], order[:n_test]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=32, help="words kept per verse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1,600 verses, 16 words, 16 units, 3 epochs")
    args = parser.parse_args(argv)
    limit = None
    if args.quick:
        args.epochs, args.units, args.embed_dim, args.max_length, limit = 3, 16, 16, 16, 1600

    data = text.verse_books(max_length=args.max_length)
    train, test = split(data, 0.2, args.seed, limit)
    x, y = data.tokens[train], data.labels[train]
    x_test, y_test = data.tokens[test], data.labels[test]
    print(f"verses: {len(train)} train, {len(test)} test, {len(data.classes)} books; vocabulary {len(data.vocabulary)} "
          f"words; {args.max_length} words kept per verse")

    model = SequenceClassifier(cell="lstm", units=args.units, bidirectional=True, outputs=len(data.classes),
                               vocab_size=len(data.vocabulary), embed_dim=args.embed_dim, mask_zero=True)
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(1e-2),
                          metrics=["accuracy"])
    start = time.perf_counter()
    state, history = trainer.fit(x, y, epochs=args.epochs, batch_size=64, verbose=0, seed=args.seed)
    seconds = time.perf_counter() - start
    for epoch, loss in zip(history.epoch, history.history["loss"]):
        print(f"  epoch {epoch + 1:<3} loss {loss:.4f}")
    test_accuracy = float(trainer.evaluate(state, x_test, y_test)["accuracy"])
    majority = int(np.bincount(y, minlength=len(data.classes)).argmax())
    baseline = float(np.mean(y_test == majority))
    print(f"trained {args.epochs} epochs in {seconds:.1f} s")
    print(f"test accuracy: {test_accuracy:.4f}")
    print(f"majority-class baseline ({data.classes[majority]}): {baseline:.4f}")
    print(f"margin over the baseline: {test_accuracy - baseline:+.4f}")

    def loss_fn(params, tokens, label):
        logits = model.apply({"params": params}, tokens[None])[0]
        return -jax.nn.log_softmax(logits)[label]

    rows = (jnp.asarray(x_test[:8]), jnp.asarray(y_test[:8]))
    coverage = fast_path_coverage(loss_fn, state.params, rows)
    fast = np.asarray(per_example_grad_norms(loss_fn, state.params, rows, method="fast"))
    grad = jax.jit(jax.grad(loss_fn))
    loop = np.array([np.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree_util.tree_leaves(grad(state.params, *row))))
                     for row in zip(*rows)])
    print(f"per-example gradient norms: {len(coverage['fast'])} layers on the fast path, {len(coverage['vmap'])} by vmap")
    print(f"  fast vs a loop of jax.grad, max relative difference: {np.max(np.abs(fast - loop) / loop):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
