#!/usr/bin/env python
"""Training from a packed data set larger than memory is meant to be (≥ 2 GB on disk) vs from in-memory arrays.

Model: the digits-sized MLP 784-512-512-10 (relu, Adam 1e-3, sparse softmax cross-entropy), batch
128, on generated data: class c's inputs are a fixed random center_c plus N(0, 1) noise, float32.

Variants, in this order, one process:
- packed: one epoch over every row of a packed data set (`jdl data pack`'s format, .npy memory
  maps) of ≥ --gigabytes GB, read by Grain (jdl's index sampler, reader threads) in the
  in-memory path's order;
- packed + workers (with --workers K > 0): the same over the first --worker-rows rows, read by K Grain
  worker processes;
- in memory: --memory-rows rows as NumPy arrays (on the device once), 3 epochs, run before and
  after the packed variants (the machine is shared: the ratio is packed / the mean of the two).

Reported per variant: steps/s after the first dispatch (its compile excluded), and the peak RssAnon
(anonymous resident memory: /proc/PID/status) of this process and of every child process (Grain
workers) sampled every 20 ms. File-backed pages of the memory maps are in RssFile, reclaimable, not
counted. The data set is generated in a temporary directory under --dir (default: the system's
temporary directory) and deleted afterwards unless --keep.

    python benchmarks/input_pipeline.py                       # writes results/input_pipeline.json
    python benchmarks/input_pipeline.py --dir /scratch --workers 2
    python benchmarks/input_pipeline.py --quick               # 0.2 GB smoke run, prints only

A program, not a test: it prints a table, writes JSON, and exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, versions, write_json  # noqa: E402

FEATURES, CLASSES, BATCH = 784, 10, 128
LIMIT_BYTES = 1 << 30


def rss_anon(pid: int | str = "self") -> int | None:
    """RssAnon of a process in bytes (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def descendants(pid: int) -> list[int]:
    """Every child, grandchild, ... of `pid` (from /proc/PID/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


class PeakMemory:
    """Samples RssAnon of this process and its descendants every `every` seconds; peaks by process."""

    def __init__(self, every: float = 0.02):
        self.every, self.peaks, self._stop = every, {}, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for pid in [me, *descendants(me)]:
                value = rss_anon(pid)
                if value is not None:
                    key = "main" if pid == me else f"child {pid}"
                    self.peaks[key] = max(self.peaks.get(key, 0), value)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def generate(directory: Path, rows: int, seed: int) -> float:
    """Write `rows` examples (x float32 (rows, 784), y int32) as a packed set in blocks; returns seconds."""
    from jdl.data import packed

    started = time.perf_counter()
    centers = np.random.default_rng(seed).normal(0.0, 1.0, (CLASSES, FEATURES)).astype(np.float32)
    writer = packed.PackWriter(directory, rows, {"x": ((FEATURES,), np.float32), "y": ((), np.int32)})
    block = 8192
    for start in range(0, rows, block):
        rng = np.random.default_rng([seed, start])
        count = min(block, rows - start)
        y = rng.integers(0, CLASSES, count).astype(np.int32)
        x = rng.standard_normal((count, FEATURES), dtype=np.float32)
        x += centers[y]
        writer.arrays["x"][start:start + count] = x
        writer.arrays["y"][start:start + count] = y
    writer.close()
    return time.perf_counter() - started


def trainer():
    from jdl import optim
    from jdl.models import MLP
    from jdl.train import Trainer

    return Trainer(MLP(hidden=(512, 512), outputs=CLASSES), loss="sparse_categorical_crossentropy",
                   optimizer=optim.adam(1e-3), metrics=["accuracy"])


def timed_fit(x, y, epochs: int, **fit) -> dict:
    """Fit with a clock at every dispatch's and epoch's end; steps/s after the first dispatch."""
    from jdl import callbacks as cb

    marks = {"dispatch": [], "epoch": []}

    class Clock(cb.Callback):
        holds_state = False

        def on_train_batch_end(self, steps, state, logs):
            marks["dispatch"].append((time.perf_counter(), steps))

        def on_epoch_end(self, epoch, state, logs):
            marks["epoch"].append(time.perf_counter())

    with PeakMemory() as memory:
        started = time.perf_counter()
        _, history = trainer().fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, seed=0, callbacks=[Clock()], **fit)
        seconds = time.perf_counter() - started
    total_steps = sum(s for _, s in marks["dispatch"])
    if epochs > 1:  # all of an epoch's dispatches are queued at once: time whole epochs after the first
        rate = total_steps * (epochs - 1) / epochs / (marks["epoch"][-1] - marks["epoch"][0])
    else:  # dispatch k's callback runs once dispatch k-1 has finished: time the full-size dispatches 1..m-1
        size = marks["dispatch"][0][1]
        full = [(t, s) for t, s in marks["dispatch"] if s == size]
        rate = sum(s for _, s in full[1:-1]) / (full[-1][0] - full[0][0]) if len(full) > 2 else float("nan")
    return {"seconds": seconds, "epochs": epochs, "steps": total_steps, "steps_per_s": rate,
            "first_dispatch_s": marks["dispatch"][0][0] - started, "loss": history.history["loss"],
            "accuracy": history.history["accuracy"], "rss_anon_peak_bytes": dict(memory.peaks)}


def in_memory_fit(rows: int, seed: int) -> dict:
    """The in-memory path on `rows` generated rows; steps/s over epochs 2-3 (the first compiles)."""
    import tempfile as tmp

    from jdl.data import packed

    with tmp.TemporaryDirectory() as scratch:
        generate(Path(scratch) / "m", rows, seed)
        source = packed.open_packed(Path(scratch) / "m")
        x, y = (np.array(a) for a in source.read(np.arange(rows)))
    del source
    result = timed_fit(x, y, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=None, help="where to generate the packed set (default: the temp directory)")
    parser.add_argument("--gigabytes", type=float, default=2.05, help="size of the packed set on disk (default 2.05)")
    parser.add_argument("--memory-rows", type=int, default=65536, help="rows of the in-memory reference (default 65536)")
    parser.add_argument("--workers", type=int, default=0, help="also read with K Grain worker processes (default 0)")
    parser.add_argument("--worker-rows", type=int, default=65536, help="rows read by the worker variant")
    parser.add_argument("--threads", type=int, default=4, help="Grain reader threads (default 4)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data set")
    parser.add_argument("--quick", action="store_true", help="a 0.2 GB smoke run that prints only")
    args = parser.parse_args()
    if args.quick:
        args.gigabytes, args.memory_rows, args.worker_rows = 0.2, 8192, 8192

    import jax

    import jdl
    from jdl.data import packed, sources

    rows = math.ceil(args.gigabytes * 1e9 / (FEATURES * 4 + 4))
    parent = Path(args.dir or tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(parent).free
    print(subprocess.run(["df", "-h", str(parent)], capture_output=True, text=True).stdout.strip())
    if free < 1.5 * rows * (FEATURES * 4 + 4):
        sys.exit(f"input_pipeline: {parent} has {free / 1e9:.1f} GB free, needs {1.5 * args.gigabytes:.1f} GB; use --dir")
    load_before = os.getloadavg()
    report_first = {"rows": args.memory_rows, **in_memory_fit(args.memory_rows, seed=0)}
    scratch = Path(tempfile.mkdtemp(prefix="jdl-input-pipeline-", dir=parent))
    report: dict = {"rows": rows, "features": FEATURES, "batch": BATCH, "threads": args.threads}
    try:
        seconds = generate(scratch / "packed", rows, seed=0)
        disk = sum(f.stat().st_size for f in (scratch / "packed").iterdir())
        report["packed"] = {"bytes_on_disk": disk, "generate_seconds": seconds}
        print(f"generated {rows} rows, {disk / 1e9:.2f} GB on disk in {seconds:.0f} s under {scratch}")
        options = sources.ReadOptions(threads=args.threads)
        report["packed"].update(timed_fit(packed.open_packed(scratch / "packed"), None, 1, read_options=options))
        if args.workers:
            part = scratch / "part"
            source = packed.open_packed(scratch / "packed")
            packed.write(part, source.arrays["x"][:args.worker_rows], source.arrays["y"][:args.worker_rows])
            del source
            report["packed_workers"] = {"workers": args.workers, "rows": args.worker_rows, **timed_fit(
                packed.open_packed(part), None, 1,
                read_options=sources.ReadOptions(threads=args.threads, workers=args.workers))}
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    report["in_memory_before"] = report_first
    report["in_memory_after"] = {"rows": args.memory_rows, **in_memory_fit(args.memory_rows, seed=0)}
    load_after = os.getloadavg()
    reference = (report["in_memory_before"]["steps_per_s"] + report["in_memory_after"]["steps_per_s"]) / 2
    report["ratio_packed_vs_in_memory_steps_per_s"] = report["packed"]["steps_per_s"] / reference
    report["all_under_1_gib"] = all(v < LIMIT_BYTES for k in ("packed", "packed_workers")
                                    for v in report.get(k, {}).get("rss_anon_peak_bytes", {}).values())
    report["loadavg_before_after"] = [list(load_before), list(load_after)]
    report["machine"] = machine_info(jax, load_before, load_after)
    report["versions"] = versions(jax, jdl)

    print(f"\n{'variant':<18}{'rows':>10}{'steps':>8}{'steps/s':>10}{'1st dispatch s':>16}  peak RssAnon MiB (process)")
    for name in ("in_memory_before", "packed", "packed_workers", "in_memory_after"):
        if name not in report:
            continue
        r = report[name]
        peaks = ", ".join(f"{k} {v / 2**20:.0f}" for k, v in sorted(r["rss_anon_peak_bytes"].items()))
        print(f"{name:<18}{r.get('rows', rows):>10}{r['steps']:>8}{r['steps_per_s']:>10.1f}{r['first_dispatch_s']:>16.1f}"
              f"  {peaks}")
    print(f"packed / in-memory steps/s: {report['ratio_packed_vs_in_memory_steps_per_s']:.2f}; every packed-path "
          f"process under 1 GiB RssAnon: {report['all_under_1_gib']}; load {load_before[0]:.2f} -> {load_after[0]:.2f}")
    if not args.quick:
        print(f"wrote {write_json('input_pipeline', report)}")


if __name__ == "__main__":
    main()
