"""ProgressBar: tqdm progress per epoch, or one line per epoch."""

from __future__ import annotations

import sys

from jdl import _checks
from jdl.train.callbacks.base import Callback


class ProgressBar(Callback):
    """tqdm progress: verbose 0 silent, 1 a bar per epoch updated per dispatch, 2 one line per epoch."""

    holds_state = False

    def __init__(self, verbose: int = 1):
        _checks.check_choice(verbose, "verbose", (0, 1, 2))
        self.verbose = verbose
        self.bar = None

    def on_epoch_begin(self, epoch, state, logs):
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.context.steps_per_epoch, desc=f"Epoch {epoch + 1}/{self.context.epochs}",
                            unit="step", leave=True, file=sys.stdout, dynamic_ncols=True)

    def on_train_batch_end(self, steps, state, logs):
        if self.bar is not None:
            self.bar.update(steps)

    def on_epoch_end(self, epoch, state, logs):
        text = " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.close()
            self.bar = None
        elif self.verbose == 2:
            print(f"Epoch {epoch + 1}/{self.context.epochs} - {text}", flush=True)
