"""Text for word embeddings and classifiers: shipped corpora, tokenizing, a vocabulary, word2vec
training examples, and a labelled task (which book a verse comes from).

Everything runs in NumPy on the host, vectorised, and every random choice comes from
`np.random.default_rng(seed)`, so the same seed gives the same examples.
"""

from __future__ import annotations

import collections
import difflib
import gzip
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jdl import _checks

CORPUS_DIR = Path(__file__).resolve().parent / "corpus"
DEFAULT_CORPUS = "kjv"
WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


# -- corpora ---------------------------------------------------------------------------------------


def corpora() -> list[str]:
    """Names of the corpora shipped with jdl (see jdl/data/corpus/README.md)."""
    names = set()
    for path in CORPUS_DIR.glob("*.txt*"):
        if path.name.endswith((".txt", ".txt.gz")):
            names.add(path.name.split(".txt")[0])
    return sorted(names)


def load_corpus(name: str | os.PathLike | None = None) -> str:
    """The text of a shipped corpus by name (None: "kjv"), or of a UTF-8 file (.txt or .txt.gz) by path."""
    if name is None:
        name = DEFAULT_CORPUS
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a corpus name, a path or None, got {_checks.describe(name)}")
    path = Path(name)
    if isinstance(name, str) and name in corpora():
        path = next(p for p in (CORPUS_DIR / f"{name}.txt", CORPUS_DIR / f"{name}.txt.gz") if p.exists())
    elif not path.is_file():
        raise ValueError(f"name must be a shipped corpus {corpora()} or an existing text file, got {str(name)!r}")
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return handle.read()


def tokenize(text: str) -> list[str]:
    """Lower-cased words of `text`: runs of letters and digits, inner apostrophes kept ("israel's")."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {_checks.describe(text)}")
    return WORD.findall(text.lower())


# -- vocabulary ------------------------------------------------------------------------------------


class Vocabulary:
    """Words <-> ids, most frequent first (ties alphabetical), after `specials` (ids 0, 1, ...).

    counts[i] is the corpus count of word i (0 for specials); frequencies = counts / Σ counts.
    """

    def __init__(self, words: Sequence[str], counts: Sequence[int], specials: Sequence[str] = ()) -> None:
        words, specials = list(words), list(specials)
        for label, group in (("words", words), ("specials", specials)):
            for word in group:
                if not isinstance(word, str):
                    raise TypeError(f"{label} must hold str, got {_checks.describe(word)}")
        counts = np.asarray(counts, np.int64)
        if counts.shape != (len(words),):
            raise ValueError(f"counts must have one entry per word ({len(words)}), got shape {counts.shape}")
        if np.any(counts < 0):
            raise ValueError(f"counts must be >= 0, got minimum {int(counts.min())}")
        self.specials = tuple(specials)
        self.words = tuple(specials) + tuple(words)
        if len(set(self.words)) != len(self.words):
            repeated = [w for w, c in collections.Counter(self.words).items() if c > 1][:5]
            raise ValueError(f"words and specials must be distinct, got repeats {repeated}")
        self.counts = np.concatenate([np.zeros(len(specials), np.int64), counts])
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def build(cls, tokens: Iterable[str], min_count: int = 1, max_size: int | None = None,
              specials: Sequence[str] = ()) -> Vocabulary:
        """The vocabulary of words seen at least `min_count` times, the `max_size` most frequent."""
        if isinstance(tokens, str):
            raise TypeError("tokens must be a sequence of words (use tokenize(text)), got a str")
        _checks.check_number(min_count, "min_count", integer=True, positive=True)
        if max_size is not None:
            _checks.check_number(max_size, "max_size", integer=True, positive=True)
        counter = collections.Counter(tokens)
        kept = sorted(((w, c) for w, c in counter.items() if c >= min_count), key=lambda wc: (-wc[1], wc[0]))
        if max_size is not None:
            kept = kept[:max_size]
        if not kept:
            most = max(counter.values()) if counter else 0
            raise ValueError(f"min_count={min_count} leaves no word (the most frequent word occurs {most} times)")
        return cls([w for w, _ in kept], [c for _, c in kept], specials)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} words, {int(self.counts.sum())} tokens)"

    @property
    def frequencies(self) -> np.ndarray:
        """counts / Σ counts: (len(self),) float64."""
        return self.counts / max(int(self.counts.sum()), 1)

    def id(self, word: str) -> int:
        """The id of `word`; KeyError naming it (and close words) when unknown."""
        try:
            return self.index[word]
        except (KeyError, TypeError):
            raise KeyError(self.unknown_message(word)) from None

    def unknown_message(self, word: Any) -> str:
        close = difflib.get_close_matches(word, self.words, n=3) if isinstance(word, str) else []
        hint = f"; close: {', '.join(close)}" if close else ""
        return f"{word!r} is not in the vocabulary ({len(self)} words){hint}"

    def encode(self, tokens: Iterable[str], unknown: str | int = "drop") -> np.ndarray:
        """ids (n,) int32 of `tokens`; unknown words are dropped ("drop"), an error ("error") or a given id."""
        if isinstance(tokens, str):
            raise TypeError("tokens must be a sequence of words (use tokenize(text)), got a str")
        if isinstance(unknown, str):
            _checks.check_choice(unknown, "unknown", ("drop", "error"))
        else:
            _checks.check_number(unknown, "unknown", integer=True, nonnegative=True)
            if unknown >= len(self):
                raise ValueError(f"unknown must be a valid id in [0, {len(self) - 1}], got {unknown}")
        get = self.index.get
        if unknown == "drop":
            ids = [i for i in map(get, tokens) if i is not None]
        elif unknown == "error":
            ids = [self.id(t) for t in tokens]
        else:
            ids = [get(t, unknown) for t in tokens]
        return np.asarray(ids, np.int32)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The words of `ids`."""
        ids = np.asarray(list(ids) if not hasattr(ids, "shape") else ids)
        if ids.size and ids.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must be in [0, {len(self) - 1}], got values from {ids.min()} to {ids.max()}")
        return [self.words[i] for i in ids.reshape(-1)]


