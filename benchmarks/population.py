"""A 16-member population against the other ways to train 16 trials, on the digits MLP and a small CNN.

Members: 4 learning rates x 4 seeds, the same epochs for all (no early stopping). Every variant is
timed from the start of its processes to their end (interpreter start, imports, data, compiles,
training), one after another:

    population     Trainer.fit(..., population=16) in one fresh process (no callbacks)
    sequential     16 Trainer.fit calls in one fresh process (they share compiled steps)
    jdl_train_runs 16 `jdl train` runs one after another (run directories: checkpoints, monitor, report)
    sweep_workers2 `jdl sweep` over the same 16 trials with --workers 2 (run directories)
    sweep_population `jdl sweep` with population = 16 (run directories, one process)

Ratios are quoted against jdl_train_runs (what a user does today). The population and sequential
processes also save every member's final parameters and History, and the table gives the largest
difference between a member and its own fit (float32, after the run's epochs; training is chaotic,
so it grows with the epochs). The machine is shared: the 1-minute load average is recorded before
and after each variant; wall times under load are not comparable to idle ones.

Run: python benchmarks/population.py [--epochs 2] [--cases mlp,cnn] [--members 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402

RATES = [3e-4, 1e-3, 3e-3, 1e-2]
MLP_CONFIG = ROOT / "examples" / "configs" / "digits_mlp.toml"
CNN_CONFIG = """name = "digits_cnn"
seed = 0
[data]
name = "digits"
options = { test_size = 0.2, seed = 0, as_images = true }
standardize = false
validation_split = 0.1
[model]
name = "cnn"
conv = [[8, 3], [16, 3]]
pool = [0, 2]
dense = [32]
outputs = 10
[train]
loss = "sparse_categorical_crossentropy"
optimizer = "adam"
learning_rate = 0.001
epochs = 10
batch_size = 32
metrics = ["accuracy"]
"""


def members(count: int) -> list[dict]:
    seeds = max(1, count // len(RATES))
    grid = [{"learning_rate": lr, "seed": s} for lr in RATES for s in range(seeds)]
    return grid[:count]


def trainer_and_data(case: str, rate: float):
    """The Trainer and data of a case, as its config describes them (jdl.runs.build)."""
    from jdl import config as config_lib
    from jdl import runs

    config = config_lib.load(case_config(case, Path(tempfile.gettempdir())), [f"train.learning_rate={rate}"])
    trainer, dataset = runs.build(config)
    return trainer, dataset, config


def case_config(case: str, directory: Path) -> Path:
    if case == "mlp":
        return MLP_CONFIG
    path = directory / "digits_cnn.toml"
    path.write_text(CNN_CONFIG)
    return path


def child(mode: str, case: str, epochs: int, count: int, save: Path) -> None:
    """One timed process: the population or the sequential fits; saves parameters and histories to `save`."""
    import jax

    from jdl.train.population import Population

    started = time.perf_counter()
    grid = members(count)
    trainer, dataset, config = trainer_and_data(case, grid[0]["learning_rate"])
    options = dict(epochs=epochs, batch_size=config.train.batch_size, validation_split=config.data.validation_split,
                   verbose=0)
    if mode == "population":
        states, histories = trainer.fit(dataset.x_train, dataset.y_train, population=Population.of(grid), **options)
    else:
        states, histories = [], []
        for member in grid:
            one, _, _ = trainer_and_data(case, member["learning_rate"])
            state, history = one.fit(dataset.x_train, dataset.y_train, seed=member["seed"], **options)
            states.append(state)
            histories.append(history)
    seconds = time.perf_counter() - started
    np.savez(save / f"{mode}.npz", **{f"{k}_{i}": np.asarray(leaf) for k, s in enumerate(states)
                                       for i, leaf in enumerate(jax.tree_util.tree_leaves(s.params))})
    (save / f"{mode}.json").write_text(json.dumps({"seconds_inside": seconds,
                                                   "histories": [h.history for h in histories]}))


def run(command: list[str], env: dict) -> dict:
    before = os.getloadavg()
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"seconds": time.perf_counter() - started, "load_before": round(before[0], 2),
            "load_after": round(os.getloadavg()[0], 2)}


def sweep_file(directory: Path, base: Path, epochs: int, count: int, population: bool) -> Path:
    seeds = max(1, count // len(RATES))
    path = directory / f"sweep_{'population' if population else 'workers'}.toml"
    path.write_text(f'name = "bench"\nbase = "{base}"\nset = ["train.epochs={epochs}"]\nmethod = "grid"\n'
                    f'objective = "val_loss, minimize"\n' + (f"population = {count}\n" if population else "")
                    + f'[space]\n"train.learning_rate" = {RATES}\nseed = {list(range(seeds))}\n')
    return path


def differences(save: Path, count: int) -> dict:
    """Largest |member - its own fit| over parameters and over every History entry."""
    a, b = np.load(save / "population.npz"), np.load(save / "sequential.npz")
    params = max(float(np.max(np.abs(a[k] - b[k]))) for k in a.files)
    ha = json.loads((save / "population.json").read_text())["histories"]
    hb = json.loads((save / "sequential.json").read_text())["histories"]
    history = max(abs(u - v) for x, y in zip(ha, hb) for key in x for u, v in zip(x[key], y[key]))
    return {"max_param_difference": params, "max_history_difference": history}


def bench_case(case: str, epochs: int, count: int, env: dict) -> dict:
    py = [sys.executable]
    with tempfile.TemporaryDirectory(prefix=f"jdl-population-{case}-") as tmp:
        tmp = Path(tmp)
        base = case_config(case, tmp)
        results: dict = {}
        for mode in ("population", "sequential"):
            results[mode] = run(py + [__file__, "--child", mode, "--cases", case, "--epochs", str(epochs),
                                      "--members", str(count), "--save", str(tmp)], env)
            results[mode]["seconds_inside"] = json.loads((tmp / f"{mode}.json").read_text())["seconds_inside"]
        equivalence = differences(tmp, count)
        before = os.getloadavg()
        started = time.perf_counter()
        for k, member in enumerate(members(count)):
            subprocess.run(py + ["-m", "jdl.cli", "train", str(base), "--set", f"train.epochs={epochs}",
                                 "--set", f"train.learning_rate={member['learning_rate']}", "--set",
                                 f"seed={member['seed']}", "--out", str(tmp / f"train-{k}"), "--verbose", "0"],
                           check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results["jdl_train_runs"] = {"seconds": time.perf_counter() - started, "load_before": round(before[0], 2),
                                    "load_after": round(os.getloadavg()[0], 2)}
        results["sweep_workers2"] = run(py + ["-m", "jdl.cli", "sweep", str(sweep_file(tmp, base, epochs, count, False)),
                                              "--out", str(tmp / "sweep-workers"), "--workers", "2", "--verbose", "0"],
                                        env)
        results["sweep_population"] = run(py + ["-m", "jdl.cli", "sweep",
                                                str(sweep_file(tmp, base, epochs, count, True)),
                                                "--out", str(tmp / "sweep-population"), "--verbose", "0"], env)
    reference = results["jdl_train_runs"]["seconds"]
    for name, entry in results.items():
        entry["speedup_vs_jdl_train_runs"] = reference / entry["seconds"]
    return {"variants": results, "equivalence": equivalence}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--cases", default="mlp,cnn")
    parser.add_argument("--child", choices=("population", "sequential"))
    parser.add_argument("--save", type=Path)
    parser.add_argument("--json", type=Path, default=common.RESULTS / "population.json",
                        help="where to write the results (a file per run of --cases)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.cases, args.epochs, args.members, args.save)
        return
    import jax

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    load_before = os.getloadavg()
    cases: dict = {}
    for case in args.cases.split(","):
        cases[case] = bench_case(case, args.epochs, args.members, env)
        write(args, jax, load_before, cases)
    print(f"{args.members} members (learning rate x seed), {args.epochs} epochs; wall seconds from process start "
          f"to end; load average 1 min {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f} (shared machine)")
    print(f"{'case':5} {'variant':17} {'seconds':>8} {'x vs jdl train runs':>20} {'load':>11}")
    for case, result in cases.items():
        for name, entry in result["variants"].items():
            print(f"{case:5} {name:17} {entry['seconds']:8.1f} {entry['speedup_vs_jdl_train_runs']:20.2f} "
                  f"{entry['load_before']:5.1f}-{entry['load_after']:<5.1f}")
        eq = result["equivalence"]
        print(f"{case:5} members vs their own fits: max |Δparam| {eq['max_param_difference']:.2e}, "
              f"max |Δhistory| {eq['max_history_difference']:.2e}")
    print(f"wrote {args.json}")


def write(args: argparse.Namespace, jax, load_before: tuple[float, ...], cases: dict) -> None:
    """results/population.json with the cases measured so far."""
    load_after = os.getloadavg()
    args.json.parent.mkdir(exist_ok=True)
    body = {"benchmark": "population", "epochs": args.epochs, "members": args.members,
            "machine": common.machine_info(jax, load_before, load_after), "loadavg_before": list(load_before),
            "loadavg_after": list(load_after),
            "note": "shared 2-core machine: other jobs ran during the measurement; see each variant's load average",
            "cases": cases}
    args.json.write_text(json.dumps(body, indent=2))


if __name__ == "__main__":
    main()
