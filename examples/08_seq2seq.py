"""Encoder-decoder (seq2seq) on digit strings: learn to reverse them (default) or to add two numbers.

An LSTM encoder reads the source string; its final state (h, c) starts an LSTM decoder trained by
teacher forcing (it reads the target shifted right behind START) with `jdl.Trainer` and
sparse categorical cross-entropy over the output steps. Luong dot attention over the encoder's
outputs is on by default (--no-attention turns it off). Held-out strings (none seen in training)
are then decoded greedily from START, one `lax.scan`, and scored by exact match: a string counts
only when every token and the END are right.

Addition is posed the way a recurrent net finds easiest: zero-padded operands ("047+628") and the
sum written least significant digit first, so each output digit's carry comes from the step before.

Run: python examples/08_seq2seq.py [--task reverse|add] [--cell lstm|gru|simple_rnn] [--no-attention]
     [--train 10240] [--epochs 2] [--units 64] [--quick]
"""

import argparse
import sys
import time

import jax
import numpy as np

import jdl
from jdl.data import sequences
from jdl.models.seq2seq import Seq2Seq


def make_data(task, n_train, n_test, seed, min_len=3, max_len=8, digits=3):
    """Training and held-out test SequenceData; test rows whose source occurs in training are dropped."""
    if task == "reverse":
        train = sequences.reverse_digits(n_train, min_len, max_len, seed=seed)
        test = sequences.reverse_digits(2 * n_test, min_len, max_len, seed=seed + 1)
    else:
        options = dict(zero_pad=True, reverse_answer=True)  # fixed digit positions, carries flow forward
        train = sequences.add_digits(n_train, digits, seed=seed, **options)
        test = sequences.add_digits(2 * n_test, digits, seed=seed + 1, **options)
    seen = {row.tobytes() for row in train.encoder_inputs}
    fresh = np.array([row.tobytes() not in seen for row in test.encoder_inputs])
    keep = np.flatnonzero(fresh)[:n_test]
    return train, sequences.SequenceData(*(a[keep] for a in test))


def run(task="reverse", cell="lstm", attention=True, n_train=10240, n_test=1000, epochs=2, units=64,
        embed_dim=32, batch_size=128, learning_rate=1e-2, seed=0):
    """Train by teacher forcing, then decode the held-out strings greedily; return what the report prints."""
    train, test = make_data(task, n_train, n_test, seed)
    model = Seq2Seq(sequences.VOCAB_SIZE, embed_dim, units, cell=cell, attention=attention,
                    max_output_length=train.targets.shape[1])
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy",
                          optimizer=jdl.optim.adam(learning_rate, clipnorm=1.0), metrics=["accuracy"])
    start = time.perf_counter()
    state, history = trainer.fit(train.inputs, train.targets, epochs=epochs, batch_size=batch_size,
                                 verbose=0, seed=seed)
    fit_seconds = time.perf_counter() - start
    teacher = trainer.evaluate(state, test.inputs, test.targets)
    start = time.perf_counter()
    predicted = np.asarray(model.generate(state.variables, test.encoder_inputs))
    decode_seconds = time.perf_counter() - start
    return {
        "task": task, "cell": cell, "attention": attention, "train": train, "test": test,
        "epochs": epochs, "batch_size": batch_size, "units": units, "embed_dim": embed_dim,
        "history": history.history, "fit_seconds": fit_seconds, "decode_seconds": decode_seconds,
        "teacher": teacher, "predicted": predicted,
        "exact": sequences.exact_match(predicted, test.targets),
        "params": sum(int(np.size(p)) for p in jax.tree_util.tree_leaves(state.params)),
    }


def report(result):
    train, test = result["train"], result["test"]
    reverse = result["task"] == "reverse"
    what = "reverse digit strings" if reverse else "add two 3-digit numbers (zero-padded; sum written backwards)"
    print(f"task: {what}; {len(train.targets)} training pairs, {len(test.targets)} held-out test pairs "
          f"(none seen in training); source length {train.encoder_inputs.shape[1]}, "
          f"target length {train.targets.shape[1]} (END included)")
    print(f"model: Seq2Seq({result['cell']}, units {result['units']}, embed {result['embed_dim']}, "
          f"attention {'Luong dot' if result['attention'] else 'off'}), {result['params']} parameters; "
          f"adam, batch {result['batch_size']}, {result['epochs']} epochs")
    history = result["history"]
    print(f"fit time {result['fit_seconds']:.1f} s (compilation included)")
    print(f"train loss (last epoch)        {history['loss'][-1]:.4f}")
    print(f"train token accuracy           {history['accuracy'][-1]:.4f}")
    print(f"test loss (teacher forcing)    {result['teacher']['loss']:.4f}")
    print(f"test token accuracy (teacher)  {result['teacher']['accuracy']:.4f}")
    print(f"greedy decoding time           {result['decode_seconds']:.2f} s")
    print(f"exact match (greedy)           {result['exact']:.4f}")
    print("\nsamples (source -> greedy output | target):")
    for i in range(min(5, len(test.targets))):
        source = sequences.to_string(test.encoder_inputs[i])
        output = sequences.to_string(result["predicted"][i])
        target = sequences.to_string(test.targets[i])
        if not reverse:  # shown most significant digit first
            output, target = output[::-1], target[::-1]
        print(f"  {source:>10} -> {output:<10} | {target:<10} {'ok' if output == target else 'WRONG'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("reverse", "add"), default="reverse")
    parser.add_argument("--cell", choices=("lstm", "gru", "simple_rnn"), default="lstm")
    parser.add_argument("--no-attention", action="store_true", help="decode from the encoder's final state only")
    parser.add_argument("--train", type=int, default=None, 
                        help="training pairs (default 10240 for reverse, 20480 for add)")
    parser.add_argument("--test", type=int, default=1000, help="held-out test pairs (default 1000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 2 for reverse, 16 for add)")
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny, fast run (1024 pairs, 1 epoch, 32 units)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.task == "reverse" else 16)
    n_train = args.train or (10240 if args.task == "reverse" else 20480)
    n_test, units = args.test, args.units
    if args.quick:
        n_train, n_test, epochs, units = 1024, 200, 1, 32
    result = run(task=args.task, cell=args.cell, attention=not args.no_attention, n_train=n_train, n_test=n_test,
                 epochs=epochs, units=units, seed=args.seed)
    report(result)


if __name__ == "__main__":
    sys.exit(main())
