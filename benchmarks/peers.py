#!/usr/bin/env python
"""jdl against its peers on CPU: one training epoch of three models, and two gradients in a user's own loop.

Workloads (same data for every framework: numpy seed 0; or MNIST with --mnist for mlp/cnn):
- mlp:  MLP 784-512-512-10 relu, batch 128, Adam(1e-3), softmax cross-entropy, one epoch of n examples.
- cnn:  conv3×3 32 relu, maxpool 2, conv3×3 64 relu, maxpool 2, dense 128 relu, dense 10 on 28×28×1, batch 128.
- lstm: LSTM(128) over T 100 steps of 32 features, last output -> dense 10, batch 64.
- lstm_layer: the LSTM layer alone (batch 64, T 100, 32 -> 128, loss mean of the output sequence),
  forward + backward in a user's own loop: `jax.jit(jax.value_and_grad)` against `torch.nn.LSTM`.
- cnn_grad: the cnn with a dense 256 head, forward + backward of the mean cross-entropy of one batch
  of 128, `jax.jit(jax.value_and_grad)` (outside fit's scan) against torch.

Frameworks of the epoch workloads: `jdl.Trainer.fit` (from a warmed-up state, numpy data each call),
Keras 3 `Model.fit` on the JAX backend (default steps_per_execution 1 and a tuned one), a PyTorch
eager loop (torch.set_num_threads, default 2), and the floor: a hand-written jit + `lax.scan` epoch of
the same Flax module with Optax (data on the device once, the permutation drawn on the device).

Every (workload, framework) runs in its own worker process (Keras needs KERAS_BACKEND=jax, and torch's
and XLA's thread pools must not share a process). The driver warms every worker up, then sends
"run" to each in turn, rotating the order every repeat, and reads back wall and process-CPU seconds
(all threads) of one epoch (or `--calls` gradient calls). It reports medians, minima, CPU medians and
the ratios jdl/peer of each, plus the median of the per-repeat paired ratios, prints a table and
writes results/peers.json (machine, versions, load average before and after).

    python benchmarks/peers.py                          # everything, 5 repeats
    python benchmarks/peers.py --quick                  # small n, 3 repeats, results/peers_quick.json
    python benchmarks/peers.py --workloads mlp cnn --frameworks jdl torch --repeats 7

A program, not a test: it prints a table, writes JSON, and exits 0 whatever the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import RESULTS  # noqa: E402

EPOCH_WORKLOADS = ("mlp", "cnn", "lstm")
GRAD_WORKLOADS = ("lstm_layer", "cnn_grad")
WORKLOADS = EPOCH_WORKLOADS + GRAD_WORKLOADS
EPOCH_FRAMEWORKS = ("jdl", "keras", "keras_tuned", "torch", "raw")
GRAD_FRAMEWORKS = ("jdl", "torch")
LABELS = {"jdl": "jdl Trainer.fit", "jdl_base": "jdl Trainer.fit (baseline)", "keras": "Keras 3 fit (spe 1)", "keras_tuned": "Keras 3 fit (spe {spe})",
          "torch": "PyTorch eager", "raw": "raw jit+scan (Flax+Optax)"}
GRAD_LABELS = {"jdl": "jdl jax.jit(jax.grad)", "jdl_base": "jdl jax.jit(jax.grad) (baseline)", "torch": "PyTorch forward+backward"}
BATCH = {"mlp": 128, "cnn": 128, "lstm": 64, "lstm_layer": 64, "cnn_grad": 128}
DEFAULT_N = {"mlp": 10240, "cnn": 4096, "lstm": 2048}
QUICK_N = {"mlp": 1024, "cnn": 512, "lstm": 256}
TIME, FEATURES, UNITS, CLASSES = 100, 32, 128, 10


# -- data and models, shared by every worker ---------------------------------------------------------


def make_data(workload: str, n: int, seed: int, mnist: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y int32) of the workload, channels-last images (n, 28, 28, 1), flat (n, 784) or sequences (n, T, F)."""
    if workload == "lstm_layer":
        return np.random.default_rng(seed).normal(size=(BATCH[workload], TIME, FEATURES)).astype(np.float32), None
    rows = BATCH[workload] if workload == "cnn_grad" else n
    if mnist and workload in ("mlp", "cnn", "cnn_grad"):
        import jdl

        data = jdl.data.load("mnist", path=mnist, split="train")
        x = np.asarray(data.x_train[:rows], np.float32).reshape(-1, 28, 28, 1)
        y = np.asarray(data.y_train[:rows], np.int32)
    else:
        rng = np.random.default_rng(seed)
        shape = (rows, TIME, FEATURES) if workload == "lstm" else (rows, 28, 28, 1)
        x = (rng.normal(size=shape) if workload == "lstm" else rng.random(shape)).astype(np.float32)
        y = rng.integers(0, CLASSES, size=rows).astype(np.int32)
    return (x.reshape(len(x), -1) if workload == "mlp" else x), y