# -- a labelled task: the book of a verse -----------------------------------------------------------

KJV_BOOKS: tuple[tuple[str, int], ...] = (
    ("Genesis", 1533), ("Exodus", 1213), ("1 Samuel", 810), ("2 Samuel", 695), ("1 Kings", 816), ("2 Kings", 719))
"""The books of the shipped "kjv" corpus in order, with their verse counts (one verse per line)."""

PAD, UNKNOWN = "<pad>", "<unk>"


class LabelledText(NamedTuple):
    """tokens (n, max_length) int32 (0: padding after the verse, 1: a word outside the vocabulary),
    lengths (n,) int32 (tokens before the padding), labels (n,) int32, the vocabulary, and the class names."""

    tokens: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    vocabulary: Vocabulary
    classes: tuple[str, ...]


def kjv_verses() -> dict[str, list[str]]:
    """{book: its verses, in order} of the shipped "kjv" corpus, split by `KJV_BOOKS`' verse counts."""
    lines = load_corpus("kjv").splitlines()
    if len(lines) != sum(count for _, count in KJV_BOOKS):
        raise ValueError(f"the kjv corpus must have {sum(c for _, c in KJV_BOOKS)} verses, got {len(lines)} lines")
    books, start = {}, 0
    for name, count in KJV_BOOKS:
        books[name] = lines[start:start + count]
        start += count
    return books


def verse_books(books: Sequence[str] | None = None, max_length: int = 32, max_vocabulary: int | None = 4000,
                min_count: int = 2) -> LabelledText:
    """Which book a verse comes from: each verse of the chosen books (None: all six) as tokens, labelled by its book.

    Words are `tokenize`d; the vocabulary is the `max_vocabulary` words seen at least `min_count`
    times in the chosen books, after "<pad>" (id 0) and "<unk>" (id 1). A verse keeps its first
    max_length words. Verses in corpus order; labels index `classes` (the books, in corpus order).
    """
    verses = kjv_verses()
    if books is None:
        books = list(verses)
    if isinstance(books, str) or not isinstance(books, Sequence) or not books:
        raise TypeError(f"books must be a non-empty list of book names {list(verses)}, got {_checks.describe(books)}")
    for book in books:
        if book not in verses:
            close = difflib.get_close_matches(str(book), list(verses), n=2)
            raise ValueError(f"books must name books of the kjv corpus {list(verses)}, got {book!r}"
                             + (f"; close: {', '.join(close)}" if close else ""))
    if len(set(books)) != len(books):
        raise ValueError(f"books must be distinct, got {list(books)}")
    _checks.check_number(max_length, "max_length", integer=True, positive=True)
    classes = tuple(name for name, _ in KJV_BOOKS if name in books)
    words = [(label, tokenize(verse)) for label, book in enumerate(classes) for verse in verses[book]]
    vocabulary = Vocabulary.build((w for _, ws in words for w in ws), min_count=min_count, max_size=max_vocabulary,
                                  specials=(PAD, UNKNOWN))
    tokens = np.zeros((len(words), max_length), np.int32)
    lengths = np.zeros(len(words), np.int32)
    for row, (_, ws) in enumerate(words):
        ids = vocabulary.encode(ws[:max_length], unknown=1)
        tokens[row, :ids.size] = ids
        lengths[row] = ids.size
    labels = np.asarray([label for label, _ in words], np.int32)
    return LabelledText(tokens, lengths, labels, vocabulary, classes)


# -- word2vec examples -----------------------------------------------------------------------------


def _check_ids(ids: Any, name: str = "ids") -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of token ids, got shape {ids.shape}")
    if ids.size and ids.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.size and ids.min() < 0:
        raise ValueError(f"{name} must be >= 0, got minimum {int(ids.min())}")
    return ids.astype(np.int64)


