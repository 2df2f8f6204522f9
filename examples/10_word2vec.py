"""word2vec on the King James Bible: skip-gram (or CBOW) with negative sampling, then nearest neighbours.

The corpus ships with jdl (six narrative books of the KJV, about 165,000 words, public domain).
Words seen fewer than 5 times are dropped, frequent words are subsampled (t = 1e-3), and each
(input, output) word pair is scored against 5 noise words drawn from count^0.75 on the device;
`jdl.Trainer.fit` minimises binary cross-entropy on the logits. Neighbours are by cosine
similarity of the learned input vectors.

Run: python examples/10_word2vec.py [--mode skipgram|cbow] [--epochs N] [--dim 64] [--window 5] [--quick]
"""

import argparse
import sys
import time

import jdl.data.text as text
from jdl.train.word2vec import train_word2vec

QUERIES = ("saul", "egypt", "bread", "gold", "priest", "wife", "king", "god", "water", "day")
PAIRS = (("saul", "david"), ("bread", "wine"), ("gold", "silver"), ("egypt", "pharaoh"), ("wife", "daughter"),
         ("saul", "gold"), ("bread", "sword"), ("egypt", "wife"), ("priest", "water"), ("gold", "day"))
DEFAULT_EPOCHS = {"skipgram": 5, "cbow": 8}


def run(mode="skipgram", epochs=None, dim=64, window=5, seed=0, quick=False):
    """Train on the shipped corpus (its first 30,000 words when quick); return the vectors and timings."""
    tokens = text.tokenize(text.load_corpus("kjv"))
    if quick:
        tokens = tokens[:30000]
    epochs = epochs or (2 if quick else DEFAULT_EPOCHS[mode])
    start = time.perf_counter()
    vectors = train_word2vec(tokens, mode=mode, embed_dim=dim, window=window, negatives=5, epochs=epochs,
                             batch_size=1024, seed=seed,
                             min_count=3 if quick else 5, learning_rate=1e-2)
    return {"tokens": len(tokens), "vectors": vectors, "seconds": time.perf_counter() - start, "epochs": epochs}


def report(result, mode, dim, window):
    vectors = result["vectors"]
    history = vectors.history
    print(f"corpus: kjv, {result['tokens']} words; vocabulary {len(vectors)} words (min_count); "
          f"{history.params['samples']} {mode} examples per epoch")
    print(f"model: Word2Vec({mode}, dim {dim}, window {window}, 5 negatives); adam(1e-2), "
          f"batch {history.params['batch_size']}; {result['epochs']} epochs in {result['seconds']:.1f} s")
    print("\nloss by epoch (binary cross-entropy, mean over 1 true + 5 noise words)")
    for epoch, loss in zip(history.epoch, history.history["loss"]):
        print(f"  epoch {epoch + 1:<3} {loss:.4f}")
    print("\nnearest neighbours (cosine similarity)")
    for word in QUERIES:
        if word not in vectors:
            print(f"  {word:<8} (not in the vocabulary)")
            continue
        neighbours = ", ".join(f"{w} {s:.2f}" for w, s in vectors.most_similar(word, k=5))
        print(f"  {word:<8} -> {neighbours}")
    print("\nsimilarity of related pairs (first five) and unrelated pairs (last five)")
    for a, b in PAIRS:
        if a in vectors and b in vectors:
            print(f"  similarity {a + '/' + b:<16} {vectors.similarity(a, b):.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("skipgram", "cbow"), default="skipgram")
    parser.add_argument("--epochs", type=int, default=None, help="default 5 for skip-gram, 8 for CBOW")
    parser.add_argument("--dim", type=int, default=64, help="vector size (default 64)")
    parser.add_argument("--window", type=int, default=5, help="window radius (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny run: the first 30,000 words, 2 epochs, dim 16")
    args = parser.parse_args(argv)
    dim = 16 if args.quick else args.dim
    result = run(args.mode, args.epochs, dim, args.window, args.seed, args.quick)
    report(result, args.mode, dim, args.window)


if __name__ == "__main__":
    sys.exit(main())
