"""A small BERT-style Transformer encoder learns "is the first token repeated later in the sequence?".

Sequences of 6 to 12 tokens (ids 1..15, padded with 0 to length 12) are labelled 1 when their
first token occurs again among the others, 0 otherwise; the two classes are balanced and every
token other than the repeats is drawn uniformly, so no single position or token count gives the
answer: the model has to compare the first token with every other one, which is what attention
does. jdl.models.TransformerClassifier prepends a learned [CLS] token, masks the padding out of
every attention and classifies from the [CLS] vector. After training it prints the test accuracy
and, for a test sequence, the attention of the first token and of [CLS] as a text heatmap.

Run: python examples/09_transformer.py [--epochs 8] [--train 4096] [--seed 0] [--quick]
"""

import argparse
import sys
import time

import numpy as np

import jdl
from jdl.models.transformer import TransformerClassifier, attention_maps

VOCAB = 16  # token ids 1..15; 0 is padding
SHADES = " .:-=+*#%@"


def make_data(n, max_length=12, min_length=6, seed=0):
    """n balanced examples: tokens (n, max_length) padded with 0, labels (n,) = first token repeated later."""
    rng = np.random.default_rng(seed)
    tokens = np.zeros((n, max_length), np.int32)
    labels = np.arange(n) % 2
    rng.shuffle(labels)
    for i in range(n):
        length = rng.integers(min_length, max_length + 1)
        first = rng.integers(1, VOCAB)
        others = rng.integers(1, VOCAB - 1, size=length - 1)
        others = others + (others >= first)  # every other token differs from the first
        if labels[i]:
            repeats = rng.choice(length - 1, size=rng.integers(1, 3), replace=False)
            others[repeats] = first
        tokens[i, 0], tokens[i, 1:length] = first, others
    return tokens, labels.astype(np.int32)


def check_labels(tokens, labels):
    """The labels recomputed by a plain loop (the task's definition)."""
    expected = [int(row[0] in [t for t in row[1:] if t != 0]) for row in tokens]
    return np.array_equal(expected, labels)


def heatmap(weights):
    """One character per weight: ' ' for 0 up to '@' for the row's largest weight."""
    top = max(float(np.max(weights)), 1e-12)
    return "".join(SHADES[min(int(w / top * (len(SHADES) - 1) + 0.5), len(SHADES) - 1)] for w in weights)


def run(epochs=8, n_train=4096, n_test=2000, embed_dim=32, num_layers=2, seed=0, verbose=0):
    """Train the classifier; return a dict of everything the report prints."""
    x_train, y_train = make_data(n_train, seed=seed)
    x_test, y_test = make_data(n_test, seed=seed + 1000)
    model = TransformerClassifier(vocab_size=VOCAB, max_length=12, embed_dim=embed_dim, num_heads=2,
                                  ff_dim=2 * embed_dim, num_layers=num_layers, outputs=2, dropout=0.0, pad_id=0)
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(3e-3),
                          metrics=["accuracy"])
    start = time.perf_counter()
    state, history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=verbose, seed=seed)
    seconds = time.perf_counter() - start
    scores = trainer.evaluate(state, x_test, y_test)
    example = int(np.flatnonzero(y_test == 1)[0])
    maps = attention_maps(model, state.params, x_test[example:example + 1])
    return {"model": model, "history": history.history, "seconds": seconds, "test": scores,
            "labels_ok": check_labels(x_test, y_test) and check_labels(x_train, y_train),
            "balance": float(np.mean(y_train)), "tokens": x_test[example], "maps": [np.asarray(m[0]) for m in maps]}


def report(result):
    model, history = result["model"], result["history"]
    print(f"task: is the first token repeated later? lengths 6-12 padded to 12, tokens 1..{VOCAB - 1}; "
          f"positive fraction {result['balance']:.3f}; labels match the definition: {result['labels_ok']}")
    print(f"model: TransformerClassifier(embed_dim={model.embed_dim}, heads={model.num_heads}, "
          f"ff_dim={model.ff_dim}, layers={model.num_layers}), [CLS] + pre-LN encoder; adam(3e-3), batch 64")
    print(f"epochs: {len(history['loss'])}; {result['seconds']:.1f} s")
    print(f"first epoch loss {history['loss'][0]:.4f}")
    print(f"final train loss {history['loss'][-1]:.4f}")
    print(f"final train accuracy {history['accuracy'][-1]:.4f}")
    print(f"test loss {result['test']['loss']:.4f}")
    print(f"test accuracy {result['test']['accuracy']:.4f}")

    tokens, maps = result["tokens"], result["maps"]
    length = int(np.count_nonzero(tokens))
    names = ["CLS"] + [str(t) if t else "pad" for t in tokens]
    repeats = [i + 1 for i in range(1, length) if tokens[i] == tokens[0]]
    print(f"\nattention maps for the test sequence {tokens[:length].tolist()} (label 1; the first token "
          f"{tokens[0]} is repeated at key positions {repeats}, [CLS] is key 0)")
    print("          keys: " + " ".join(f"{n:>4}" for n in names))
    for layer, weights in enumerate(maps):
        for query, label in ((1, "first token"), (0, "[CLS]")):
            for head in range(weights.shape[0]):
                row = weights[head, query]
                print(f"layer {layer} head {head} {label:<11} |{heatmap(row)}|  "
                      + " ".join(f"{w:.2f}" for w in row))
    print("('@' marks each row's largest weight; padding keys get weight 0.00)")
    mass = [float(weights[:, 1, repeats].sum(axis=-1).max()) for weights in maps]
    print("first token's largest attention mass on its repeats, by layer: " + " ".join(f"{m:.2f}" for m in mass)
          + f" (uniform over the {length + 1} real keys: {len(repeats) / (length + 1):.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train", type=int, default=4096, help="training examples (default 4096, 64 batches)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny, fast run (512 examples, 3 epochs, width 16, one layer)")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2))
    args = parser.parse_args(argv)
    start, cpu = time.perf_counter(), time.process_time()
    if args.quick:
        result = run(epochs=3, n_train=512, n_test=256, embed_dim=16, num_layers=1, seed=args.seed,
                     verbose=args.verbose)
    else:
        result = run(epochs=args.epochs, n_train=args.train, seed=args.seed, verbose=args.verbose)
    report(result)
    print(f"\ntotal {time.perf_counter() - start:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
          "(compilation included, imports excluded)")


if __name__ == "__main__":
    sys.exit(main())
