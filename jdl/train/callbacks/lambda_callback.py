"""LambdaCallback: a callback from plain functions."""

from __future__ import annotations

from jdl import _checks
from jdl.train.callbacks.base import Callback


class LambdaCallback(Callback):
    """A callback from plain functions: on_epoch_end=lambda epoch, state, logs: ..., etc."""

    def __init__(self, on_train_begin=None, on_epoch_begin=None, on_train_batch_end=None, on_epoch_end=None,
                 on_train_end=None):
        for name, fn in [("on_train_begin", on_train_begin), ("on_epoch_begin", on_epoch_begin),
                         ("on_train_batch_end", on_train_batch_end), ("on_epoch_end", on_epoch_end),
                         ("on_train_end", on_train_end)]:
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name} must be callable, got {_checks.describe(fn)}")
                setattr(self, name, fn)
