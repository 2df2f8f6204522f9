#!/usr/bin/env python
"""Overhead of `jdl.Trainer.fit` against a hand-written Flax + Optax loop (jax.jit + jax.lax.scan).

Both train the same MLP 784-512-512-10 (relu, Glorot-uniform kernels) with Adam(1e-3) on
softmax cross-entropy over integer labels, batch 128, on the same data:

- jdl: `Trainer(MLP(...)).fit(x, y, epochs=E, batch_size=128, verbose=0, state=state)`, which puts
  the data on the device, draws a permutation per epoch and runs the epoch's steps in one compiled
  `lax.scan` (up to 256 steps per dispatch), carrying a non-finite flag (a failed epoch is re-run guarded).
- reference: one `jax.jit` function per epoch that draws the permutation, gathers each batch by
  index from the on-device data inside a `lax.scan` over the epoch's batches, and applies
  `optax.adam`; a Python loop over epochs; no host work between epochs.

n = 10 112 = 79·128 by default, so every batch is full and neither side has a remainder batch
(with --mnist the 10 000 test images are cut to 9 984 = 78·128 for the same reason).

Method (../shared/PERFORMANCE.md): warm up (compile) every variant, then time each variant's
E-epoch run from the same warmed-up state, with `jax.block_until_ready`, repeating and alternating
the variants in one process (the order rotates every repeat); report medians in ms per step, the
jdl/reference ratio (median of the per-repeat ratios, and the ratio of the medians), and the FLOP
floor 6·params·batch / 360 GFLOP/s. With the breakdown (on by default) it also times fit's compiled
chunks without fit's host work (unguarded, as fit runs them, and where-guarded, as fit did before and
does when re-running a failed epoch), the reference with each guard form (the finite flag alone,
jnp.where, lax.cond), fit for one epoch (to split per-call from per-epoch cost), fit's host-side
pieces one by one, the copies XLA put in each compiled scan body, and compilations while timing.

    python benchmarks/fit_overhead.py                        # full size, writes results/fit_overhead.json
    python benchmarks/fit_overhead.py --quick                # smoke run, writes results/fit_overhead_quick.json
    python benchmarks/fit_overhead.py --mnist /path/to/mnist --repeats 9 --epochs 3

A program, not a test: it prints a table, writes JSON, and exits 0 whatever the ratio.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_info, median_time, timed  # noqa: E402

CEILING_GFLOPS = 360.0  # f32 jax.jit matmul on this machine kind (../shared/PERFORMANCE.md)
GOAL_RATIO = 1.05
RESULTS = Path(__file__).resolve().parent / "results"


# -- arguments and data ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per variant (default 7; 3 with --quick)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per timed call (default 3; 2 with --quick)")
    p.add_argument("--n", type=int, default=None, help="examples (default 10112 = 79*128; 1024 with --quick)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden widths (default 512 512; 64 64 with --quick)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mnist", metavar="DIR", default=None,
                   help="use the real MNIST test split from DIR (jdl.data.load('mnist', path=DIR, split='test'))")
    p.add_argument("--quick", action="store_true", help="tiny sizes, few repeats: a smoke run")
    p.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                   help="time only fit and the reference (skip the profiling variants and host-side timings)")
    p.add_argument("--out", default=None, help="JSON path (default results/fit_overhead.json, *_quick.json with --quick)")
    args = p.parse_args(argv)
    quick = args.quick
    args.repeats = args.repeats if args.repeats is not None else (3 if quick else 7)
    args.epochs = args.epochs if args.epochs is not None else (2 if quick else 3)
    args.hidden = tuple(args.hidden) if args.hidden is not None else ((64, 64) if quick else (512, 512))
    if args.n is None:
        args.n = 8 * args.batch_size if quick else 79 * args.batch_size
    args.out = Path(args.out) if args.out else RESULTS / ("fit_overhead_quick.json" if quick else "fit_overhead.json")
    if args.repeats < 1 or args.epochs < 1 or args.batch_size < 1:
        p.error("--repeats, --epochs and --batch-size must be positive")
    return args


def make_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    """(x (n, 784) float32, y (n,) int32, description); n a multiple of the batch size."""
    if args.mnist:
        import jdl

        data = jdl.data.load("mnist", path=args.mnist, split="test", flatten=True)
        x, y = np.asarray(data.x_test, np.float32), np.asarray(data.y_test, np.int32)
        n = min(args.n, len(x)) if args.n else len(x)
        n -= n % args.batch_size
        return x[:n], y[:n], f"MNIST test split from {args.mnist}, first {n} of {len(x)} (a multiple of the batch)"
    n = args.n - args.n % args.batch_size
    rng = np.random.default_rng(args.seed)
    x = rng.random((n, 784), dtype=np.float32)  # uniform [0, 1), like pixel intensities
    y = rng.integers(0, 10, size=n).astype(np.int32)
    return x, y, f"random: x ~ U[0, 1) float32 (n, 784), y ~ U{{0..9}} int32, numpy seed {args.seed}"


# -- timing helpers -------------------------------------------------------------------------------


class CompileCounter:
    """Counts XLA backend compilations (jax.monitoring's backend_compile_duration event)."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: str, duration: float, **_: Any) -> None:
        if event == self.EVENT:
            self.count += 1


# -- the hand-written reference -------------------------------------------------------------------


def build_reference(hidden: tuple[int, ...], lr: float, batch_size: int, n: int, *, guard: str | None = None):
    """(model, init(seed, x) -> carry, epoch(carry, epoch, x, y) -> (carry, mean loss)): Flax + Optax, one jit per epoch.

    guard adds a non-finite guard, ok = isfinite(loss) & all(isfinite(grads)) & not halted, and a
    halted flag: "flag" only carries the flag (the state keeps updating; jdl's fit re-ran a failed
    epoch guarded); "cost" carries isfinite(loss) only and checks the parameters once after the
    scan (jdl's fit now: a non-finite gradient makes the parameters and the next loss non-finite); "where" is jdl's previous guard (the new params and Adam state computed, then jnp.where(ok, new,
    old) leaf by leaf); "cond" applies the Adam update inside jax.lax.cond(ok, update, keep), as
    optax.apply_if_finite does.
    """
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            init = nn.initializers.xavier_uniform()
            for width in hidden:
                x = nn.relu(nn.Dense(width, kernel_init=init)(x))
            return nn.Dense(10, kernel_init=init)(x)

    model, tx = MLP(), optax.adam(lr)
    steps = n // batch_size

    def init(seed: int, x: np.ndarray):
        params = jax.jit(model.init)(jax.random.PRNGKey(seed), jnp.asarray(x[:1]))["params"]
        return params, tx.init(params), jax.random.PRNGKey(seed + 1), jnp.asarray(False)

    def loss_fn(params, xb, yb):
        logits = model.apply({"params": params}, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def epoch(carry, epoch_index, x, y):
        params, opt_state, key, halted = carry
        order = jax.random.permutation(jax.random.fold_in(key, epoch_index), n)[: steps * batch_size]

        def body(c, index):
            params, opt_state, halted = c
            xb, yb = jnp.take(x, index, axis=0), jnp.take(y, index, axis=0)
            loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)

            def update(args):
                params, opt_state, grads = args
                updates, new_opt = tx.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), new_opt

            if guard is None:
                return (*update((params, opt_state, grads)), halted), loss
            if guard == "cost":
                return (*update((params, opt_state, grads)), halted | ~jnp.isfinite(loss)), loss
            finite = functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)],
                                      jnp.isfinite(loss))
            ok = finite & ~halted
            if guard == "flag":  # jdl's fit: only the flag is carried; the state is re-run guarded on failure
                new_params, new_opt = update((params, opt_state, grads))
            elif guard == "where":
                new_params, new_opt = jax.tree_util.tree_map(
                    lambda a, b: jnp.where(ok, a, b), update((params, opt_state, grads)), (params, opt_state))
            elif guard == "cond":
                new_params, new_opt = jax.lax.cond(ok, update, lambda args: args[:2], (params, opt_state, grads))
            else:
                raise ValueError(f"guard must be None, 'cost', 'flag', 'where' or 'cond', got {guard!r}")
            return (new_params, new_opt, halted | ~finite), loss

        (params, opt_state, halted), losses = jax.lax.scan(body, (params, opt_state, halted),
                                                           order.reshape(steps, batch_size))
        if guard == "cost":
            halted = functools.reduce(lambda h, p: h | ~jnp.all(jnp.isfinite(p)), jax.tree_util.tree_leaves(params), halted)
        return (params, opt_state, key, halted), jnp.mean(losses)

    return model, init, epoch