def _check_counts(counts: Any) -> np.ndarray:
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"counts must be a non-empty 1-D array (one count per word), got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError("counts must be finite, >= 0 and not all zero")
    return counts


def keep_probabilities(counts: Any, threshold: float = 1e-3) -> np.ndarray:
    """Mikolov's subsampling: P(keep w) = min(1, √(t / f(w))), f(w) = count(w) / Σ counts; (V,)."""
    counts = _check_counts(counts)
    _checks.check_number(threshold, "threshold", positive=True)
    frequency = counts / counts.sum()
    with np.errstate(divide="ignore"):
        return np.minimum(1.0, np.sqrt(threshold / frequency))


def subsample(ids: Any, counts: Any, threshold: float = 1e-3, seed: int = 0) -> np.ndarray:
    """`ids` with each occurrence of word w kept with probability min(1, √(t / f(w))), in order.

    One uniform draw per position: default_rng(seed).random(len(ids)) < P(keep ids[i]).
    """
    ids = _check_ids(ids)
    keep = keep_probabilities(counts, threshold)
    if ids.size and ids.max() >= keep.size:
        raise ValueError(f"ids must be < len(counts) = {keep.size}, got maximum {int(ids.max())}")
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)
    draws = np.random.default_rng(seed).random(ids.size)
    return ids[draws < keep[ids]]


def window_spans(n: int, window: int, seed: int | None) -> np.ndarray:
    """The window radius of each of n centres: `window` everywhere when seed is None, else word2vec's
    dynamic window, default_rng(seed).integers(1, window + 1, n) (nearer words are used more often)."""
    _checks.check_number(window, "window", integer=True, positive=True)
    if seed is None:
        return np.full(n, window, np.int64)
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)
    return np.random.default_rng(seed).integers(1, window + 1, n)


def skipgram_pairs(ids: Any, window: int = 5, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Skip-gram (center, context) pairs: ids[i] with every ids[j], 0 < |i - j| <= span_i; (n,), (n,) int32.

    span_i from `window_spans` (all `window` when seed is None). Ordered by i, then j.
    """
    ids = _check_ids(ids)
    n = ids.size
    spans = window_spans(n, window, seed)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    positions = np.arange(n)[:, None]
    others = positions + offsets[None, :]
    valid = (others >= 0) & (others < n) & (np.abs(offsets)[None, :] <= spans[:, None])
    centers = np.broadcast_to(positions, others.shape)[valid]
    contexts = others[valid]
    return ids[centers].astype(np.int32), ids[contexts].astype(np.int32)


def cbow_examples(ids: Any, window: int = 5, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CBOW (context, center) examples: contexts (n, 2·window) int32, -1 marking no word, and centers (n,).

    Column k of contexts holds ids[i + o_k], offsets o = (-window, ..., -1, 1, ..., window), where
    0 < |o_k| <= span_i and the position is inside the corpus; centres without any context are dropped.
    """
    ids = _check_ids(ids)
    n = ids.size
    spans = window_spans(n, window, seed)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])
    others = np.arange(n)[:, None] + offsets[None, :]
    valid = (others >= 0) & (others < n) & (np.abs(offsets)[None, :] <= spans[:, None])
    contexts = np.where(valid, ids[np.clip(others, 0, max(n - 1, 0))], -1)
    keep = valid.any(axis=1)
    return contexts[keep].astype(np.int32), ids[keep].astype(np.int32)


def noise_distribution(counts: Any, power: float = 0.75) -> np.ndarray:
    """Negative-sampling noise P_n(w) = count(w)^power / Σ count^power: (V,) float64."""
    counts = _check_counts(counts)
    _checks.check_number(power, "power", nonnegative=True)
    weights = np.where(counts > 0, counts ** power, 0.0)
    return weights / weights.sum()


def negative_sampling_table(counts: Any, size: int = 1_000_000, power: float = 0.75) -> np.ndarray:
    """word2vec's unigram table: (size,) int32 ids, word w filling round(size·C_w) - round(size·C_(w-1))
    slots, C the cumulative noise distribution; a uniform draw from it samples P_n(w) ∝ count^power."""
    _checks.check_number(size, "size", integer=True, positive=True)
    probs = noise_distribution(counts, power)
    edges = np.round(np.cumsum(probs) * size).astype(np.int64)
    edges[-1] = size
    slots = np.diff(np.concatenate([[0], edges]))
    return np.repeat(np.arange(probs.size, dtype=np.int32), slots)


def sample_negatives(table: Any, shape: int | Sequence[int], seed: int = 0) -> np.ndarray:
    """Negative ids drawn uniformly from a `negative_sampling_table`: array of `shape`, int32."""
    table = np.asarray(table)
    if table.ndim != 1 or table.size == 0 or table.dtype.kind not in "iu":
        raise ValueError(f"table must be a non-empty 1-D integer array (negative_sampling_table), got {_checks.describe(table)}")
    _checks.check_number(seed, "seed", integer=True, nonnegative=True)
    return table[np.random.default_rng(seed).integers(0, table.size, shape)].astype(np.int32)
