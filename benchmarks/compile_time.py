#!/usr/bin/env python
"""What a user waits for before training starts: first-epoch time with compilation, compile counts, start-up.

1. First epoch, compile included, jdl against Keras 3 on its JAX backend, same architecture, Adam(1e-3),
   sparse softmax cross-entropy on logits, no metrics, same batch size and data:
   - MLP 784-512-512-10 (relu), batch 128, 10 000 examples (MNIST test split with --mnist DIR, else
     generated data of the same shape);
   - CNN conv3x3 32 -> maxpool 2 -> conv3x3 64 -> maxpool 2 -> dense 128 -> 10 (relu, valid padding,
     Glorot-uniform kernels as in Keras), 28x28x1, batch 128, the same 10 000 images;
   - LSTM(128) -> dense 10, T = 100, 32 features, batch 64, 2 048 generated sequences.
   The clock runs from after the imports and the data (both measured elsewhere) until fit returns:
   jdl: `Trainer(model, ...)` + `fit(x, y, epochs=1, batch_size=B, verbose=0)` + block_until_ready;
   Keras: `Sequential([...])` + `compile(...)` + `fit(x, y, epochs=1, batch_size=B, verbose=0)`.
   Compilation caches are per process, so every measurement is a fresh subprocess, with JAX's
   persistent compilation cache off; the parent alternates jdl and Keras (the order swaps every
   repeat) and reports medians and the ratio of the medians jdl/Keras, of wall time and (less
   sensitive to other processes' load) of the subprocess's CPU time over the same span.
2. XLA backend compiles, counted with JAX's own event `/jax/core/compile/backend_compile_duration`
   (count, summed seconds and the compiled functions' names) for the MLP on 1 000 examples, 3
   epochs: the first fit; then, in the same process, a second identically configured Trainer (new
   model and Trainer objects) on the same data (goal 0 new compiles), or a Trainer differing only
   in the learning rate (goal 0), or `evaluate` on 11 data sets of sizes 100..110 (goal <= 2).
   Each of the three follow-ups runs in its own fresh process after its own first fit.
3. Start-up, fresh interpreters, medians: `import jdl`, `import jdl; jdl.Trainer`, `jdl --help`
   (`python -m jdl.cli --help`), against `import jax, flax.linen, optax`.

The subprocesses import jdl from --repo (PYTHONPATH=DIR, cwd=DIR; default: this script's
repository) and only the public API, so one script compares two checkouts:

    python benchmarks/compile_time.py --mnist /path/to/mnist      # results/compile_time.json
    python benchmarks/compile_time.py --quick                     # results/compile_time_quick.json
    python benchmarks/compile_time.py --repo ../other --output results/compile_time_after.json

A program, not a test: it prints a table, writes JSON, and exits 0 whatever the ratios.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
EVENT = "/jax/core/compile/backend_compile_duration"
MODELS = {  # name: (description, examples, batch size)
    "mlp": ("MLP 784-512-512-10", 10_000, 128),
    "cnn": ("CNN c32-p2-c64-p2-d128-10, 28x28x1", 10_000, 128),
    "lstm": ("LSTM(128)-10, T 100 x 32", 2_048, 64),
}
STARTUP = {
    "import jax, flax.linen, optax": ["-c", "import jax, flax.linen, optax"],
    "import jdl": ["-c", "import jdl"],
    "import jdl; jdl.Trainer": ["-c", "import jdl; jdl.Trainer"],
    "jdl --help": ["-m", "jdl.cli", "--help"],
}
FOLLOW_UPS = {"same": "second identical Trainer, same data", "lr": "Trainer differing only in learning rate",
              "evaluate": "evaluate on sizes 100..110"}
GOALS = {"same": 0, "lr": 0, "evaluate": 2}


# -- the subprocess side: one measurement in a fresh interpreter, printed as a RESULT line ---------


def fresh_jax() -> Any:
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    return jax


def make_data(model: str, n: int, mnist: str | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if model == "lstm":
        return rng.standard_normal((n, 100, 32), dtype=np.float32), rng.integers(0, 10, n).astype(np.int32)
    if mnist:
        from jdl.data import read_idx

        x = read_idx(Path(mnist) / "t10k-images-idx3-ubyte.gz")[:n].astype(np.float32) / 255.0
        y = read_idx(Path(mnist) / "t10k-labels-idx1-ubyte.gz")[:n].astype(np.int32)
    else:
        x, y = rng.random((n, 28, 28), dtype=np.float32), rng.integers(0, 10, n).astype(np.int32)
    return (x.reshape(len(x), 784) if model == "mlp" else x[..., None]), y


def jdl_model(model: str) -> Any:
    import jdl

    if model == "mlp":
        return jdl.models.MLP(hidden=(512, 512), outputs=10, activation="relu")
    if model == "cnn":
        return jdl.models.CNN(conv=((32, 3), (64, 3)), pool=2, dense=(128,), outputs=10, kernel_init="xavier_uniform")
    return jdl.models.SequenceClassifier(cell="lstm", units=128, outputs=10)


def jdl_fit(model: str, x: np.ndarray, y: np.ndarray, batch: int, epochs: int = 1, lr: float = 1e-3) -> tuple[Any, Any]:
    """A fresh Trainer (and model object) fitted as a user would: (trainer, state)."""
    import jax

    import jdl

    trainer = jdl.Trainer(jdl_model(model), loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(lr), metrics=[])
    state, _ = trainer.fit(x, y, epochs=epochs, batch_size=batch, verbose=0)
    return trainer, jax.block_until_ready(state)


def keras_fit(model: str, x: np.ndarray, y: np.ndarray, batch: int) -> None:
    import keras

    L = keras.layers
    layers = {
        "mlp": [L.Input((784,)), L.Dense(512, activation="relu"), L.Dense(512, activation="relu"), L.Dense(10)],
        "cnn": [L.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
                L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(), L.Dense(128, activation="relu"),
                L.Dense(10)],
        "lstm": [L.Input((100, 32)), L.LSTM(128), L.Dense(10)],
    }[model]
    net = keras.Sequential(layers)
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    net.fit(x, y, epochs=1, batch_size=batch, verbose=0)


class Compiles:
    """Listener for JAX's backend-compile events: (function name, seconds) of each, and phases of them."""

    def __init__(self, jax: Any) -> None:
        self.events: list[tuple[str, float]] = []
        jax.monitoring.register_event_duration_secs_listener(self)

    def __call__(self, event: str, duration: float, **kwargs: Any) -> None:
        if event == EVENT:
            self.events.append((str(kwargs.get("fun_name", "?")), duration))

    def phase(self, fn: Any) -> tuple[Any, dict[str, Any]]:
        start, t0, c0 = len(self.events), time.perf_counter(), time.process_time()
        out = fn()
        new = self.events[start:]
        return out, {"compiles": len(new), "compile_s": sum(d for _, d in new), "wall_s": time.perf_counter() - t0,
                     "cpu_s": time.process_time() - c0,
                     "names": dict(collections.Counter(name for name, _ in new))}