# -- the breakdown variants built from jdl's pieces -----------------------------------------------


_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "f16": 2, "bf16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4,
                "f64": 8, "s64": 8, "u64": 8}


def scan_body_copies(hlo_text: str, trip_count: int) -> dict[str, Any]:
    """Copy instructions in the body of the while loop with `trip_count` iterations: count and bytes per step."""
    import re

    loop = re.search(r"body=(%?[\w.\-]+).*?\"known_trip_count\":\{\"n\":\"" + str(trip_count) + r"\"\}", hlo_text)
    if loop is None:
        raise ValueError(f"no while loop with trip count {trip_count} in the compiled HLO")
    body = loop.group(1).lstrip("%")
    count = nbytes = 0
    inside = False
    for line in hlo_text.splitlines():
        if not inside:
            inside = re.match(r"%?" + re.escape(body) + r" \(", line) is not None
            continue
        if line.startswith("}"):
            break
        match = re.search(r"= (\w+)\[([\d,]*)\]\S* copy\(", line)
        if match:
            dims = [int(d) for d in match.group(2).split(",") if d]
            count += 1
            nbytes += _DTYPE_BYTES.get(match.group(1), 4) * int(np.prod(dims, dtype=np.int64))
    return {"copies_per_step": count, "copied_bytes_per_step": nbytes}


