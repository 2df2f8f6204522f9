"""Building blocks (Flax Linen): activations, initializers, layers, convolution, recurrence, attention, embeddings."""

from jdl.nn import activations, initializers
from jdl.nn.attention import (
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    sinusoidal_positional_encoding,
)
from jdl.nn.embedding import Embedding
from jdl.nn.layers import PReLU
from jdl.nn.perceptron import Perceptron, PerceptronResult, perceptron_fit

__all__ = [
    "Embedding",
    "LearnedPositionalEmbedding",
    "MultiHeadAttention",
    "PReLU",
    "Perceptron",
    "PerceptronResult",
    "SinusoidalPositionalEncoding",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "activations",
    "causal_mask",
    "initializers",
    "padding_mask",
    "perceptron_fit",
    "scaled_dot_product_attention",
    "sinusoidal_positional_encoding",
]
