"""The sweep directory: one run directory per trial (trial-K/, with trial.json), sweep.json and sweep.csv.

Every file is written atomically. A trial is claimed by creating trial-K/.claim exclusively
(host and pid inside), so workers on any number of hosts never run one trial twice; a claim whose
process died on this host is cleared by `--resume`, and the trial continues from its checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from jdl import _io

STATES = ("running", "complete", "pruned", "failed")
FINISHED = ("complete", "pruned", "failed")


def trial_dir(out: Path, number: int) -> Path:
    return out / f"trial-{number}"


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """An exclusive lock on the sweep directory (fcntl on out/.lock), for read-modify-write of shared files."""
    with open(out / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def claim(out: Path, number: int) -> bool:
    """Take trial `number` for this process; False when another process holds it."""
    directory = trial_dir(out, number)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(directory / ".claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w") as file:
        json.dump({"host": socket.gethostname(), "pid": os.getpid()}, file)
    return True


def release(out: Path, number: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(trial_dir(out, number) / ".claim")


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs on this host (a zombie, killed but not yet reaped, does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    return True


def clear_stale_claims(out: Path) -> tuple[list[int], list[str]]:
    """Remove claims whose process died on this host; returns (unfinished trials cleared, claims held elsewhere).

    A finished trial's claim is left behind when its worker was killed between writing the trial's record
    and releasing the claim: it is removed (when its owner is dead) and not listed.
    """
    cleared, elsewhere = [], []
    host = socket.gethostname()
    for path in sorted(out.glob("trial-*/.claim")):
        number = int(path.parent.name.split("-", 1)[1])
        record = read_trial(out, number)
        try:
            owner = json.loads(path.read_text())
        except (OSError, ValueError):
            owner = {"host": host, "pid": -1}
        if record is not None and record["state"] in FINISHED:
            if owner.get("host") == host and not _alive(int(owner.get("pid", -1))):
                path.unlink(missing_ok=True)
            continue
        if owner.get("host") != host:
            elsewhere.append(f"trial {number} (host {owner.get('host')}, pid {owner.get('pid')})")
        elif not _alive(int(owner.get("pid", -1))):
            path.unlink(missing_ok=True)
            cleared.append(number)
        else:
            raise FileExistsError(f"trial {number} of {out} is being run by process {owner['pid']}; "
                                  "stop it before resuming, or let it finish")
    return cleared, elsewhere


def read_trial(out: Path, number: int) -> dict[str, Any] | None:
    path = trial_dir(out, number) / "trial.json"
    if not path.is_file():
        return None
    return _io.read_json(path)


def write_trial(out: Path, record: Mapping[str, Any]) -> None:
    _io.write_json(trial_dir(out, record["number"]) / "trial.json", record)


def trials(out: Path) -> list[dict[str, Any]]:
    """Every trial record in the directory, by number."""
    numbers = sorted(int(p.parent.name.split("-", 1)[1]) for p in out.glob("trial-*/trial.json"))
    return [r for r in (read_trial(out, n) for n in numbers) if r is not None]


def write_summary(out: Path, header: Mapping[str, Any], params: Sequence[str]) -> dict[str, Any]:
    """sweep.json (the header plus every trial record) and sweep.csv, under the directory lock."""
    with locked(out):
        records = trials(out)
        body = {**header, "trials": [{k: r.get(k) for k in ("number", "params", "state", "value", "run_dir",
                                                              "best_epoch", "epochs_run", "seconds", "error",
                                                              "command")} for r in records]}
        _io.write_json(out / "sweep.json", body)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["number", "state", "value", *params, "best_epoch", "epochs_run", "seconds", "run_dir"])
        for r in records:
            writer.writerow([r["number"], r["state"], "" if r.get("value") is None else repr(r["value"]),
                             *(json.dumps(r["params"].get(p)) if isinstance(r["params"].get(p), (list, dict))
                               else r["params"].get(p) for p in params),
                             r.get("best_epoch"), r.get("epochs_run"), r.get("seconds"), r.get("run_dir")])
        _io.atomic_write_text(out / "sweep.csv", buffer.getvalue())
    return body


def read_curve(run_dir: Path, metric: str) -> tuple[list[int], list[float]]:
    """(epochs counted from 1, values) of one column of a run's metrics.csv; empty when absent."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return [], []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs, values = [], []
    for row in rows:
        if row.get(metric) not in (None, ""):
            epochs.append(int(row["epoch"]) + 1)
            values.append(float(row[metric]))
    return epochs, values