class Internals:
    """jdl's training pieces the breakdown drives directly: the compiled chunks, order and epoch means of fit."""

    def __init__(self, trainer, state, x, y, batch_size: int, seed: int):
        import jax

        from jdl.data.batching import MAX_STEPS_PER_EXECUTION, BatchPlan
        from jdl.train import compiled, inputs, sharding
        from jdl.train.step import StepSpec

        self.jax, self.compiled, self.inputs, self.sharding = jax, compiled, inputs, sharding
        self.trainer, self.state, self.x, self.y, self.seed = trainer, state, x, y, seed
        objective = trainer.objective
        self.spec = StepSpec(objective, (), None, trainer.mesh)
        self.plan = BatchPlan(len(x), batch_size, True, trainer.steps_per_execution or MAX_STEPS_PER_EXECUTION,
                              sharding.device_count(trainer.mesh))
        self.data = inputs.check_against_model(objective, state, inputs.data(objective, x, y, None))
        self.device_data = sharding.replicate((self.data.x, self.data.y, self.data.w), trainer.mesh)
        self.weighting = objective.log_weighting()
        self.order = compiled.epoch_order(self.plan.n, True, trainer.mesh)

    def chunk(self, guarded: bool):
        return self.compiled.train_chunk(self.spec, self.plan, self.compiled.chunk_key(self.plan.chunks()[0]), False,
                                         guarded)

    def run_epochs(self, count: int, guarded: bool) -> Any:
        """fit's device work alone: per epoch the order, the chunks and the epoch means; no host reads."""
        jax, seed = self.jax, self.jax.device_put(np.uint32(self.seed))
        state = self.state
        for e in range(count):
            order = self.order(seed, np.int32(e))
            halted = jax.device_put(np.bool_(False))
            logs = []
            for chunk in self.plan.chunks():
                run = self.compiled.train_chunk(self.spec, self.plan, self.compiled.chunk_key(chunk), False, guarded)
                state, halted, out = run(state, halted, self.device_data, order, np.int32(chunk.start),
                                         self.trainer.values)
                out.pop("hooks")
                logs.append(out)
            means = self.compiled.epoch_means(self.weighting)(logs)
        return jax.block_until_ready((state, halted, means))


