"""One process of a multi-process `jdl train`: run it in a child and turn a lost peer into one line.

When another process of the run dies, JAX's coordination service notices its missing heartbeat
(`jdl.train.distributed.HEARTBEAT_SECONDS`) and ends every survivor with a C++ fatal error and a
stack dump (SIGABRT). The parent here forwards the child's output, keeps JAX's C++ log lines
back, and prints instead `jdl train: error: lost process K of N ...`, exiting with `EXIT_LOST`.
SIGINT and SIGTERM are forwarded to the child (which saves a checkpoint, see `jdl.runs`); the
child ends itself when the parent dies.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

CHILD = "JDL_LAUNCHED_CHILD"
STDOUT_FD = "JDL_LAUNCHED_STDOUT_FD"  # the child's Python stdout; its fd 1 (Gloo's C++ prints) goes nowhere
EXIT_LOST = 75  # EX_TEMPFAIL: the run lost a process; resume it with --resume
LOST_MARK = "jdl-lost-peer:"
GLOO_ABORT = "terminate called after throwing an instance of 'gloo::"  # a collective's peer vanished mid-transfer
_CPP_LOG = re.compile(r"^(?:[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\]|\*\*\* |\s+@\s+0x|\[Gloo\] )")


def is_child() -> bool:
    """True inside the child `supervise` started."""
    return os.environ.get(CHILD) == "1"


def use_parent_stdout() -> None:
    """Write Python's stdout to the pipe the parent passed (`STDOUT_FD`).

    fd 1 then carries only what C++ prints there (Gloo's connection lines, interleaved between its
    threads), and the parent drops it.
    """
    if STDOUT_FD in os.environ:
        sys.stdout = os.fdopen(int(os.environ.pop(STDOUT_FD)), "w", buffering=1)


def watch_parent() -> None:
    """End this process (SIGKILL) as soon as its parent is gone, so a killed `jdl train` leaves no orphan."""
    import faulthandler

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints where every thread of a stuck run is
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="jdl-watch-parent").start()


def lost_process(text: str) -> str | None:
    """Which process JAX's fatal message says was lost: "process K", "the coordinator (process 0)" or None."""
    unhealthy = re.search(r"tasks are unhealthy \(stopped sending heartbeats\):\s*([\d,\s]+)", text)
    if unhealthy:
        ids = [int(i) for i in re.findall(r"\d+", unhealthy.group(1))]
        if ids:
            return "process" + ("es " if len(ids) > 1 else " ") + ", ".join(map(str, ids))
    if re.search(r"leader task|coordination service.*(?:Socket closed|UNAVAILABLE|Connection)", text, re.S):
        return "process 0 (the coordinator)"
    return None


def describe_failure(text: str, process_id: int | None, num_processes: int | None) -> str:
    """The one line a survivor prints when the run lost a process."""
    who = lost_process(text)
    if who is None and GLOO_ABORT in text:  # Gloo names the peer's address, not its process; of two, it is the other
        who = f"process {1 - process_id}" if num_processes == 2 and process_id in (0, 1) else "another process"
    of = f" of {num_processes}" if num_processes else ""
    me = f"process {process_id}" if process_id is not None else "this process"
    if who is None:
        fatal = next((line for line in text.splitlines() if line.startswith("F") and "]" in line), "")
        mark = next((line for line in text.splitlines() if line.startswith(LOST_MARK)), "")
        detail = (" ".join(fatal.split("]", 1)[-1].split())[:200] if fatal else
                  mark[len(LOST_MARK):].strip()[:200] or "no reason given")
        return f"jdl train: error: the run lost contact with another process{of} ({detail}); {me} stopped"
    return (f"jdl train: error: lost {who}{of} (stopped answering JAX's heartbeat or collectives); {me} stopped; "
            "restart every process with --resume")


def supervise(argv: Sequence[str], process_id: int | None, num_processes: int | None) -> int:
    """Run `python -m jdl.cli ARGV` as a child; forward its output; one line and EXIT_LOST if a peer was lost."""
    python_out, python_out_child = os.pipe()
    env = dict(os.environ, **{CHILD: "1", "PYTHONUNBUFFERED": "1", STDOUT_FD: str(python_out_child)})
    child = subprocess.Popen([sys.executable, "-m", "jdl.cli", *argv], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True, pass_fds=(python_out_child,))
    os.close(python_out_child)

    def forward(signal_number, frame):
        child.send_signal(signal_number)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    held: list[str] = []
    try:
        _forward(child, python_out, held)
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    text = "".join(held)
    if os.environ.get("JDL_LAUNCH_HELD"):  # a directory where each process keeps what it held back, to look at
        Path(os.environ["JDL_LAUNCH_HELD"], f"held_{process_id}.txt").write_text(text)
    failed = LOST_MARK in text or GLOO_ABORT in text or re.search(r"^F\d{4} ", text, re.M) is not None
    if failed and code != 0:
        print(describe_failure(text, process_id, num_processes), file=sys.stderr, flush=True)
        return EXIT_LOST
    sys.stderr.write("".join(line for line in held if not line.startswith("[Gloo] ")))
    return code if code >= 0 else 128 - code


def _forward(child: subprocess.Popen, python_out: int, held: list[str]) -> None:
    """Copy the child's Python stdout and its stderr to ours until both close, holding back C++ log lines.

    C++ log messages on stderr (and everything after a fatal one or the child's LOST_MARK) go to `held`.
    """
    streams = {python_out: (sys.stdout, ""), child.stderr.fileno(): (sys.stderr, "")}
    fatal = False
    while streams:
        ready, _, _ = select.select(list(streams), [], [], 0.3)
        for fd in list(streams) if not ready else ready:
            out, pending = streams[fd]
            chunk = os.read(fd, 65536).decode(errors="replace") if fd in ready else None
            if chunk == "":
                if pending:
                    (held.append if fatal or out is sys.stderr and _CPP_LOG.match(pending) else out.write)(pending)
                del streams[fd]
                if fd == python_out:
                    os.close(fd)
                continue
            pending += chunk or ""
            parts = re.split(r"(?<=[\r\n])", pending)
            pending = parts.pop() if parts and not parts[-1].endswith(("\n", "\r")) else ""
            if chunk is None and pending and out is sys.stderr and not _CPP_LOG.match(pending) and not fatal:
                parts.append(pending)  # a progress bar's partial line, idle for a moment
                pending = ""
            streams[fd] = (out, pending)
            continued = False  # a C++ log message's further lines come in the same write as its first
            for part in parts:
                if out is sys.stdout:
                    out.write(part)
                    continue
                if part.startswith((LOST_MARK, GLOO_ABORT)) or (_CPP_LOG.match(part) and part[0] in "EF"):
                    fatal = True  # the run may be ending: what follows is held back (and written out if it was not)
                continued = continued or bool(_CPP_LOG.match(part))
                if fatal or continued or part.startswith(LOST_MARK):
                    held.append(part)
                else:
                    out.write(part)
            out.flush()
