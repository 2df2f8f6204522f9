"""`method = "optuna"`: TPE sampling and median / successive-halving pruning through one Optuna study.

The study lives in Optuna's JournalStorage (a journal file, out/optuna.journal), which is safe on
shared file systems, so workers on several hosts can join it. Trial numbers come from the study,
so two workers never run the same number; a trial left RUNNING by a dead worker is continued in
place (from its checkpoint) by the next worker that finds it unclaimed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jdl.sweeps import spec as spec_lib
from jdl.sweeps import store

_SIMPLE = (type(None), bool, int, float, str)


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(sweep: spec_lib.Sweep) -> dict[str, Any]:
    """Optuna's distribution for each dimension (lists and tables as choices by index)."""
    optuna = _optuna()
    result = {}
    for d in sweep.dimensions:
        if d.discrete:
            simple = all(isinstance(v, _SIMPLE) for v in d.values)
            result[d.key] = optuna.distributions.CategoricalDistribution(list(d.values) if simple else list(range(len(d.values))))
        elif d.kind == "int":
            result[d.key] = optuna.distributions.IntDistribution(int(d.low), int(d.high))
        else:
            result[d.key] = optuna.distributions.FloatDistribution(d.low, d.high, log=d.kind == "log_uniform")
    return result


def decode(sweep: spec_lib.Sweep, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's params -> config values (an index into a choice of lists or tables becomes the value)."""
    decoded = {}
    for d in sweep.dimensions:
        value = params[d.key]
        if d.discrete and not all(isinstance(v, _SIMPLE) for v in d.values):
            value = d.values[int(value)]
        decoded[d.key] = value
    return decoded


def pruner(sweep: spec_lib.Sweep) -> Any:
    optuna = _optuna()
    options = sweep.pruner
    if options["name"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=options.get("startup_trials", 5),
                                           n_warmup_steps=options.get("warmup_epochs", 1))
    if options["name"] == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=options.get("min_epochs", "auto"),
                                                      reduction_factor=options.get("reduction_factor", 3))
    return optuna.pruners.NopPruner()


def study(sweep: spec_lib.Sweep, out: Path, *, seed: int | None = None) -> Any:
    """The sweep's study in out/optuna.journal, created on first use."""
    optuna = _optuna()
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    sampler = optuna.samplers.TPESampler(seed=sweep.seed if seed is None else seed,
                                         n_startup_trials=min(10, max(2, sweep.trials // 3)))
    return optuna.create_study(study_name=sweep.name, storage=storage, sampler=sampler, pruner=pruner(sweep),
                               direction=sweep.objective.direction, load_if_exists=True)


def _next(sweep: spec_lib.Sweep, out: Path, handle: Any, dists: dict[str, Any]) -> Any:
    """Under the directory lock: an unclaimed RUNNING trial to continue, else a new one, else None (budget spent)."""
    optuna = _optuna()
    running = optuna.trial.TrialState.RUNNING
    trials = handle.get_trials(deepcopy=False)
    for frozen in trials:
        if frozen.state == running and store.claim(out, frozen.number):
            return optuna.trial.Trial(handle, frozen._trial_id)
    if len(trials) >= sweep.trials:
        return None
    trial = handle.ask(dists)
    store.claim(out, trial.number)
    return trial


def _tell(handle: Any, trial: Any, record: dict[str, Any]) -> None:
    optuna = _optuna()
    if record["state"] == "complete":
        handle.tell(trial, record["value"])
    elif record["state"] == "pruned":
        handle.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        handle.tell(trial, state=optuna.trial.TrialState.FAIL)


def run(sweep: spec_lib.Sweep, out: Path, *, run_trial: Callable[..., dict[str, Any]],
        progress: Callable[[dict[str, Any]], None], concurrent: bool = False) -> None:
    """Ask, run and tell trials until the study holds `sweep.trials` of them."""
    handle = study(sweep, out, seed=(sweep.seed * 1_000_003 + os.getpid()) if concurrent else None)
    dists = distributions(sweep)
    while True:
        with store.locked(out):
            trial = _next(sweep, out, handle, dists)
        if trial is None:
            return
        try:
            finished = store.read_trial(out, trial.number)
            if finished is not None and finished["state"] in store.FINISHED:
                record = finished
            else:
                params = decode(sweep, trial.params)
                record = run_trial(sweep, out, trial.number, params, trial=trial)
            _tell(handle, trial, record)
        finally:
            store.release(out, trial.number)
        progress(record)