def count_params(tree: Any) -> int:
    import jax

    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(tree)))


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import flax
    import jax
    import jax.numpy as jnp
    import jaxlib
    import optax

    import jdl

    x, y, data_desc = make_data(args)
    n, batch_size, epochs = len(x), args.batch_size, args.epochs
    steps_per_epoch = n // batch_size
    steps = steps_per_epoch * epochs
    hidden = args.hidden
    arch = "-".join(map(str, (784, *hidden, 10)))
    print(f"fit_overhead: MLP {arch} relu, batch {batch_size}, Adam({args.lr:g}), softmax CE on int labels")
    print(f"data: {data_desc}; n = {n} = {steps_per_epoch}*{batch_size}; {epochs} epochs ({steps} steps) per timed call; "
          f"{args.repeats} repeats, alternating; jax {jax.__version__} on {jax.devices()[0].platform}")

    counter = CompileCounter()
    jax.monitoring.register_event_duration_secs_listener(counter)
    compile_s: dict[str, float] = {}
    variants: dict[str, Callable[[], Any]] = {}
    notes: dict[str, str] = {}

    # reference --------------------------------------------------------------------------------
    x_dev, y_dev = jax.device_put(x), jax.device_put(y)
    REF, FIT = "reference (Flax+Optax, jit+scan)", "jdl Trainer.fit"
    _, ref_init, ref_epoch = build_reference(hidden, args.lr, batch_size, n)
    ref_start = ref_init(args.seed, x)
    params_count = count_params(ref_start[0])

    def run_reference(epoch_fn=ref_epoch, start=ref_start, count=epochs):
        carry = start
        for e in range(count):
            carry, loss = epoch_fn(carry, e, x_dev, y_dev)
        jax.block_until_ready((carry, loss))

    t0 = time.perf_counter()
    run_reference(count=1)
    compile_s[REF] = time.perf_counter() - t0

    # jdl fit ----------------------------------------------------------------------------------
    trainer = jdl.Trainer(jdl.models.MLP(hidden=hidden, outputs=10, activation="relu"),
                          loss="sparse_categorical_crossentropy", optimizer=jdl.optim.adam(args.lr), metrics=[])
    fit = functools.partial(trainer.fit, x, y, batch_size=batch_size, verbose=0, seed=args.seed)
    t0 = time.perf_counter()
    warm_state, _ = fit(epochs=1)
    compile_s[FIT] = time.perf_counter() - t0
    # A second warm call from fit's own output state: the timed calls pass such a state.
    warm_state, _ = fit(epochs=1, state=warm_state)
    jax.block_until_ready(warm_state)
    if count_params(warm_state.params) != params_count:
        raise RuntimeError(f"jdl MLP has {count_params(warm_state.params)} parameters, the reference {params_count}")

    def run_fit(count=epochs):
        state, _ = fit(epochs=count, state=warm_state)
        jax.block_until_ready(state)

    variants[REF] = run_reference
    variants[FIT] = run_fit

    # breakdown variants -------------------------------------------------------------------------
    breakdown: dict[str, Any] = {}
    if args.breakdown:
        try:
            internals = Internals(trainer, warm_state, x, y, batch_size, args.seed)
            for guarded, name, note in (
                (False, "jdl chunks, unguarded (fit now)",
                 "fit's compiled chunks, epoch order and epoch means without fit's host work; the state keeps "
                 "updating, only the halted flag is carried"),
                (True, "jdl chunks, where-guarded (fit before)",
                 "the same with keep_if(finite & ~halted, new, old) per step: the previous fit and its re-run"),
            ):
                variants[name] = functools.partial(lambda count=epochs, g=guarded: internals.run_epochs(count, g))
                t0 = time.perf_counter()
                variants[name](1)
                compile_s[name] = time.perf_counter() - t0
                notes[name] = note
        except Exception as err:  # jdl internals moved: report, keep the main comparison
            breakdown["jdl_internals_error"] = f"{type(err).__name__}: {err}"
            print(f"breakdown: jdl internals unavailable ({breakdown['jdl_internals_error']})", file=sys.stderr)

        guard_epochs = {}
        for guard, name, note in (
            ("cost", "ref + loss flag, params once (fit)",
             "reference plus isfinite(loss) carried as a halted flag and the parameters checked once per epoch"),
            ("flag", "ref + loss & grad flag (fit before)",
             "reference plus isfinite(loss, grads) carried as a halted flag, the update unconditional"),
            ("where", "reference + jdl's where-guard",
             "reference plus isfinite(loss, grads) and jnp.where(ok, new, old) over params + Adam state (jdl's keep_if)"),
            ("cond", "reference + lax.cond guard",
             "reference plus isfinite(loss, grads), the Adam update inside lax.cond(ok, update, keep) (optax.apply_if_finite's way)"),
        ):
            guard_epochs[guard] = build_reference(hidden, args.lr, batch_size, n, guard=guard)[2]
            variants[name] = functools.partial(run_reference, guard_epochs[guard])
            t0 = time.perf_counter()
            variants[name](count=1)
            compile_s[name] = time.perf_counter() - t0
            notes[name] = note
        # Copies XLA puts in the scan body (per step), from the compiled HLO: deterministic, unlike timings.
        try:
            hlo = {name: guard_epochs[g].lower(ref_start, 0, x_dev, y_dev).compile().as_text()
                   for g, name in (("cost", "ref + loss flag, params once (fit)"), ("flag", "ref + loss & grad flag (fit before)"),
                                   ("where", "reference + jdl's where-guard"), ("cond", "reference + lax.cond guard"))}
            hlo[REF] = ref_epoch.lower(ref_start, 0, x_dev, y_dev).compile().as_text()
            if "jdl_internals_error" not in breakdown:
                order0 = internals.order(jax.device_put(np.uint32(args.seed)), np.int32(0))
                call = (warm_state, jnp.asarray(False), internals.device_data, order0, np.int32(0), trainer.values)
                hlo["jdl chunks, unguarded (fit now)"] = internals.chunk(False).lower(*call).compile().as_text()
                hlo["jdl chunks, where-guarded (fit before)"] = internals.chunk(True).lower(*call).compile().as_text()
            breakdown["scan_body_copies"] = {name: scan_body_copies(text, steps_per_epoch) for name, text in hlo.items()}
        except Exception as err:
            breakdown["scan_body_copies_error"] = f"{type(err).__name__}: {err}"
        if epochs > 1:
            variants["jdl Trainer.fit, 1 epoch"] = functools.partial(run_fit, 1)
            notes["jdl Trainer.fit, 1 epoch"] = "splits fit's cost into per-call and per-epoch parts"

    # timed phase: alternate, rotating the order every repeat ------------------------------------
    names = list(variants)
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    host: dict[str, list[float]] = {k: [] for k in names}
    compiles: dict[str, int] = {k: 0 for k in names}
    load_before = os.getloadavg()
    for r in range(args.repeats):
        for k in range(len(names)):
            name = names[(k + r) % len(names)]
            before = counter.count
            w, c, h = timed(variants[name])
            compiles[name] += counter.count - before
            wall[name].append(w)
            cpu[name].append(c)
            host[name].append(h)
    load_after = os.getloadavg()

    def steps_of(name: str) -> int:
        return steps_per_epoch * (1 if name.endswith("1 epoch") else epochs)

    flops_per_step = 6 * params_count * batch_size
    floor_ms = flops_per_step / (CEILING_GFLOPS * 1e9) * 1e3
    results = {}
    for name in names:
        per_step = [w / steps_of(name) * 1e3 for w in wall[name]]
        cpu_step = [c / steps_of(name) * 1e3 for c in cpu[name]]
        med = statistics.median(per_step)
        results[name] = {
            "median_ms_per_step": med,
            "min_ms_per_step": min(per_step),
            "max_ms_per_step": max(per_step),
            "median_cpu_ms_per_step": statistics.median(cpu_step),
            "ms_per_step": per_step,
            "median_s_per_call": statistics.median(wall[name]),
            "median_host_thread_ms_per_call": statistics.median(host[name]) * 1e3,
            "steps_per_call": steps_of(name),
            "gflops": flops_per_step / (med * 1e-3) / 1e9,
            "fraction_of_ceiling": floor_ms / med,
            "compile_s": compile_s.get(name),
            "compiles_during_timing": compiles[name],
            "note": notes.get(name, ""),
        }

    def ratio_to_ref(name: str) -> dict[str, float]:
        paired = [a / b for a, b in zip(wall[name], wall[REF])] if steps_of(name) == steps_of(REF) else []
        out = {"ratio_of_medians": results[name]["median_ms_per_step"] / results[REF]["median_ms_per_step"],
               "ratio_of_mins": results[name]["min_ms_per_step"] / results[REF]["min_ms_per_step"],
               "ratio_of_cpu_medians": results[name]["median_cpu_ms_per_step"] / results[REF]["median_cpu_ms_per_step"]}
        if paired:
            out["median_paired_ratio"] = statistics.median(paired)
        return out

    ratios = {name: ratio_to_ref(name) for name in names if name != REF and not name.endswith("1 epoch")}

    extra = results[FIT]["median_host_thread_ms_per_call"] - results[REF]["median_host_thread_ms_per_call"]
    breakdown["fit_host_thread_extra_ms_per_call"] = extra
    breakdown["fit_host_thread_extra_fraction_of_reference_call"] = extra / (results[REF]["median_s_per_call"] * 1e3)

    # host-side pieces of fit, one by one -----------------------------------------------------------
    if args.breakdown and "jdl_internals_error" not in breakdown:
        try:
            breakdown.update(host_breakdown(internals, epochs))
        except Exception as err:
            breakdown["host_error"] = f"{type(err).__name__}: {err}"
            print(f"breakdown: host timings failed ({breakdown['host_error']})", file=sys.stderr)
        if "jdl chunks, unguarded (fit now)" in wall:
            diffs = [a - b for a, b in zip(wall[FIT], wall["jdl chunks, unguarded (fit now)"])]
            breakdown["fit_minus_chunk_paired_ms_per_call"] = statistics.median(diffs) * 1e3
        if "jdl Trainer.fit, 1 epoch" in results:
            t1 = results["jdl Trainer.fit, 1 epoch"]["median_s_per_call"]
            te = results[FIT]["median_s_per_call"]
            chunk = results.get("jdl chunks, unguarded (fit now)", {}).get("median_s_per_call")
            per_epoch = (te - t1) / (epochs - 1)
            breakdown["fit_linear_model"] = {
                "per_call_fixed_ms": (t1 - per_epoch) * 1e3,
                "per_epoch_ms": per_epoch * 1e3,
                "chunk_only_per_epoch_ms": chunk / epochs * 1e3 if chunk else None,
                "note": "fit(E) ≈ per_call_fixed + E·per_epoch, from the medians of fit(1) and fit(E)",
            }

    jax.monitoring.unregister_event_duration_listener(counter)

    report = {
        "benchmark": "fit_overhead",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(jax, load_before, load_after),
        "versions": {"python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
                     "flax": flax.__version__, "optax": optax.__version__, "jdl": jdl.__version__,
                     "numpy": np.__version__},
        "config": {"model": f"MLP {arch} relu", "params": params_count, "batch_size": batch_size, "optimizer": f"adam({args.lr:g})",
                   "loss": "sparse softmax cross-entropy (logits)", "n": n, "steps_per_epoch": steps_per_epoch,
                   "epochs_per_call": epochs, "repeats": args.repeats, "data": data_desc, "quick": args.quick,
                   "timing": "each call starts from the same warmed-up state; wall time with jax.block_until_ready; "
                             "variants alternate, order rotating each repeat"},
        "floor": {"flops_per_step": flops_per_step, "ceiling_gflops": CEILING_GFLOPS, "floor_ms_per_step": floor_ms},
        "results": results,
        "ratio": {"fit_vs_reference": ratios.get(FIT), "goal": GOAL_RATIO,
                  "meets_goal": ratios[FIT]["median_paired_ratio"] <= GOAL_RATIO, "all": ratios},
        "breakdown": breakdown,
    }
    print_table(report, names, REF, FIT)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return report


