"""TensorBoard: every epoch log as a scalar (tensorboardX, the `tensorboard` extra)."""

from __future__ import annotations

import os

from jdl.train.callbacks.base import Callback


class TensorBoard(Callback):
    """Write every epoch log as a scalar (train and val_ curves share a tag) to `log_dir`.

    Needs tensorboardX: pip install "jdl[tensorboard]".
    """

    holds_state = False

    def __init__(self, log_dir: str | os.PathLike = "logs"):
        try:
            import tensorboardX  # noqa: F401
        except ImportError as err:
            raise ImportError('TensorBoard needs tensorboardX: pip install "jdl[tensorboard]"') from err
        self.log_dir = os.fspath(log_dir)
        self.writer = None

    def on_train_begin(self, state, logs):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(self.log_dir)

    def on_epoch_end(self, epoch, state, logs):
        for key, value in logs.items():
            split = "validation" if key.startswith("val_") else "train"
            self.writer.add_scalar(f"{key.removeprefix('val_')}/{split}", value, epoch)
        self.writer.flush()

    def on_train_end(self, state, logs):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
