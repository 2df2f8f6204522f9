"""Ready-made models built from jdl.nn (Flax Linen modules), and `get` by name."""

from typing import Any

from jdl import _checks
from jdl.models.autoencoder import VAE, Autoencoder, ConvAutoencoder, kl_standard_normal, latent_plot, reconstruction_grid
from jdl.models.cnn import CNN, LeNet, lecture_cnn
from jdl.models.mlp import MLP
from jdl.models.multitask import TwoInputTwoHead
from jdl.models.rnn import RNNClassifier, SequenceClassifier, SequenceGenerator, SequenceTagger
from jdl.models.seq2seq import Seq2Seq
from jdl.models.sequential import Sequential
from jdl.models.summary import count_params, summary
from jdl.models.transfer import TrunkHead, transplant
from jdl.models.transformer import CausalLM, TransformerClassifier, attention_maps, generate
from jdl.models.word2vec import Word2Vec, WordVectors, negative_sampling_targets

_TABLE = {
    "autoencoder": Autoencoder,
    "causal_lm": CausalLM,
    "cnn": CNN,
    "conv_autoencoder": ConvAutoencoder,
    "lecture_cnn": lecture_cnn,
    "lenet": LeNet,
    "mlp": MLP,
    "rnn_classifier": RNNClassifier,
    "seq2seq": Seq2Seq,
    "sequence_classifier": SequenceClassifier,
    "sequence_generator": SequenceGenerator,
    "sequence_tagger": SequenceTagger,
    "transformer_classifier": TransformerClassifier,
    "trunk_head": TrunkHead,
    "two_input_two_head": TwoInputTwoHead,
    "vae": VAE,
    "word2vec": Word2Vec,
}


def names() -> list[str]:
    """The model names `get` (and run configs) accept."""
    return sorted(_TABLE)


def get(name: str) -> Any:
    """The model class registered under `name` (e.g. "mlp" -> MLP)."""
    return _checks.lookup("model", name, _TABLE)


def __getattr__(name: str) -> Any:
    """Deprecated aliases (one release): training and checkpoint loading moved to jdl.train (models import nothing of it)."""
    if name == "load_params":
        from jdl.models import transfer

        return transfer.load_params
    if name == "train_word2vec":
        from jdl.models import word2vec

        return word2vec.train_word2vec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Autoencoder",
    "CNN",
    "CausalLM",
    "ConvAutoencoder",
    "LeNet",
    "MLP",
    "RNNClassifier",
    "Seq2Seq",
    "Sequential",
    "SequenceClassifier",
    "SequenceGenerator",
    "SequenceTagger",
    "TransformerClassifier",
    "TrunkHead",
    "TwoInputTwoHead",
    "VAE",
    "Word2Vec",
    "WordVectors",
    "attention_maps",
    "generate",
    "kl_standard_normal",
    "lecture_cnn",
    "latent_plot",
    "reconstruction_grid",
    "transplant",
    "count_params",
    "get",
    "names",
    "summary",
    "negative_sampling_targets",
]
