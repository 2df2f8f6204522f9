"""TPE (with and without median pruning) against random search: 30 trials each on the digits MLP.

Space: learning rate log-uniform [1e-5, 1e-1] x kernel_init {he_normal, glorot_uniform} x dropout {0, 0.3},
15 epochs at most (early stopping, patience 5), objective val_loss (minimize), seed 0 for every method.
Prints each method's best value, its parameters, how many trials were pruned and the epochs trained,
and writes benchmarks/results/sweep_search.json.

Run: python benchmarks/sweep_search.py [--trials 30] [--out DIR]
"""

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from jdl import sweeps

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "configs" / "digits_mlp.toml"
METHODS = {
    "random": 'method = "random"',
    "tpe": 'method = "optuna"',
    "tpe+median": 'method = "optuna"\npruner = { name = "median", startup_trials = 5, warmup_epochs = 3 }',
}
SPACE = """
[space]
"train.learning_rate" = { log_uniform = [1e-5, 1e-1] }
"model.kernel_init" = { choice = ["he_normal", "glorot_uniform"] }
"model.dropout" = [0.0, 0.3]
"""


def sweep_file(directory: Path, name: str, method: str, trials: int) -> Path:
    path = directory / f"{name.replace('+', '_')}.toml"
    path.write_text(f'name = "digits_{name.replace("+", "_")}"\nbase = "{CONFIG}"\n'
                    'set = ["train.epochs=15", "callbacks.early_stopping.patience=5"]\n'
                    f'{method}\ntrials = {trials}\nseed = 0\nobjective = "val_loss, minimize"\n{SPACE}')
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", default=None, help="where the sweep directories go (default: a temporary directory)")
    args = parser.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.out or scratch)
        root.mkdir(parents=True, exist_ok=True)
        for name, method in METHODS.items():
            started = time.perf_counter()
            body = sweeps.run(sweeps.load(sweep_file(root, name, method, args.trials)), root / name, verbose=0)
            done = [t for t in body["trials"] if t["state"] == "complete"]
            best = min(done, key=lambda t: t["value"])
            rows[name] = {"best_value": best["value"], "best_params": best["params"], "best_trial": best["number"],
                          "pruned": sum(t["state"] == "pruned" for t in body["trials"]), "trials": len(body["trials"]),
                          "epochs_trained": sum(t["epochs_run"] or 0 for t in body["trials"]),
                          "wall_seconds": time.perf_counter() - started}
    print(f"{'method':<12} {'best val_loss':>13} {'pruned':>7} {'epochs':>7}  best parameters")
    for name, row in rows.items():
        print(f"{name:<12} {row['best_value']:13.5f} {row['pruned']:>7} {row['epochs_trained']:>7}  {row['best_params']}")
    result = {"benchmark": "sweep_search", "machine": platform.platform(), "methods": rows,
              "ratio_best_tpe_over_random": rows["tpe"]["best_value"] / rows["random"]["best_value"]}
    out = Path(__file__).resolve().parent / "results" / "sweep_search.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