def host_breakdown(internals: Internals, epochs: int) -> dict[str, Any]:
    """Median wall milliseconds of each host-side piece of fit, timed on its own after a warm-up call."""
    import jax

    from jdl import optim

    i, trainer, state = internals, internals.trainer, internals.state
    objective, mesh, sharding, compiled = trainer.objective, trainer.mesh, internals.sharding, internals.compiled
    seed = jax.device_put(np.uint32(i.seed))
    order = i.order(seed, np.int32(0))
    run = i.chunk(False)
    new_state, halted, logs = run(state, jax.device_put(np.bool_(False)), i.device_data, order, np.int32(0),
                                  trainer.values)
    logs.pop("hooks")
    jax.block_until_ready((new_state, logs))
    chunk_logs = [logs]

    def ms(fn: Callable[[], Any]) -> float:
        return median_time(fn) * 1e3

    per_call = {
        "validate x, y on the host (inputs.data: np.asarray, isfinite, dtype)":
            ms(lambda: i.inputs.data(objective, i.x, i.y, None)),
        "check against the model (inputs.check_against_model: eval_shape, targets)":
            ms(lambda: i.inputs.check_against_model(objective, state, i.data)),
        "put the data set on the device (replicate x, y, w)":
            ms(lambda: jax.block_until_ready(sharding.replicate((i.data.x, i.data.y, i.data.w), mesh))),
        "copy the caller's state (compiled.copy: it is never donated)":
            ms(lambda: jax.block_until_ready(compiled.copy(state))),
    }
    per_epoch = {
        "the epoch's permutation (compiled.epoch_order), waiting for it": ms(lambda: jax.block_until_ready(
            i.order(seed, np.int32(1)))),
        "copy of the epoch's starting state (for a guarded re-run)": ms(lambda: jax.block_until_ready(
            compiled.copy(state))),
        "epoch means of the logs (compiled.epoch_means)":
            ms(lambda: jax.block_until_ready(compiled.epoch_means(i.weighting)(chunk_logs))),
        "learning rate + device_get of logs (results ready)": ms(lambda: jax.device_get({
            "logs": compiled.epoch_means(i.weighting)(chunk_logs), "halted": halted, "step": state.step,
            "lr": optim.learning_rate(new_state.opt_state), "chunks": [c["nonfinite"] for c in chunk_logs]})),
        "dispatch of the compiled chunk (returns before the work is done)":
            ms(lambda: run(state, jax.device_put(np.bool_(False)), i.device_data, order, np.int32(0), trainer.values)),
    }
    jax.block_until_ready(run(state, jax.device_put(np.bool_(False)), i.device_data, order, np.int32(0),
                              trainer.values))
    return {
        "host_per_call_ms": per_call,
        "host_per_call_total_ms": sum(per_call.values()),
        "host_per_epoch_ms": per_epoch,
        "host_per_epoch_total_ms": sum(v for k, v in per_epoch.items() if not k.startswith(("dispatch", " "))),
        "host_predicted_per_call_ms": sum(per_call.values()) + epochs * sum(
            v for k, v in per_epoch.items() if not k.startswith(("dispatch", " "))),
    }


