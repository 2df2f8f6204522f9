"""TerminateOnNaN: say where training met a non-finite loss, and stop there."""

from __future__ import annotations

import math
import sys

from jdl.train.callbacks.base import Callback


class TerminateOnNaN(Callback):
    """Say where training met a non-finite loss and make sure it stops there.

    jdl always stops at the first non-finite loss or gradient (the step is not applied); this
    callback prints the report, as Keras' TerminateOnNaN prints its message.
    """

    holds_state = False

    def on_epoch_end(self, epoch, state, logs):
        if self.context.nonfinite or any(not math.isfinite(v) for k, v in logs.items() if k.endswith("loss")):
            self.context.stop_training = True
            print(f"TerminateOnNaN: {self.context.nonfinite or f'non-finite loss at epoch {epoch}'}", file=sys.stderr)
