"""jdl: a JAX functional deep-learning toolkit (Flax models, Optax training, gradient diagnostics)."""

from importlib.metadata import PackageNotFoundError, version

from jdl import losses, metrics, nn

try:
    __version__ = version("jdl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0"

__all__ = ["losses", "metrics", "nn", "__version__"]