def worker(args: argparse.Namespace) -> dict[str, Any]:
    jax = fresh_jax()
    kind, what = args.worker
    t0 = time.perf_counter()
    if kind == "keras":
        import keras  # noqa: F401  (only the Keras subprocesses import it)
    else:
        import jdl
    out: dict[str, Any] = {"import_s": time.perf_counter() - t0}
    import jdl  # the Keras side reads MNIST with it too

    out.update(jdl_file=jdl.__file__, jdl_version=getattr(jdl, "__version__", "?"))
    counter = Compiles(jax)
    if kind == "compiles":
        x, y = make_data("mlp", 1_000, args.mnist)
        fit = lambda lr=1e-3: jdl_fit("mlp", x, y, 128, epochs=3, lr=lr)  # noqa: E731
        (trainer, state), out["first_fit"] = counter.phase(fit)
        then = {"same": fit, "lr": lambda: fit(2e-3),
                "evaluate": lambda: [trainer.evaluate(state, x[:k], y[:k]) for k in range(100, 111)]}[what]
        _, out["then"] = counter.phase(then)
        return out
    _, n, batch = MODELS[what]
    x, y = make_data(what, n, args.mnist)
    _, phase = counter.phase(lambda: (jdl_fit if kind == "jdl" else keras_fit)(what, x, y, batch))
    return {**out, "first_epoch_s": phase["wall_s"], "first_epoch_cpu_s": phase["cpu_s"], "compiles": phase["compiles"],
            "compile_s": phase["compile_s"]}


