"""Ready-made models built from jdl.nn (Flax Linen modules), and `get` by name."""

from jdl import _checks
from jdl.models.mlp import MLP
from jdl.models.transformer import CausalLM, TransformerClassifier, attention_maps, generate
from jdl.models.word2vec import Word2Vec, WordVectors, negative_sampling_targets, train_word2vec

_TABLE = {
    "causal_lm": CausalLM,
    "mlp": MLP,
    "transformer_classifier": TransformerClassifier,
    "word2vec": Word2Vec,
}


def names() -> list[str]:
    """The model names `get` (and run configs) accept."""
    return sorted(_TABLE)


def get(name: str) -> type:
    """The model class registered under `name` (e.g. "mlp" -> MLP)."""
    return _checks.lookup("model", name, _TABLE)


__all__ = [
    "CausalLM",
    "MLP",
    "TransformerClassifier",
    "Word2Vec",
    "WordVectors",
    "attention_maps",
    "generate",
    "get",
    "names",
    "negative_sampling_targets",
    "train_word2vec",
]
