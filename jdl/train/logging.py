"""Deprecated alias: TensorBoard moved to `jdl.train.callbacks.tensorboard` (kept for one release)."""

from jdl.train.callbacks.tensorboard import TensorBoard

__all__ = ["TensorBoard"]