# -- the parent: fresh subprocesses, alternating, medians -------------------------------------------


def child_env(repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.update(PYTHONPATH=str(repo), JAX_ENABLE_COMPILATION_CACHE="false", KERAS_BACKEND="jax")
    return env


def run_child(args: argparse.Namespace, *worker_args: str) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE), "--worker", *worker_args] + (["--mnist", args.mnist] if args.mnist else [])
    proc = subprocess.run(cmd, cwd=args.repo, env=child_env(args.repo), capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{' '.join(worker_args)} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    if not Path(result["jdl_file"]).resolve().is_relative_to(args.repo):
        raise RuntimeError(f"the subprocess imported jdl from {result['jdl_file']}, not from --repo {args.repo}")
    return result


def first_epochs(args: argparse.Namespace) -> dict[str, Any]:
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {m: {"jdl": [], "keras": []} for m in MODELS}
    for r in range(args.repeats):
        for model in MODELS:
            for side in ("jdl", "keras") if r % 2 == 0 else ("keras", "jdl"):
                raw[model][side].append(run_child(args, side, model))
                print(f"  repeat {r + 1}/{args.repeats} {model:<4} {side:<5} "
                      f"{raw[model][side][-1]['first_epoch_s']:6.2f} s", file=sys.stderr)
    out = {}
    for model, (desc, n, batch) in MODELS.items():
        keys = ("first_epoch_s", "first_epoch_cpu_s", "compiles", "compile_s")
        med = {side: {key: statistics.median(run[key] for run in runs) for key in keys} for side, runs in raw[model].items()}
        out[model] = {"model": desc, "examples": n, "batch_size": batch, "steps": -(-n // batch), "median": med,
                      "ratio_jdl_over_keras": med["jdl"]["first_epoch_s"] / med["keras"]["first_epoch_s"],
                      "cpu_ratio_jdl_over_keras": med["jdl"]["first_epoch_cpu_s"] / med["keras"]["first_epoch_cpu_s"],
                      "raw": raw[model]}
    return out


def compile_counts(args: argparse.Namespace) -> dict[str, Any]:
    runs = {what: run_child(args, "compiles", what) for what in FOLLOW_UPS}
    firsts = [run["first_fit"] for run in runs.values()]
    return {"config": "MLP 784-512-512-10, 1000 examples, batch 128, 3 epochs, Adam(1e-3); follow-up lr 2e-3",
            "first_fit": {"compiles_median": statistics.median(f["compiles"] for f in firsts),
                          "compile_s_median": statistics.median(f["compile_s"] for f in firsts),
                          "names": firsts[0]["names"], "raw": firsts},
            "follow_ups": {what: {"description": FOLLOW_UPS[what], "goal_max": GOALS[what], **run["then"]}
                           for what, run in runs.items()}}


def startup(args: argparse.Namespace) -> dict[str, Any]:
    raw: dict[str, list[float]] = {name: [] for name in STARTUP}
    names = list(STARTUP)
    for r in range(args.startup_repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, *STARTUP[name]], cwd=args.repo, env=child_env(args.repo), check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
            raw[name].append(time.perf_counter() - t0)
    base = statistics.median(raw[names[0]])
    return {name: {"median_s": statistics.median(s), "ratio_vs_jax_flax_optax": statistics.median(s) / base, "raw_s": s}
            for name, s in raw.items()}


def print_table(report: dict[str, Any]) -> None:
    c = report["config"]
    print(f"\nFirst epoch, compile included (fresh process each, median of {c['repeats']}, alternating; data: {c['data']})")
    print(f"{'model':<36}{'examples':>9}{'batch':>6}{'steps':>6}{'jdl s':>8}{'Keras s':>8}{'jdl/Keras':>10}"
          f"{'CPU-s ratio':>12}{'compiles jdl/Keras':>20}")
    for r in report["first_epoch"].values():
        j, k = r["median"]["jdl"], r["median"]["keras"]
        compiles = f"{j['compiles']:g} / {k['compiles']:g}"
        print(f"{r['model']:<36}{r['examples']:>9}{r['batch_size']:>6}{r['steps']:>6}{j['first_epoch_s']:>8.2f}"
              f"{k['first_epoch_s']:>8.2f}{r['ratio_jdl_over_keras']:>9.2f}x"
              f"{r['cpu_ratio_jdl_over_keras']:>11.2f}x{compiles:>20}")
    cc = report["compiles"]
    print(f"\nBackend compiles ({EVENT}); {cc['config']}")
    print(f"{'phase':<44}{'compiles':>9}{'compile s':>10}{'goal':>7}")
    first = cc["first_fit"]
    print(f"{'first fit (median of 3 fresh processes)':<44}{first['compiles_median']:>9g}{first['compile_s_median']:>10.2f}")
    for f in cc["follow_ups"].values():
        print(f"{'then ' + f['description']:<44}{f['compiles']:>9}{f['compile_s']:>10.2f}{'<= ' + str(f['goal_max']):>7}")
    print("first fit compiled: " + ", ".join(f"{name} x{count}" if count > 1 else name for name, count in first["names"].items()))
    load = report["machine"]["loadavg_1min_before_after"]
    print(f"\nStart-up (fresh interpreter, median of {c['startup_repeats']}, alternating)")
    print(f"{'command':<34}{'median s':>9}{'vs jax+flax+optax':>19}")
    for name, s in report["startup"].items():
        print(f"{name:<34}{s['median_s']:>9.2f}{s['ratio_vs_jax_flax_optax']:>18.2f}x")
    print(f"\n1-minute load average before / after: {load[0]} / {load[1]} on {report['machine']['cpu_count']} CPUs")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, default=HERE.parent.parent, help="checkout whose jdl the subprocesses import")
    p.add_argument("--mnist", metavar="DIR", help="directory with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    p.add_argument("--repeats", type=int, help="fresh processes per first-epoch figure (default 3; 1 with --quick)")
    p.add_argument("--startup-repeats", type=int, help="fresh interpreters per start-up figure (default 7; 3 with --quick)")
    p.add_argument("--quick", action="store_true", help="fewer repeats; writes results/compile_time_quick.json")
    p.add_argument("--output", type=Path, help="JSON path (default results/compile_time.json or *_quick.json)")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.repo = args.repo.resolve()
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.startup_repeats = args.startup_repeats or (3 if args.quick else 7)
    args.mnist = str(Path(args.mnist).resolve()) if args.mnist else None
    name = "compile_time_quick.json" if args.quick else "compile_time.json"
    args.output = args.output or HERE.parent / "results" / name
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker:
        result = worker(args)
        print("RESULT " + json.dumps(result), flush=True)
        return result
    sys.path.insert(0, str(HERE.parent))
    import jax
    from common import machine_info

    load_before = os.getloadavg()
    print(f"compile_time: jdl from {args.repo}; {os.cpu_count()} CPUs, load {load_before[0]:.1f}", file=sys.stderr)
    sections = {"first_epoch": first_epochs(args), "compiles": compile_counts(args), "startup": startup(args)}
    versions = {"python": sys.version.split()[0]}
    versions.update({pkg: importlib.metadata.version(pkg) for pkg in ("jax", "jaxlib", "flax", "optax", "keras", "numpy")})
    some_run = sections["first_epoch"]["mlp"]["raw"]["jdl"][0]
    versions.update(jdl=some_run["jdl_version"], jdl_file=some_run["jdl_file"])
    data = f"MNIST test split from {args.mnist}" if args.mnist else "generated, numpy seed 0, MNIST-shaped"
    report = {"benchmark": "compile_time", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(jax, load_before, os.getloadavg()), "versions": versions,
              "config": {"repo": str(args.repo), "repeats": args.repeats, "startup_repeats": args.startup_repeats,
                         "data": f"{data} (MLP, CNN); LSTM generated N(0, 1)", "quick": args.quick,
                         "persistent_compilation_cache": "off (JAX_COMPILATION_CACHE_DIR unset, jax_enable_compilation_cache False)",
                         "clock": "after imports and data, until fit returns (jdl: Trainer + fit; Keras: build + compile + fit)"},
              **sections}
    print_table(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return report


if __name__ == "__main__":
    main()
