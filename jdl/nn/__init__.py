"""Building blocks (Flax Linen): activations, initializers, layers, the perceptron."""

from jdl.nn import activations, initializers
from jdl.nn.embedding import Embedding
from jdl.nn.layers import PReLU
from jdl.nn.perceptron import Perceptron, PerceptronResult, perceptron_fit

__all__ = ["Embedding", "activations", "initializers", "PReLU", "Perceptron", "PerceptronResult", "perceptron_fit"]
