"""Gradients through time: how far back ‖∂L/∂h_t‖ reaches, and what that costs on long-memory tasks.

- `hidden_gradient_norms`: ‖∂L_i/∂h_t‖ for every example i and step t of a one-layer recurrent model.
- `rnn_study`: those norms against t for SimpleRNN (tanh), LSTM and GRU on long adding-problem
  sequences, and the notes' recurrent weight sweep (w = 0.5 vanishes as 0.5^t, w = 50 explodes):
  a SimpleRNN whose recurrent kernel is scale × an orthogonal matrix, so that with a linear
  activation ‖∂L/∂h_t‖ = scale^(T - 1 - t) exactly (t = 0 … T-1).
- `adding_study` and `copy_study`: SimpleRNN vs LSTM vs GRU, with and without gradient clipping,
  trained on the adding problem (baseline MSE 1/6) and the copy-memory task (baseline
  10 ln 8 / (T + 20)); learning curves against the baseline, and the gradient profile after training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl import losses as losses_lib
from jdl.data import memory_tasks
from jdl.diagnostics.study_grid import seed_fields, study_workers
from jdl.nn import recurrent

CELLS = ("simple_rnn", "lstm", "gru")


def _with_output(cell: recurrent._Cell, carry: Any, h: jax.Array) -> Any:
    """The carry with its output h replaced (an LSTM keeps its cell state c)."""
    return (carry[0], h) if isinstance(cell, recurrent.LSTMCell) else h


def cell_hidden_gradients(cell: recurrent._Cell, cell_variables: Any, x: jax.Array,
                          example_losses: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """∂L_i/∂h_t (batch, T, units) of a cell run from zeros over x (batch, T, features).

    example_losses maps the hidden states (batch, T, units) to per-example losses (batch,). The
    derivative is taken w.r.t. a zero perturbation added to each h_t, so it is the total derivative
    through both the output at t and every later step (an LSTM's c_t is held as its own state).
    """
    projected = cell.apply(cell_variables, x, method=cell.project_inputs)
    batch, steps = x.shape[:2]
    carry0 = cell.initialize_carry(None, (batch, x.shape[-1]))

    def total_loss(perturbations):
        def body(carry, inputs):
            p, eps = inputs
            carry, h = cell.apply(cell_variables, carry, p, method=cell.step)
            h = h + eps
            return _with_output(cell, carry, h), h

        _, hs = jax.lax.scan(body, carry0, (jnp.swapaxes(projected, 0, 1), perturbations))
        return jnp.sum(example_losses(jnp.swapaxes(hs, 0, 1)))

    grads = jax.grad(total_loss)(jnp.zeros((steps, batch, cell.units), projected.dtype))
    return jnp.swapaxes(grads, 0, 1)


def safe_norms(g: jax.Array) -> np.ndarray:
    """‖g‖ over the last axis in float64 on the host: float32 squares underflow below 1e-19 and overflow above 1e19."""
    return np.linalg.norm(np.asarray(g, np.float64), axis=-1)


def _check_one_layer(model: Any) -> None:
    from jdl.models import rnn

    if not isinstance(model, (rnn.SequenceClassifier, rnn.SequenceTagger)):
        raise TypeError(f"model must be a jdl SequenceClassifier or SequenceTagger, got {_checks.describe(model)}")
    if model.layers != 1 or model.bidirectional:
        raise ValueError(f"model must have one unidirectional recurrent layer, got layers={model.layers}, "
                         f"bidirectional={model.bidirectional}")


def hidden_gradient_norms(model: Any, variables: Any, x: Any, y: Any, loss: str | Callable = "mse") -> np.ndarray:
    """‖∂L_i/∂h_t‖ (batch, T) of a one-layer SequenceClassifier (loss on the last output) or SequenceTagger.

    L_i is example i's loss (a SequenceTagger's is the mean over its T steps); h_t the recurrent
    output at step t. Inference mode (no dropout).
    """
    from jdl.models import rnn

    _check_one_layer(model)
    x = jnp.asarray(_checks.as_array(x, "x", dtype_kind="float"))
    if x.ndim != 3:
        raise ValueError(f"x must have shape (batch, time, features), got shape {tuple(x.shape)}")
    loss_fn = losses_lib.get(loss)
    params = variables.get("params", {}) if isinstance(variables, dict) else {}
    if "head" not in params or "layer_0" not in params.get("recurrent", {}):
        raise ValueError(f"variables must be the model's variables {{'params': {{'head': ..., 'recurrent': "
                         f"{{'layer_0': ...}}}}}}, got {_checks.describe(variables)}")
    y = jnp.asarray(y)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have one target per example ({x.shape[0]}), got shape {tuple(y.shape)}")
    cell = recurrent.cell(model.cell.lower(), model.units)
    head = nn.Dense(model.outputs)
    last_only = isinstance(model, rnn.SequenceClassifier)

    def example_losses(hs):
        outputs = head.apply({"params": params["head"]}, hs[:, -1] if last_only else hs)
        per_example = loss_fn(y, outputs, reduction="none")
        return per_example.reshape(per_example.shape[0], -1).mean(axis=1)

    grads = jax.jit(cell_hidden_gradients, static_argnums=(0, 3))(
        cell, {"params": params["recurrent"]["layer_0"]["cell"]}, x, example_losses)
    return safe_norms(grads)


def profile_summary(norms: np.ndarray) -> dict[str, Any]:
    """Mean ‖∂L/∂h_t‖ over examples per step, its first/last ratio and geometric growth per step back.

    finite_steps_back: how many steps, counting back from the last (0 steps back), stay finite and
    non-zero in float32 before the first overflow or underflow.
    """
    profile = np.asarray(norms, np.float64).mean(axis=0)
    finite = np.isfinite(profile) & (profile > 0)
    last_bad = np.flatnonzero(~finite)
    reach = len(profile) - 1 - int(last_bad.max()) if last_bad.size else len(profile)
    ok = np.flatnonzero(finite)
    if ok.size > 1:
        first, last = ok[0], ok[-1]
        growth = float(np.exp((np.log(profile[first]) - np.log(profile[last])) / (last - first)))
    else:
        growth = float("nan")
    return {"profile": profile.tolist(), "first_to_last": float(profile[0] / profile[-1]),
            "growth_per_step_back": growth, "finite_steps_back": reach}


def rnn_study(cells: Sequence[str] = CELLS, *, length: int = 200, units: int = 64, examples: int = 128,
              scales: Sequence[float] = (0.5, 0.9, 1.0, 1.1, 1.5, 50.0),
              sweep_activations: Sequence[str] = ("linear", "tanh"), sweep_length: int = 30,
              seed: int = 0) -> dict[str, Any]:
    """‖∂L/∂h_t‖ against t at initialization: per cell on the adding problem, and the recurrent weight sweep.

    Cells: SequenceClassifier(cell, units) with an MSE loss on `examples` adding-problem sequences
    of `length` steps. Sweep: SimpleRNNCell(units, activation, recurrent kernel = scale · Q, Q
    orthogonal) over `sweep_length` steps with the readout loss L_i = u·h_T (u a fixed unit vector),
    so ∂L/∂h_T has norm 1 and everything else is propagation. Records hold "profile" (mean over
    examples, t = 0 … T-1), "first_to_last", "growth_per_step_back" and "finite_steps_back".
    """
    from jdl.models.rnn import SequenceClassifier

    for name in cells:
        _checks.lookup("cell", name, recurrent.CELLS)
    for value, name in ((length, "length"), (units, "units"), (examples, "examples"), (sweep_length, "sweep_length")):
        _checks.check_number(value, name, integer=True, positive=True)
    for scale in scales:
        _checks.check_number(scale, "scales", positive=True)
    x, y = memory_tasks.adding_problem(examples, length, seed)
    result: dict[str, Any] = {"study": "rnn", "length": length, "units": units, "examples": examples,
                              "sweep_length": sweep_length, "cells": [], "sweep": []}
    for name in cells:
        model = SequenceClassifier(cell=name, units=units, outputs=1)
        variables = model.init(jax.random.PRNGKey(seed), x[:1])
        result["cells"].append({"cell": name, **profile_summary(hidden_gradient_norms(model, variables, x, y))})
    x_sweep, _ = memory_tasks.adding_problem(examples, sweep_length, seed)
    readout = jax.random.normal(jax.random.PRNGKey(seed + 1), (units,))
    readout = readout / jnp.linalg.norm(readout)
    def read_last(hs):
        return hs[:, -1] @ readout

    for activation in sweep_activations:
        cell = recurrent.SimpleRNNCell(units, activation=activation, recurrent_init="orthogonal")
        variables = cell.init(jax.random.PRNGKey(seed), cell.initialize_carry(None, x_sweep[:, 0].shape), x_sweep[:, 0])

        def at_scale(scale, cell=cell, variables=variables):
            scaled = {"params": {**variables["params"], "recurrent_kernel": scale * variables["params"]["recurrent_kernel"]}}
            return cell_hidden_gradients(cell, scaled, x_sweep, read_last)

        # every scale in one vmapped program: the configurations differ only in values
        all_grads = jax.jit(jax.vmap(at_scale))(jnp.asarray(scales, jnp.float32)) if len(scales) else []
        for scale, grads in zip(scales, all_grads):
            result["sweep"].append({"activation": activation, "scale": float(scale),
                                    **profile_summary(safe_norms(grads))})
    return result


TASKS = {
    "adding": dict(data=memory_tasks.adding_problem, loss="mse", baseline=lambda t: memory_tasks.ADDING_BASELINE_MSE,
                   solved=0.01, unit="MSE"),
    "copy": dict(data=memory_tasks.copy_memory, loss="sparse_categorical_crossentropy",
                 baseline=memory_tasks.copy_baseline, solved=None, unit="cross-entropy (nats per step)"),
}


def _copy_recall(predictions: np.ndarray, y: np.ndarray) -> float:
    """Fraction of the 10 recalled symbols predicted right (argmax over the last COPY_LENGTH steps)."""
    tail = slice(-memory_tasks.COPY_LENGTH, None)
    return float(np.mean(np.argmax(predictions[:, tail], axis=-1) == y[:, tail]))


def memory_study(task: str, cells: Sequence[str] = CELLS, lengths: Sequence[int] = (100,),
                 clipnorms: Sequence[float | None] = (None, 1.0), *, steps: int = 2000, batch_size: int = 64,
                 units: int = 64, learning_rate: float = 1e-2, eval_every: int = 100, test_examples: int = 1000,
                 profile_examples: int = 64, seed: int = 0, seeds: int = 1, workers: int | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """Train each cell × length × clipnorm with Adam on a long-memory task; learning curves against the baseline.

    task "adding" (SequenceClassifier, MSE; solved below 0.01) or "copy" (SequenceTagger over the
    10-token vocabulary, cross-entropy per step; also "recall", the accuracy on the 10 copied
    symbols). The training set holds eval_every · batch_size sequences, visited once between two
    evaluations on `test_examples` held-out ones. Records, in grid order (length, cell, clipnorm):
    "steps" (x axis), "train_loss", "test_loss", "final_test_loss", "baseline", "finite", "seconds"
    and "ms_per_step" (the fit's wall time, while the other workers' fits share the cores), and the
    mean ‖∂L/∂h_t‖ over t after training ("trained_profile", on profile_examples test sequences).
    seeds = k trains every configuration with the fit seeds seed … seed + k - 1 (initialization and
    shuffling; the sequences stay the same): the curves, final losses and recall are then means over
    seeds with "…_spread" (std over seeds) and "…_seeds" beside them, "trained_profile" is the mean
    profile, "finite" holds for every seed, and "seconds" is the seeds' sum. The fits run
    concurrently, `workers` at a time (None: one per CPU core; XLA releases the GIL while it runs),
    each exactly as alone: the records are the same for any `workers`. `progress` shows a tqdm bar.
    """
    from tqdm.auto import tqdm

    spec = _checks.lookup("task", task, TASKS)
    for name in cells:
        _checks.lookup("cell", name, recurrent.CELLS)
    for length in lengths:
        _checks.check_number(length, "lengths", integer=True, positive=True)
    for clip in clipnorms:
        if clip is not None:
            _checks.check_number(clip, "clipnorms", positive=True)
    for value, name in ((steps, "steps"), (batch_size, "batch_size"), (units, "units"), (eval_every, "eval_every"),
                        (test_examples, "test_examples"), (profile_examples, "profile_examples")):
        _checks.check_number(value, name, integer=True, positive=True)
    _checks.check_number(learning_rate, "learning_rate", positive=True)
    if steps < eval_every:
        raise ValueError(f"steps must be >= eval_every ({eval_every}), got {steps}")
    _checks.check_number(seeds, "seeds", integer=True, positive=True)
    grid = [(int(length), name, clip) for length in lengths for name in cells for clip in clipnorms]
    pool_size = study_workers(workers, len(grid) * seeds)
    data = {length: (spec["data"](eval_every * batch_size, length, seed), spec["data"](test_examples, length, seed + 1))
            for length in dict.fromkeys(length for length, _, _ in grid)}
    settings = dict(steps=steps, batch_size=batch_size, units=units, learning_rate=learning_rate,
                    eval_every=eval_every, profile_examples=profile_examples)
    bar = tqdm(total=len(grid) * seeds, unit="fit", desc=f"{task} study", disable=not progress)
    with ThreadPoolExecutor(pool_size, thread_name_prefix=f"jdl-{task}-study") as pool:
        futures = [[pool.submit(_memory_record, task, spec, *config, data[config[0]], settings, seed + k)
                    for k in range(seeds)] for config in grid]
        try:
            for future in as_completed([f for fits in futures for f in fits]):
                future.result()
                bar.update(1)
        except BaseException:  # an error or Ctrl-C: start no further fit; the running ones end with their fits
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
    records = [_over_seeds([f.result() for f in fits]) for fits in futures]
    return {"study": task, "unit": spec["unit"], "solved_below": spec["solved"], "steps": steps,
            "batch_size": batch_size, "units": units, "learning_rate": learning_rate, "eval_every": eval_every,
            "train_examples": eval_every * batch_size, "test_examples": test_examples, "seeds": seeds,
            "records": records}


def _over_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One record from a configuration's per-seed records (memory_study's docstring); one seed: its record."""
    if len(runs) == 1:
        return runs[0]
    seeds, first = len(runs), runs[0]
    record = {key: first[key] for key in ("cell", "length", "clipnorm", "baseline")}
    record["steps"] = max((r["steps"] for r in runs), key=len)
    for key in ("train_loss", "test_loss"):  # a seed stopped early (non-finite) is padded with NaN
        rows = np.full((seeds, len(record["steps"])), np.nan)
        for row, r in zip(rows, runs):
            row[:len(r[key])] = r[key]
        record.update(seed_fields(key, rows, seeds))
    for key in ("final_test_loss", "recall"):
        if key in first:
            record.update(seed_fields(key, [r[key] for r in runs], seeds))
    record["finite"] = all(r["finite"] for r in runs)
    record["stop_reason"] = next((r["stop_reason"] for r in runs if r["stop_reason"]), None)
    record["seconds"] = sum(r["seconds"] for r in runs)
    record["ms_per_step"] = float(np.mean([r["ms_per_step"] for r in runs]))
    record["trained_profile"] = profile_summary(np.asarray([r["trained_profile"]["profile"] for r in runs]))
    return record


