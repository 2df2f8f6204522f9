"""word2vec (Mikolov et al. 2013): skip-gram and CBOW with negative sampling (trained by `jdl.train.word2vec`).

The model scores a true (input, output) word pair and K noise words drawn from P_n(w) ∝ count^0.75;
its outputs are logits, so binary cross-entropy on logits with targets (1, 0, ..., 0) is the
negative-sampling objective. `jdl.train.word2vec.train_word2vec` runs the whole recipe and returns `WordVectors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl.data import text as text_lib
from jdl.nn import initializers
from jdl.nn.embedding import Embedding

MODES = ("skipgram", "cbow")


def negative_sampling_targets(n: int, negatives: int) -> np.ndarray:
    """(n, 1 + negatives) float32: 1 for the true output word (column 0), 0 for the noise words."""
    _checks.check_number(n, "n", integer=True, nonnegative=True)
    _checks.check_number(negatives, "negatives", integer=True, positive=True)
    y = np.zeros((n, 1 + negatives), np.float32)
    y[:, 0] = 1.0
    return y


class Word2Vec(nn.Module):
    """Negative-sampling scores of word2vec: x {"center", "context"[, "negatives"]} -> logits (batch, 1 + K).

    skipgram: center (batch,), context (batch,); h = v[center], the true output word is context.
    cbow: context (batch, C) with -1 for no word, center (batch,); h = mean of v over the context
    words, the true output word is center.
    logits[:, 0] = u[true]·h, logits[:, k] = u[noise_k]·h. With binary_crossentropy (from logits,
    targets `negative_sampling_targets`) the per-example loss is
    (1/(1+K))·[-ln σ(u_o·h) - Σ_k ln σ(-u_k·h)], Mikolov's objective over 1+K.
    The K noise ids are x["negatives"] (batch, K) when given, else drawn on the device from `noise`
    (a distribution over the vocabulary, e.g. `text.noise_distribution(counts)`; None: uniform) with
    the "sample" rng, which `jdl.Trainer` supplies. v ("input/embeddings", the word vectors) starts
    U(-0.5/d, 0.5/d) and u ("output/embeddings") at zero, as word2vec.c.
    """

    vocab_size: int
    embed_dim: int = 100
    mode: str = "skipgram"
    negatives: int = 5
    noise: Sequence[float] | None = None

    def __post_init__(self) -> None:
        _checks.check_number(self.vocab_size, "vocab_size", integer=True, positive=True)
        _checks.check_number(self.embed_dim, "embed_dim", integer=True, positive=True)
        _checks.check_choice(self.mode, "mode", MODES)
        _checks.check_number(self.negatives, "negatives", integer=True, positive=True)
        if self.noise is not None:
            if isinstance(self.noise, (str, bytes)):
                raise TypeError(f"noise must be a sequence of probabilities or None, got {_checks.describe(self.noise)}")
            noise = np.asarray(self.noise, np.float64)
            if noise.shape != (self.vocab_size,):
                raise ValueError(f"noise must have one entry per word, shape ({self.vocab_size},), got {noise.shape}")
            if not np.all(np.isfinite(noise)) or np.any(noise < 0) or noise.sum() <= 0:
                raise ValueError("noise must be finite, >= 0 and not all zero")
            object.__setattr__(self, "noise", tuple(float(p) for p in noise / noise.sum()))
        super().__post_init__()

    def _check_inputs(self, x: Any) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        if not isinstance(x, Mapping):
            raise TypeError(f"x must be a dict with 'center' and 'context' token ids, got {_checks.describe(x)}")
        unknown = sorted(set(x) - {"center", "context", "negatives"})
        missing = [key for key in ("center", "context") if key not in x]
        if unknown or missing:
            raise ValueError(f"x must have keys 'center', 'context' and optionally 'negatives'; missing {missing}, unknown {unknown}")
        arrays = {}
        for key in ("center", "context", "negatives"):
            if key not in x:
                continue
            value = x[key] if hasattr(x[key], "dtype") else np.asarray(x[key])
            if np.dtype(value.dtype).kind not in "iu":
                raise TypeError(f"x[{key!r}] must hold integer token ids, got dtype {value.dtype}")
            arrays[key] = value
        center, context = arrays["center"], arrays["context"]
        if center.ndim != 1:
            raise ValueError(f"x['center'] must have shape (batch,), got {tuple(center.shape)}")
        batch = center.shape[0]
        wanted = (batch,) if self.mode == "skipgram" else (batch, "C")
        if context.ndim != len(wanted) or context.shape[0] != batch or (self.mode == "cbow" and context.shape[1] < 1):
            raise ValueError(f"x['context'] must have shape {wanted} in {self.mode} mode, got {tuple(context.shape)}")
        negatives = arrays.get("negatives")
        if negatives is not None and tuple(negatives.shape) != (batch, self.negatives):
            raise ValueError(f"x['negatives'] must have shape ({batch}, {self.negatives}), got {tuple(negatives.shape)}")
        low = -1 if self.mode == "cbow" else 0
        for key, value in arrays.items():
            if _checks.is_concrete(value) and value.size:
                values = np.asarray(value)
                floor = low if key == "context" else 0
                if values.min() < floor or values.max() >= self.vocab_size:
                    raise ValueError(
                        f"x[{key!r}] must hold ids in [{floor}, {self.vocab_size - 1}] (vocab_size={self.vocab_size}), "
                        f"got values from {values.min()} to {values.max()}"
                    )
        return jnp.asarray(center), jnp.asarray(context), None if negatives is None else jnp.asarray(negatives)

    def _sample(self, shape: tuple[int, ...]) -> jax.Array:
        if self.has_rng("sample"):
            key = self.make_rng("sample")
        elif self.is_initializing():
            key = self.make_rng("params")
        else:
            raise ValueError("Word2Vec needs noise words: pass x['negatives'] (batch, K) or rngs={'sample': key} to apply")
        if self.noise is None:
            return jax.random.randint(key, shape, 0, self.vocab_size)
        return jax.random.choice(key, self.vocab_size, shape, replace=True, p=jnp.asarray(self.noise, jnp.float32))

    @nn.compact
    def __call__(self, x: Mapping[str, Any], train: bool = False) -> jax.Array:
        center, context, negatives = self._check_inputs(x)
        bound = 0.5 / self.embed_dim
        v = Embedding(self.vocab_size, self.embed_dim, embeddings_init=initializers.random_uniform(-bound, bound), name="input")
        u = Embedding(self.vocab_size, self.embed_dim, embeddings_init="zeros", name="output")
        if self.mode == "skipgram":
            h, true = v(center), context
        else:
            present = (context >= 0).astype(jnp.result_type(float))
            vectors = v(jnp.maximum(context, 0)) * present[..., None]
            h = vectors.sum(axis=1) / jnp.maximum(present.sum(axis=1, keepdims=True), 1.0)
            true = center
        if negatives is None:
            negatives = self._sample((center.shape[0], self.negatives))
        candidates = jnp.concatenate([true[:, None], negatives.astype(true.dtype)], axis=1)
        return jnp.einsum("bkd,bd->bk", u(candidates), h)


class WordVectors:
    """Trained word vectors: `vector(word)`, `similarity(a, b)` and `most_similar(word, k)` by cosine.

    vectors (V, d) row i for vocabulary.words[i]; cos(a, b) = a·b / (‖a‖‖b‖).
    """

    def __init__(self, vocabulary: text_lib.Vocabulary, vectors: Any, history: Any = None, state: Any = None) -> None:
        if not isinstance(vocabulary, text_lib.Vocabulary):
            raise TypeError(f"vocabulary must be a jdl.data.text.Vocabulary, got {_checks.describe(vocabulary)}")
        vectors = np.asarray(vectors, np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(vocabulary):
            raise ValueError(f"vectors must have shape ({len(vocabulary)}, d), one row per word, got {vectors.shape}")
        self.vocabulary, self.vectors, self.history, self.state = vocabulary, vectors, history, state
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.unit = vectors / np.maximum(norms, 1e-12)

    def __len__(self) -> int:
        return len(self.vocabulary)

    def __contains__(self, word: object) -> bool:
        return word in self.vocabulary

    def __repr__(self) -> str:
        return f"WordVectors({len(self)} words, dimension {self.vectors.shape[1]})"

    @property
    def words(self) -> tuple[str, ...]:
        return self.vocabulary.words

    def _id(self, word: Any) -> int:
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {_checks.describe(word)}")
        return self.vocabulary.id(word)

    def vector(self, word: str) -> np.ndarray:
        """The vector of `word`: (d,); KeyError naming the word when it is not in the vocabulary."""
        return self.vectors[self._id(word)].copy()

    def similarity(self, a: str, b: str) -> float:
        """cos(vector(a), vector(b)) in [-1, 1]."""
        return float(self.unit[self._id(a)] @ self.unit[self._id(b)])

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        """The k words of highest cosine similarity to `word`, itself excluded: [(word, cos)], best first."""
        index = self._id(word)
        _checks.check_number(k, "k", integer=True, positive=True)
        scores = self.unit @ self.unit[index]
        scores[index] = -np.inf
        k = min(k, len(self) - 1)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.vocabulary.words[i], float(scores[i])) for i in order]


def __getattr__(name: str) -> Any:
    """Deprecated alias (one release): `train_word2vec` moved to `jdl.train.word2vec`."""
    if name == "train_word2vec":
        import warnings

        from jdl.train import word2vec

        warnings.warn("jdl.models.word2vec.train_word2vec moved to jdl.train.word2vec.train_word2vec",
                      DeprecationWarning, stacklevel=2)
        return word2vec.train_word2vec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