def jdl_model(workload: str):
    import jdl

    if workload == "mlp":
        return jdl.models.MLP(hidden=(512, 512), outputs=CLASSES, activation="relu")
    if workload in ("cnn", "cnn_grad"):
        return jdl.models.CNN(conv=((32, 3), (64, 3)), pool=2, dense=(256,) if workload == "cnn_grad" else (128,),
                              outputs=CLASSES)
    if workload == "lstm":
        return jdl.models.SequenceClassifier(cell="lstm", units=UNITS, outputs=CLASSES)
    from jdl.nn.cells import LSTMCell
    from jdl.nn.recurrent import Recurrent

    return Recurrent(LSTMCell(UNITS), return_sequences=True)


def torch_model(workload: str):
    import torch
    from torch import nn

    if workload == "mlp":
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, CLASSES))
    if workload in ("cnn", "cnn_grad"):
        width = 256 if workload == "cnn_grad" else 128
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, width), nn.ReLU(),
                             nn.Linear(width, CLASSES))

    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(FEATURES, UNITS, batch_first=True)
            self.head = nn.Linear(UNITS, CLASSES)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    if workload == "lstm":
        return LSTMClassifier()
    return nn.LSTM(FEATURES, UNITS, batch_first=True)


def keras_model(workload: str):
    import keras
    from keras import layers

    if workload == "mlp":
        return keras.Sequential([keras.Input((784,)), layers.Dense(512, activation="relu"),
                                 layers.Dense(512, activation="relu"), layers.Dense(CLASSES)])
    if workload == "cnn":
        return keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                                 layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
                                 layers.Dense(128, activation="relu"), layers.Dense(CLASSES)])
    return keras.Sequential([keras.Input((TIME, FEATURES)), layers.LSTM(UNITS), layers.Dense(CLASSES)])


# -- the runners: each returns (warm-up seconds, run()) where run() blocks until its work is done ------


def jdl_epoch(workload: str, x, y, seed: int):
    import jax

    import jdl

    batch = BATCH[workload]
    trainer = jdl.Trainer(jdl_model(workload), loss="sparse_categorical_crossentropy",
                          optimizer=jdl.optim.adam(1e-3), metrics=[])
    state, _ = trainer.fit(x, y, epochs=1, batch_size=batch, verbose=0, seed=seed)
    state = jax.block_until_ready(state)

    def run():
        new, _ = trainer.fit(x, y, epochs=1, batch_size=batch, verbose=0, seed=seed, state=state)
        jax.block_until_ready(new.params)

    return run


