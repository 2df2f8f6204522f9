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
from jdl.nn.conv import AvgPool, Conv1D, Conv2D, Flatten, MaxPool, MinPool, output_size
from jdl.nn.embedding import Embedding
from jdl.nn.keras_layers import GRU, LSTM, Activation, BatchNormalization, Dense, Dropout, MaxPooling2D
from jdl.nn.layers import PReLU
from jdl.nn.perceptron import Perceptron, PerceptronResult, perceptron_fit
from jdl.nn.recurrent import Bidirectional, GRUCell, LSTMCell, Recurrent, SimpleRNNCell, StackedRecurrent

__all__ = [
    "Activation",
    "AvgPool",
    "BatchNormalization",
    "Bidirectional",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "LearnedPositionalEmbedding",
    "MaxPool",
    "MaxPooling2D",
    "MinPool",
    "MultiHeadAttention",
    "PReLU",
    "Perceptron",
    "PerceptronResult",
    "Recurrent",
    "SimpleRNNCell",
    "SinusoidalPositionalEncoding",
    "StackedRecurrent",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "activations",
    "causal_mask",
    "initializers",
    "output_size",
    "padding_mask",
    "perceptron_fit",
    "scaled_dot_product_attention",
    "sinusoidal_positional_encoding",
]
