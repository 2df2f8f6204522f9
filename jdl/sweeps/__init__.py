"""Hyperparameter sweeps (the command layer): `jdl sweep SWEEP.toml` over any config keys, by grid, random or Optuna.

    sweep = jdl.sweeps.load("examples/configs/digits_sweep.toml")
    jdl.sweeps.run(sweep, "sweeps/digits_sweep", workers=2)   # sweep.json, sweep.csv, report.html, trial-K/
"""

from jdl.sweeps.runner import sweep as run
from jdl.sweeps.spec import Objective, Sweep, load

__all__ = ["Objective", "Sweep", "load", "run"]