def _memory_record(task: str, spec: dict, length: int, name: str, clip: float | None, data: tuple,
                   settings: dict, seed: int) -> dict[str, Any]:
    """One fit of `memory_study` with fit seed `seed`: its learning curves, recall (copy) and trained gradient profile."""
    from jdl import optim
    from jdl.models.rnn import SequenceClassifier, SequenceTagger
    from jdl.train.trainer import Trainer

    (x, y), (x_test, y_test) = data
    eval_every, profile_examples = settings["eval_every"], settings["profile_examples"]
    if task == "adding":
        model = SequenceClassifier(cell=name, units=settings["units"], outputs=1)
    else:
        model = SequenceTagger(cell=name, units=settings["units"], outputs=memory_tasks.COPY_VOCAB)
    trainer = Trainer(model, loss=spec["loss"], optimizer=optim.adam(settings["learning_rate"], clipnorm=clip))
    start = time.perf_counter()
    state, history = trainer.fit(x, y, epochs=settings["steps"] // eval_every, batch_size=settings["batch_size"],
                                 shuffle=True, validation_data=(x_test, y_test), verbose=0, seed=seed)
    seconds = time.perf_counter() - start
    train_loss = np.asarray(history.history["loss"], np.float64)
    test_loss = np.asarray(history.history["val_loss"], np.float64)
    done = len(train_loss) * eval_every
    record = {"cell": name, "length": length, "clipnorm": clip,
              "steps": (eval_every * np.arange(1, len(train_loss) + 1)).tolist(),
              "train_loss": train_loss.tolist(), "test_loss": test_loss.tolist(),
              "final_test_loss": float(test_loss[-1]), "baseline": float(spec["baseline"](length)),
              "finite": bool(np.all(np.isfinite(train_loss))) and history.stop_reason is None,
              "stop_reason": history.stop_reason, "seconds": seconds, "ms_per_step": 1e3 * seconds / done}
    if task == "copy":
        record["recall"] = _copy_recall(np.asarray(trainer.predict(state, x_test)), y_test)
    norms = hidden_gradient_norms(model, state.variables, x_test[:profile_examples],
                                  y_test[:profile_examples], spec["loss"])
    record["trained_profile"] = profile_summary(norms)
    return record


def adding_study(cells: Sequence[str] = CELLS, lengths: Sequence[int] = (50, 100, 200), *, seeds: int = 1,
                 progress: bool = False, **options: Any) -> dict[str, Any]:
    """`memory_study("adding", ...)`: the adding problem, baseline MSE 1/6, solved below 0.01."""
    return memory_study("adding", cells, lengths, seeds=seeds, progress=progress, **options)


def copy_study(cells: Sequence[str] = CELLS, lengths: Sequence[int] = (20, 50, 100), *, seeds: int = 1,
               progress: bool = False, **options: Any) -> dict[str, Any]:
    """`memory_study("copy", ...)`: the copy-memory task, baseline 10 ln 8 / (T + 20) nats per step."""
    return memory_study("copy", cells, lengths, seeds=seeds, progress=progress, **options)


__all__ = ["CELLS", "adding_study", "cell_hidden_gradients", "copy_study", "hidden_gradient_norms", "memory_study",
           "profile_summary", "rnn_study"]