def raw_epoch(workload: str, x, y, seed: int):
    """The floor: one jit per epoch, permutation and gathers on the device, the steps in one lax.scan."""
    import jax
    import jax.numpy as jnp
    import optax

    model, tx, batch = jdl_model(workload), optax.adam(1e-3), BATCH[workload]
    steps = len(x) // batch
    params = jax.jit(model.init)(jax.random.PRNGKey(seed), jnp.asarray(x[:1]))
    carry = (params, tx.init(params), jax.random.PRNGKey(seed + 1))
    xd, yd = jax.device_put(x), jax.device_put(y)

    def loss_fn(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, xb), yb).mean()

    @jax.jit
    def epoch(carry, index, x, y):
        params, opt_state, key = carry
        order = jax.random.permutation(jax.random.fold_in(key, index), len(x))[: steps * batch]

        def body(c, idx):
            params, opt_state = c
            loss, grads = jax.value_and_grad(loss_fn)(params, jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0))
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), order.reshape(steps, batch))
        return (params, opt_state, key), losses.mean()

    jax.block_until_ready(epoch(carry, 0, xd, yd))

    def run():
        jax.block_until_ready(epoch(carry, 1, xd, yd))

    return run


def keras_epoch(workload: str, x, y, seed: int, spe: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras_model(workload)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=spe)
    batch = BATCH[workload]
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)

    def run():
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)

    return run


def torch_epoch(workload: str, x, y, seed: int, threads: int):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = torch_model(workload)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x)
    yt = torch.from_numpy(y.astype(np.int64))
    batch, loss_fn = BATCH[workload], torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)

    def run():
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt) - batch + 1, batch):
            idx = order[start:start + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        loss.item()

    run()
    return run


def jdl_grad(workload: str, x, y, seed: int, calls: int):
    import jax
    import jax.numpy as jnp
    import optax

    model = jdl_model(workload)
    xd = jnp.asarray(x)
    params = jax.jit(model.init)(jax.random.PRNGKey(seed), xd)
    if workload == "lstm_layer":
        step = jax.jit(jax.value_and_grad(lambda p, xb: jnp.mean(model.apply(p, xb))))
        args = (xd,)
    else:
        yd = jnp.asarray(y)
        step = jax.jit(jax.value_and_grad(
            lambda p, xb, yb: optax.softmax_cross_entropy_with_integer_labels(model.apply(p, xb), yb).mean()))
        args = (xd, yd)
    jax.block_until_ready(step(params, *args))

    def run():
        for _ in range(calls):
            out = step(params, *args)
        jax.block_until_ready(out)

    return run


def torch_grad(workload: str, x, y, seed: int, calls: int, threads: int):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = torch_model(workload)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x)
    yt = None if y is None else torch.from_numpy(y.astype(np.int64))

    def once():
        for p in model.parameters():
            p.grad = None
        if workload == "lstm_layer":
            loss = model(xt)[0].mean()
        else:
            loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        return loss

    once()

    def run():
        for _ in range(calls):
            loss = once()
        loss.item()

    return run


def flops_per_step(workload: str) -> float:
    """Multiply-adds of the forward pass × 2 (FLOPs) × 3 (forward + backward), per step of the workload's batch."""
    b = BATCH[workload]
    if workload == "mlp":
        macs = 784 * 512 + 512 * 512 + 512 * CLASSES
    elif workload in ("cnn", "cnn_grad"):
        width = 256 if workload == "cnn_grad" else 128
        macs = 26 * 26 * 32 * 9 + 11 * 11 * 64 * 9 * 32 + 5 * 5 * 64 * width + width * CLASSES
    else:
        macs = TIME * (FEATURES + UNITS) * 4 * UNITS + (UNITS * CLASSES if workload == "lstm" else 0)
    return 6.0 * b * macs


