"""The depth study's cost: the scanned, shared-program path against the per-configuration flax path it replaced.

Runs one slice of the full grid (default: relu, all four initializers, depth 30, 200 steps, width 256, 512
examples, batch norm off) through both paths, alternating, after a one-step warm-up of each (compiles are
timed: each path compiles its programs again for the timed step count), and prints wall and CPU seconds per configuration,
the ratio, and the achieved GFLOP/s (2·n·fan_in·fan_out per layer and direction, three directions per step).
Writes benchmarks/results/depth_study.json. `--full` instead times the whole `jdl study depth` grid once
(5 activations x 4 initializers x depths 2, 5, 10, 20, 30 x batch norm off/on, 200 steps: 200
configurations) with its peak RSS, and writes benchmarks/results/depth_study_full.json.

    python benchmarks/depth_study.py [--repeats 1] [--depth 30] [--activation relu] [--batch-norm]
    python benchmarks/depth_study.py --full
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import jax

from jdl.diagnostics import studies
from tests.diagnostics.depth_reference import reference_depth_study


def flops(depth: int, width: int, examples: int, steps: int, features: int = 64, classes: int = 10) -> float:
    """Matmul FLOPs of one configuration: forward + two backward products per layer per step, plus two more gradients."""
    per_pass = 2 * examples * (features * width + depth * width * width + width * classes)
    return 3 * per_pass * (steps + 2)


def full_grid(steps: int) -> dict:
    """Wall and CPU seconds, GFLOP/s and peak RSS of the full depth study (the grid `jdl study depth` runs)."""
    depths, activations, norms = (2, 5, 10, 20, 30), 5, 2
    wall, cpu = time.perf_counter(), time.process_time()
    result = studies.depth_study(depths=depths, batch_norm=(False, True), steps=steps)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    work = activations * norms * len(studies.INITS) * sum(flops(d, 256, 512, steps) for d in depths)
    return {"configurations": len(result["records"]), "steps": steps, "wall_s": wall, "cpu_s": cpu,
            "matmul_tflop": work / 1e12, "gflops_per_wall_s": work / wall / 1e9,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "floor_s_at_peak_gflops": {str(peak): work / peak / 1e9 for peak in (300, 360)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--depth", type=int, default=30)
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--batch-norm", action="store_true")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default=None)
    parser.add_argument("--full", action="store_true", help="time the whole jdl study depth grid once")
    args = parser.parse_args()
    if args.full:
        row = full_grid(args.steps)
        print(f"full depth study: {row['configurations']} configurations x {args.steps} steps: {row['wall_s']:.0f} s wall, "
              f"{row['cpu_s']:.0f} s CPU, {row['gflops_per_wall_s']:.0f} GFLOP/s, peak RSS {row['peak_rss_mb']:.0f} MB, "
              f"load {os.getloadavg()[0]:.1f}")
        out = Path(args.out or "benchmarks/results/depth_study_full.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                                   "jax": jax.__version__, "load_average_1m_at_end": os.getloadavg()[0], **row},
                                  indent=2))
        return
    grid = dict(activations=(args.activation,), inits=studies.INITS, depths=(args.depth,),
                batch_norm=(args.batch_norm,), residual=(False,))
    options = dict(width=256, steps=args.steps, learning_rate=0.01, clipnorm=None, examples=512)
    paths = {"scanned, shared program": lambda: studies.depth_study(**grid, **options),
             "per configuration (before)": lambda: reference_depth_study(**grid, **options)}
    studies.depth_study(**grid, **{**options, "steps": 1})  # warm-up: JAX, the data set, both code paths' imports
    reference_depth_study(**grid, **{**options, "steps": 1})
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, run in paths.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            timings[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    configs = len(studies.INITS)
    work = configs * flops(args.depth, 256, 512, args.steps)
    rows = {}
    for name, runs in timings.items():
        wall = sorted(w for w, _ in runs)[len(runs) // 2]
        cpu = sorted(c for _, c in runs)[len(runs) // 2]
        rows[name] = {"wall_s": wall, "cpu_s": cpu, "wall_s_per_config": wall / configs,
                      "gflops_per_wall_s": work / wall / 1e9, "gflops_per_cpu_s": work / cpu / 1e9}
    before, after = rows["per configuration (before)"], rows["scanned, shared program"]
    print(f"{configs} configurations: {args.activation}, depth {args.depth}, batch norm {args.batch_norm}, "
          f"{args.steps} steps, load {os.getloadavg()[0]:.1f}")
    print(f"{'path':<28}{'wall s':>9}{'cpu s':>9}{'GFLOP/wall s':>14}{'GFLOP/cpu s':>13}")
    for name, row in rows.items():
        print(f"{name:<28}{row['wall_s']:>9.1f}{row['cpu_s']:>9.1f}{row['gflops_per_wall_s']:>14.0f}"
              f"{row['gflops_per_cpu_s']:>13.0f}")
    print(f"after / before: wall {after['wall_s'] / before['wall_s']:.2f}x, cpu {after['cpu_s'] / before['cpu_s']:.2f}x")
    result = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "jax": jax.__version__,
              "load_average_1m_at_end": os.getloadavg()[0], "args": vars(args), "configurations": configs,
              "matmul_tflop": work / 1e12, "paths": rows, "ratio_wall": after["wall_s"] / before["wall_s"],
              "ratio_cpu": after["cpu_s"] / before["cpu_s"]}
    out = Path(args.out or "benchmarks/results/depth_study.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
