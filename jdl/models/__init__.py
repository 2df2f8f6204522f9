"""Ready-made models built from jdl.nn (Flax Linen modules), and `get` by name."""

from jdl import _checks
from jdl.models.autoencoder import VAE, Autoencoder, ConvAutoencoder, kl_standard_normal, latent_plot, reconstruction_grid
from jdl.models.mlp import MLP
from jdl.models.multitask import TwoInputTwoHead
from jdl.models.transfer import TrunkHead, load_params, transplant
from jdl.models.transformer import CausalLM, TransformerClassifier, attention_maps, generate
from jdl.models.word2vec import Word2Vec, WordVectors, negative_sampling_targets, train_word2vec

_TABLE = {
    "autoencoder": Autoencoder,
    "causal_lm": CausalLM,
    "conv_autoencoder": ConvAutoencoder,
    "mlp": MLP,
    "transformer_classifier": TransformerClassifier,
    "trunk_head": TrunkHead,
    "two_input_two_head": TwoInputTwoHead,
    "vae": VAE,
    "word2vec": Word2Vec,
}


def names() -> list[str]:
    """The model names `get` (and run configs) accept."""
    return sorted(_TABLE)


def get(name: str) -> type:
    """The model class registered under `name` (e.g. "mlp" -> MLP)."""
    return _checks.lookup("model", name, _TABLE)


__all__ = [
    "Autoencoder",
    "CausalLM",
    "ConvAutoencoder",
    "MLP",
    "TransformerClassifier",
    "TrunkHead",
    "TwoInputTwoHead",
    "VAE",
    "Word2Vec",
    "WordVectors",
    "attention_maps",
    "generate",
    "kl_standard_normal",
    "latent_plot",
    "load_params",
    "reconstruction_grid",
    "transplant",
    "get",
    "names",
    "negative_sampling_targets",
    "train_word2vec",
]