def floor_worker(args: argparse.Namespace) -> dict[str, Any]:
    """The machine's matmul peak and memory bandwidth, and per workload the FLOPs and XLA's bytes of one step."""
    import jax
    import jax.numpy as jnp
    import optax

    def best(fn, *a, repeats=5):
        jax.block_until_ready(fn(*a))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*a))
            times.append(time.perf_counter() - t0)
        return min(times)

    m = jnp.ones((2048, 2048), jnp.float32)
    peak = 2 * 2048 ** 3 / best(jax.jit(lambda a, b: a @ b), m, m) / 1e9
    big = jnp.ones((2 ** 26,), jnp.float32)
    bandwidth = 2 * big.nbytes / best(jax.jit(lambda a: a * 2.0 + 1.0), big) / 1e9
    measured = {"matmul_gflops": peak, "bandwidth_gbs": bandwidth}
    peak, bandwidth = args.peak_gflops or peak, args.bandwidth_gbs or bandwidth
    out = {"measured": measured, "matmul_gflops": peak, "bandwidth_gbs": bandwidth,
           "method": "best of 5: jax.jit f32 2048³ matmul; a*2+1 over 256 MiB (read + write); the floors use "
                     "--peak-gflops / --bandwidth-gbs where given, else these measurements", "workloads": {}}
    for workload in WORKLOADS:
        x, y = make_data(workload, BATCH[workload], args.seed, None)
        model = jdl_model(workload)
        xb = jnp.asarray(x[:BATCH[workload]])
        params = jax.jit(model.init)(jax.random.PRNGKey(0), xb)
        tx = optax.adam(1e-3)
        if workload == "lstm_layer":
            def step(p, opt, xb, yb):
                return jax.value_and_grad(lambda q: jnp.mean(model.apply(q, xb)))(p)
        else:
            def step(p, opt, xb, yb):
                loss, g = jax.value_and_grad(
                    lambda q: optax.softmax_cross_entropy_with_integer_labels(model.apply(q, xb), yb).mean())(p)
                if workload in GRAD_WORKLOADS:
                    return loss, g
                updates, opt = tx.update(g, opt, p)
                return optax.apply_updates(p, updates), opt
        yb = jnp.zeros((BATCH[workload],), jnp.int32) if y is None else jnp.asarray(y[:BATCH[workload]])
        cost = jax.jit(step).lower(params, tx.init(params), xb, yb).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops, nbytes = flops_per_step(workload), float(cost.get("bytes accessed", float("nan")))
        steps = args.n[workload] // BATCH[workload] if workload in EPOCH_WORKLOADS else 1
        out["workloads"][workload] = {
            "flops_per_step": flops, "xla_flops_per_step": float(cost.get("flops", float("nan"))),
            "xla_bytes_per_step": nbytes, "steps": steps,
            "flop_floor_ms": 1e3 * steps * flops / (peak * 1e9),
            "byte_floor_ms": 1e3 * steps * nbytes / (bandwidth * 1e9),
            "note": "XLA's cost analysis counts a while loop's body once (LSTM: one of T steps)"
                    if "lstm" in workload else ""}
    return out


def run_floors(args: argparse.Namespace) -> dict[str, Any] | None:
    command = [sys.executable, str(Path(__file__).resolve()), "--floor-worker", "--seed", str(args.seed)]
    command += [f"--peak-gflops={args.peak_gflops}"] if args.peak_gflops else []
    command += [f"--bandwidth-gbs={args.bandwidth_gbs}"] if args.bandwidth_gbs else []
    command += [f"--n-{k}={v}" for k, v in args.n.items()]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"floors: failed ({done.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
        return None
    floors = json.loads(done.stdout.strip().splitlines()[-1])
    m = floors["measured"]
    print(f"floors: measured matmul {m['matmul_gflops']:.0f} GFLOP/s, memory {m['bandwidth_gbs']:.1f} GB/s; floors use "
          f"{floors['matmul_gflops']:.0f} GFLOP/s and {floors['bandwidth_gbs']:.1f} GB/s", flush=True)
    return floors


