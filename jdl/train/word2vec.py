"""Training word2vec with the Trainer: tokens → vocabulary → subsampling → pairs → `Trainer.fit` → `WordVectors`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jdl import _checks, optim
from jdl.data import text as text_lib
from jdl.models.word2vec import MODES, Word2Vec, WordVectors, negative_sampling_targets
from jdl.train.trainer import Trainer


def train_word2vec(
    corpus_or_tokens: str | os.PathLike | Sequence[str],
    mode: str = "skipgram",
    embed_dim: int = 100,
    window: int = 5,
    negatives: int = 5,
    epochs: int = 5,
    batch_size: int = 1024,
    seed: int = 0,
    *,
    min_count: int = 5,
    max_size: int | None = None,
    subsample: float | None = 1e-3,
    learning_rate: float = 1e-2,
    optimizer: Any = None,
    verbose: int = 0,
) -> WordVectors:
    """Train word2vec on a shipped corpus by name ("kjv"), a text (str), a file (path) or a token list.

    Tokenize, build the vocabulary (min_count, max_size), subsample frequent words once
    (threshold `subsample`, None: off), make skip-gram pairs or CBOW examples with word2vec's
    dynamic window of radius `window`, keep a random whole number of batches of them (one epoch
    is then a single compiled `lax.scan`), and fit `Word2Vec` with binary cross-entropy on logits
    under `jdl.Trainer.fit` (adam(learning_rate) unless `optimizer` is given), noise words
    drawn on the device from count^0.75. The result's `history` and `state` hold the fit.
    """
    if isinstance(corpus_or_tokens, os.PathLike):
        tokens = text_lib.tokenize(text_lib.load_corpus(corpus_or_tokens))
    elif isinstance(corpus_or_tokens, str) and corpus_or_tokens in text_lib.corpora():
        tokens = text_lib.tokenize(text_lib.load_corpus(corpus_or_tokens))
    elif isinstance(corpus_or_tokens, str):
        tokens = text_lib.tokenize(corpus_or_tokens)
    elif isinstance(corpus_or_tokens, Sequence) and all(isinstance(t, str) for t in corpus_or_tokens):
        tokens = list(corpus_or_tokens)
    else:
        raise TypeError(f"corpus_or_tokens must be a text, a path or a sequence of str tokens, got {_checks.describe(corpus_or_tokens)}")
    _checks.check_choice(mode, "mode", MODES)
    for name, value in (("embed_dim", embed_dim), ("window", window), ("negatives", negatives),
                        ("epochs", epochs), ("batch_size", batch_size)):
        _checks.check_number(value, name, integer=True, positive=True)
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)
    _checks.check_number(learning_rate, "learning_rate", positive=True)
    if subsample is not None:
        _checks.check_number(subsample, "subsample", positive=True)

    vocabulary = text_lib.Vocabulary.build(tokens, min_count=min_count, max_size=max_size)
    ids = vocabulary.encode(tokens)
    if subsample is not None:
        ids = text_lib.subsample(ids, vocabulary.counts, subsample, seed=seed)
    if mode == "skipgram":
        center, context = text_lib.skipgram_pairs(ids, window, seed=seed)
    else:
        context, center = text_lib.cbow_examples(ids, window, seed=seed)
    if center.shape[0] == 0:
        raise ValueError(f"the corpus gives no training examples ({ids.size} tokens kept after min_count and subsampling)")
    batch_size = min(batch_size, int(center.shape[0]))
    steps = center.shape[0] // batch_size
    order = np.random.default_rng(seed).permutation(center.shape[0])[: steps * batch_size]
    center, context = center[order], context[order]
    model = Word2Vec(len(vocabulary), embed_dim, mode, negatives, noise=text_lib.noise_distribution(vocabulary.counts))
    trainer = Trainer(model, loss="binary_crossentropy", optimizer=optimizer or optim.adam(learning_rate),
                      steps_per_execution=steps)
    state, history = trainer.fit({"center": center, "context": context}, negative_sampling_targets(len(order), negatives),
                                 epochs=epochs, batch_size=batch_size, seed=seed, verbose=verbose)
    vectors = np.asarray(jax.device_get(state.params["input"]["embeddings"]))
    return WordVectors(vocabulary, vectors, history=history, state=state)