def print_table(report: dict[str, Any], names: list[str], ref: str, fit: str) -> None:
    results, floor = report["results"], report["floor"]["floor_ms_per_step"]
    ref_med = results[ref]["median_ms_per_step"]
    print()
    header = (f"{'variant':<36}{'median ms/step':>15}{'min':>8}{'max':>8}{'cpu ms':>8}{'GFLOP/s':>9}{'vs ref':>8}"
              f"{'host ms/call':>13}{'compiles':>9}")
    print(header)
    print("-" * len(header))
    for name in names:
        r = results[name]
        vs = "" if name.endswith("1 epoch") else f"{r['median_ms_per_step'] / ref_med:.3f}"
        print(f"{name:<36}{r['median_ms_per_step']:>15.3f}{r['min_ms_per_step']:>8.3f}{r['max_ms_per_step']:>8.3f}"
              f"{r['median_cpu_ms_per_step']:>8.3f}{r['gflops']:>9.0f}{vs:>8}{r['median_host_thread_ms_per_call']:>13.1f}"
              f"{r['compiles_during_timing']:>9}")
    print(f"{'FLOP floor (6·P·B / 360 GFLOP/s)':<36}{floor:>15.3f}")
    fr = report["ratio"]["fit_vs_reference"]
    verdict = "meets" if report["ratio"]["meets_goal"] else "MISSES"
    print(f"\nfit / reference: median paired ratio {fr['median_paired_ratio']:.3f}, ratio of medians "
          f"{fr['ratio_of_medians']:.3f}, of minima {fr['ratio_of_mins']:.3f}, of CPU-time medians "
          f"{fr['ratio_of_cpu_medians']:.3f} ({verdict} the goal <= {GOAL_RATIO:.2f})")
    b = report["breakdown"]
    if "fit_linear_model" in b:
        lm = b["fit_linear_model"]
        chunk = f", compiled chunk alone {lm['chunk_only_per_epoch_ms']:.1f} ms/epoch" if lm["chunk_only_per_epoch_ms"] else ""
        print(f"fit(E) ≈ {lm['per_call_fixed_ms']:.1f} ms per call + {lm['per_epoch_ms']:.1f} ms per epoch{chunk}")
    for key, title in (("host_per_call_ms", "host work per fit call"), ("host_per_epoch_ms", "host work per epoch")):
        if key in b:
            print(f"{title} (ms, median):")
            for piece, value in b[key].items():
                print(f"  {value:9.3f}  {piece}")
    if "host_predicted_per_call_ms" in b:
        print(f"  => predicted host time per fit({report['config']['epochs_per_call']}) call: {b['host_predicted_per_call_ms']:.1f} ms")
    if "fit_host_thread_extra_ms_per_call" in b:
        print(f"fit's extra host work (calling-thread CPU, fit minus reference): {b['fit_host_thread_extra_ms_per_call']:.1f} ms "
              f"per call = {100 * b['fit_host_thread_extra_fraction_of_reference_call']:.1f}% of a reference call")
    if "fit_minus_chunk_paired_ms_per_call" in b:
        print(f"fit minus its compiled chunk alone (median of paired differences): "
              f"{b['fit_minus_chunk_paired_ms_per_call']:.1f} ms per fit({report['config']['epochs_per_call']}) call")
    if "scan_body_copies" in b:
        print("copies in the compiled scan body (per step, from the HLO):")
        for name, c in b["scan_body_copies"].items():
            print(f"  {c['copies_per_step']:3d} copies, {c['copied_bytes_per_step'] / 2**20:6.2f} MiB  {name}")
    for key in ("jdl_internals_error", "host_error", "scan_body_copies_error"):
        if key in b:
            print(f"{key}: {b[key]}")


if __name__ == "__main__":
    main()