def worker(args: argparse.Namespace) -> None:
    """Build one (workload, framework), warm it up, then answer "run" lines with one timing each."""
    workload, framework = args.worker
    x, y = make_data(workload, args.n[workload] if workload in args.n else 0, args.seed, args.mnist)
    t0 = time.perf_counter()
    if workload in GRAD_WORKLOADS:
        run = (jdl_grad(workload, x, y, args.seed, args.calls) if framework.startswith("jdl")
               else torch_grad(workload, x, y, args.seed, args.calls, args.torch_threads))
    elif framework.startswith("jdl"):
        run = jdl_epoch(workload, x, y, args.seed)
    elif framework == "raw":
        run = raw_epoch(workload, x, y, args.seed)
    elif framework in ("keras", "keras_tuned"):
        run = keras_epoch(workload, x, y, args.seed, 1 if framework == "keras" else args.keras_spe)
    else:
        run = torch_epoch(workload, x, y, args.seed, args.torch_threads)
    warm = time.perf_counter() - t0
    print(json.dumps({"ready": True, "warmup_s": warm, "versions": worker_versions(framework)}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        w0, c0 = time.perf_counter(), time.process_time()
        run()
        print(json.dumps({"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0}), flush=True)


def worker_versions(framework: str) -> dict[str, str]:
    found = {}
    for name in (("torch",) if framework == "torch" else ("jax", "jaxlib", "flax", "optax", "jdl")
                 + (("keras",) if framework.startswith("keras") else ())):
        try:
            found[name] = __import__(name).__version__
        except Exception as err:  # noqa: BLE001 - reported, not fatal
            found[name] = f"unavailable ({type(err).__name__})"
    if "jdl" in found:
        found["jdl_path"] = str(Path(__import__("jdl").__file__).parent)
    return found


# -- the driver --------------------------------------------------------------------------------------------


class Worker:
    """A worker process for (workload, framework); `time()` runs one repeat there and returns (wall, cpu)."""

    def __init__(self, workload: str, framework: str, args: argparse.Namespace):
        env = dict(os.environ)
        if framework.startswith("keras"):
            env["KERAS_BACKEND"] = "jax"
        if framework == "jdl_base":
            env["PYTHONPATH"] = os.pathsep.join([args.baseline, env.get("PYTHONPATH", "")])
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", workload, framework,
                   "--seed", str(args.seed), "--calls", str(args.calls), "--keras-spe", str(args.keras_spe),
                   "--torch-threads", str(args.torch_threads)]
        command += [f"--n-{k}={v}" for k, v in args.n.items()]
        if args.mnist:
            command += ["--mnist", args.mnist]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.ready: dict[str, Any] = {}

    def wait_ready(self) -> dict[str, Any]:
        self.ready = self._read()
        return self.ready

    def _read(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with code {self.process.wait()}")
        return json.loads(line)

    def time(self) -> tuple[float, float]:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        answer = self._read()
        return answer["wall"], answer["cpu"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)


def measure(workload: str, frameworks: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Warm up every framework's worker, then alternate them for `repeats` rounds; per-framework samples."""
    started, workers, errors = {f: Worker(workload, f, args) for f in frameworks}, {}, {}
    for framework, w in started.items():  # the workers warm up (import, compile) concurrently
        try:
            w.wait_ready()
            workers[framework] = w
            print(f"  {workload}/{framework}: ready after {w.ready['warmup_s']:.1f} s", flush=True)
        except Exception as err:  # noqa: BLE001 - one framework failing must not lose the others
            errors[framework] = f"{type(err).__name__}: {err}"
            print(f"  {workload}/{framework}: FAILED ({errors[framework]})", file=sys.stderr, flush=True)
    names = list(workers)
    wall = {k: [] for k in names}
    cpu = {k: [] for k in names}
    load = [os.getloadavg()[0]]
    try:
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                w, c = workers[name].time()
                wall[name].append(w)
                cpu[name].append(c)
            load.append(os.getloadavg()[0])
    finally:
        for w in workers.values():
            w.close()
    per = 1 if workload in EPOCH_WORKLOADS else args.calls
    out = {}
    for name in names:
        ms = [1e3 * v / per for v in wall[name]]
        cms = [1e3 * v / per for v in cpu[name]]
        out[name] = {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
                     "cpu_median_ms": statistics.median(cms), "cpu_min_ms": min(cms), "ms": ms, "cpu_ms": cms,
                     "warmup_s": workers[name].ready["warmup_s"], "versions": workers[name].ready["versions"]}
    if "jdl" in out:
        for name in names:
            if name != "jdl" and out[name]["ms"]:
                out[name]["jdl_ratio"] = ratios(out["jdl"], out[name])
    return {"results": out, "errors": errors, "loadavg_1min": load,
            "per": "epoch" if workload in EPOCH_WORKLOADS else f"call (mean of {args.calls} per repeat)"}


def ratios(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """jdl/peer: of medians, of minima, of CPU medians, and the median of the per-repeat paired ratios."""
    return {"of_medians": a["median_ms"] / b["median_ms"], "of_minima": a["min_ms"] / b["min_ms"],
            "of_cpu_medians": a["cpu_median_ms"] / b["cpu_median_ms"],
            "paired_median": statistics.median(x / y for x, y in zip(a["ms"], b["ms"]))}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    p.add_argument("--frameworks", nargs="+", choices=EPOCH_FRAMEWORKS, default=list(EPOCH_FRAMEWORKS),
                   help="frameworks of the epoch workloads (the gradient workloads run jdl and torch when listed)")
    p.add_argument("--repeats", type=int, default=None, help="alternating rounds (default 5; 3 with --quick)")
    p.add_argument("--calls", type=int, default=5, help="gradient calls per repeat of lstm_layer / cnn_grad")
    p.add_argument("--keras-spe", type=int, default=16, help="steps_per_execution of the tuned Keras row")
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline", metavar="DIR", default=None,
                   help="a directory holding another jdl package (e.g. `git archive <commit> jdl`): adds its rows "
                        "as jdl_base, alternating with the current jdl in the same run (before/after)")
    p.add_argument("--no-floors", dest="floors", action="store_false",
                   help="skip the floor worker (matmul peak, memory bandwidth, FLOPs and bytes per step)")
    p.add_argument("--peak-gflops", type=float, default=None,
                   help="matmul peak for the FLOP floors (default: measured now; 360 on an idle machine of this kind)")
    p.add_argument("--bandwidth-gbs", type=float, default=None, help="memory bandwidth for the byte floors (default: measured)")
    p.add_argument("--mnist", metavar="DIR", default=None, help="MNIST train images from DIR for mlp / cnn")
    for workload in EPOCH_WORKLOADS:
        p.add_argument(f"--n-{workload}", type=int, default=None,
                       help=f"examples of the {workload} epoch (default {DEFAULT_N[workload]}; {QUICK_N[workload]} quick)")
    p.add_argument("--quick", action="store_true", help="small epochs, 3 repeats: a smoke run")
    p.add_argument("--out", default=None, help="JSON path (default results/peers.json; peers_quick.json with --quick)")
    p.add_argument("--label", default="", help="free text stored in the JSON (e.g. 'before', a commit)")
    p.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "FRAMEWORK"), help=argparse.SUPPRESS)
    p.add_argument("--floor-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = QUICK_N if args.quick else DEFAULT_N
    args.n = {w: getattr(args, f"n_{w}") or sizes[w] for w in EPOCH_WORKLOADS}
    for w, n in args.n.items():
        n -= n % BATCH[w]
        if n < BATCH[w]:
            p.error(f"--n-{w} must be at least the batch size {BATCH[w]}, got {n}")
        args.n[w] = n
    args.repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
    if args.repeats < 1 or args.calls < 1 or args.keras_spe < 1 or args.torch_threads < 1:
        p.error("--repeats, --calls, --keras-spe and --torch-threads must be positive")
    args.out = Path(args.out) if args.out else RESULTS / ("peers_quick.json" if args.quick else "peers.json")
    return args


def print_table(report: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\n{'workload':<11}{'framework':<34}{'median ms':>10}{'min':>9}{'cpu ms':>9}"
          f"{'jdl/x med':>10}{'jdl/x min':>10}{'jdl/x cpu':>10}{'paired':>8}")
    for workload, block in report["workloads"].items():
        for name, r in block["results"].items():
            label = (GRAD_LABELS if workload in GRAD_WORKLOADS else LABELS)[name].format(spe=args.keras_spe)
            q = r.get("jdl_ratio")
            cols = (f"{q['of_medians']:>10.2f}{q['of_minima']:>10.2f}{q['of_cpu_medians']:>10.2f}{q['paired_median']:>8.2f}"
                    if q else "")
            print(f"{workload:<11}{label:<34}{r['median_ms']:>10.1f}{r['min_ms']:>9.1f}{r['cpu_median_ms']:>9.1f}{cols}")
        for name, err in block["errors"].items():
            print(f"{workload:<11}{name:<34} failed: {err}")
        f = (report.get("floors") or {}).get("workloads", {}).get(workload)
        if f:
            print(f"{workload:<11}{'floor (FLOPs at peak | bytes)':<34}{max(f['flop_floor_ms'], f['byte_floor_ms']):>10.1f}"
                  f"   ({f['flop_floor_ms']:.1f} ms of FLOPs, {f['byte_floor_ms']:.1f} ms of XLA's bytes)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    if args.floor_worker:
        print(json.dumps(floor_worker(args)))
        return {}
    load_before = os.getloadavg()
    print(f"peers: {args.repeats} alternating repeats; n = {args.n}; torch threads {args.torch_threads}; "
          f"Keras tuned steps_per_execution {args.keras_spe}; load average {load_before[0]:.1f}", flush=True)
    floors = run_floors(args) if args.floors else None
    workloads = {}
    for workload in args.workloads:
        frameworks = ([f for f in GRAD_FRAMEWORKS if f in args.frameworks] if workload in GRAD_WORKLOADS
                      else list(args.frameworks))
        if args.baseline and "jdl" in frameworks:
            frameworks.insert(frameworks.index("jdl") + 1, "jdl_base")
        workloads[workload] = measure(workload, frameworks, args)
        write_report(args, load_before, floors, workloads, partial=True)
    report = write_report(args, load_before, floors, workloads, partial=False)
    print_table(report, args)
    print(f"\nwrote {args.out}")
    return report


def write_report(args: argparse.Namespace, load_before, floors, workloads, *, partial: bool) -> dict[str, Any]:
    """Write the JSON (after every workload, so an interrupted run keeps what it measured)."""
    import platform

    load_after = os.getloadavg()
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for block in workloads.values():
        for r in block["results"].values():
            versions.update(r["versions"])
    report = {
        "benchmark": "peers", "label": args.label,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(load_before, load_after), "versions": versions,
        "config": {"repeats": args.repeats, "n": args.n, "batch": BATCH, "calls": args.calls,
                   "keras_tuned_steps_per_execution": args.keras_spe, "torch_threads": args.torch_threads,
                   "seed": args.seed, "data": f"MNIST from {args.mnist}" if args.mnist else "random (numpy seed)",
                   "quick": args.quick,
                   "timing": "one worker process per (workload, framework), warmed up; rounds alternate with the "
                             "order rotating; wall and process CPU (all threads) per epoch or per call"},
        "caveat": "shared 2-core machine: other processes' load inflates wall times (torch's most); compare the "
                  "minima and CPU medians as well as the medians",
        "floors": floors, "partial": partial,
        "workloads": workloads,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def machine(load_before, load_after) -> dict[str, Any]:
    import platform

    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu_model": model, "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)), "loadavg_1min_before_after": [load_before[0], load_after[0]]}


if __name__ == "__main__":
    main()
