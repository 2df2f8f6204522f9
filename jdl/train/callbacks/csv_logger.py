"""CSVLogger: one row per epoch, flushed to disk; resumable."""

from __future__ import annotations

import csv
import io
import os

from jdl import _io
from jdl.train.callbacks.base import Callback


class CSVLogger(Callback):
    """Write one row per epoch (epoch and every log) to a CSV file.

    With append=True an existing file is continued; rows for epochs at or after the first
    epoch of this fit (left by an interrupted run that is being resumed) are dropped first.
    """

    holds_state = False

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys: list[str] | None = None

    def on_train_begin(self, state, logs):
        self.keys, self.first_epoch = None, True
        if not self.append and os.path.exists(self.filename):
            os.remove(self.filename)

    def on_epoch_begin(self, epoch, state, logs):
        if not (self.first_epoch and self.append and os.path.exists(self.filename)):
            self.first_epoch = False
            return None
        self.first_epoch = False
        with open(self.filename, newline="") as handle:
            rows = list(csv.reader(handle, delimiter=self.separator))
        if not rows:
            return None
        self.keys = rows[0][1:]
        kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) < epoch]
        if len(kept) != len(rows):
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=self.separator).writerows(kept)
            _io.atomic_write_text(self.filename, buffer.getvalue())
        return None

    def on_epoch_end(self, epoch, state, logs):
        if self.keys is None:
            self.keys = sorted(logs)
        write_header = not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0
        with open(self.filename, "a", newline="") as handle:
            writer = csv.writer(handle, delimiter=self.separator)
            if write_header:
                writer.writerow(["epoch", *self.keys])
            writer.writerow([epoch, *(repr(float(logs[k])) if k in logs else "" for k in self.keys)])
            handle.flush()
            os.fsync(handle.fileno())
