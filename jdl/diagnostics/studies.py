"""The vanishing/exploding-gradient studies of the course, as functions returning every number.

- `depth_study`: per-layer gradient norms of deep MLPs on digits at initialization (and after some
  training steps) over a grid of activation × initializer × depth × batch norm × residual, the
  textbook picture of Glorot & Bengio (2010): sigmoid with small uniform weights starves the
  first layers; He init with ReLU, batch norm and residual connections cure it; a large init
  explodes, and gradient clipping tames the update.
- `init_study`: He et al. (2015)'s 30-layer ReLU network: the standard deviation of each layer's
  activations under Xavier (shrinks by ≈ 1/√2 per layer) and He (stays constant) initialization.
- `rnn_study`, `adding_study`, `copy_study`: gradients through time (from `rnn_studies`).
- `glorot_study`, `he_study`, `pascanu_study`, `noise_scale_study`: papers reproduced (from `papers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl.diagnostics.papers import glorot_study, he_study, noise_scale_study, pascanu_study  # noqa: F401  (re-exported)
from jdl.diagnostics.rnn_studies import adding_study, copy_study, rnn_study  # noqa: F401  (re-exported)
from jdl.diagnostics.study_grid import seed_fields, study_workers
from jdl.nn import activations as activations_lib
from jdl.nn import initializers as initializers_lib

LARGE_INIT_STDDEV = 1.0
INITS = ("uniform", "xavier_normal", "he_normal", "large")


def initializer(name: str) -> Any:
    """An initializer by name; "large" is N(0, 1) whatever the width (the deliberately exploding one)."""
    if name == "large":
        return initializers_lib.random_normal(stddev=LARGE_INIT_STDDEV)
    return initializers_lib.get(name)


class DeepMLP(nn.Module):
    """x (n, d) -> Dense(width) -> depth × [Dense(width) → BatchNorm? → activation (+ x if residual)] -> Dense(outputs).

    Layers are Dense_0 (input projection, then the activation), Dense_1 … Dense_depth (the hidden
    blocks) and Dense_{depth+1} (the head): depth + 2 weight layers in all.
    """

    width: int = 256
    depth: int = 10
    outputs: int = 10
    activation: str = "relu"
    kernel_init: str = "he_normal"
    batch_norm: bool = False
    residual: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        act = activations_lib.get(self.activation)
        init = initializer(self.kernel_init)
        h = act(nn.Dense(self.width, kernel_init=init)(x.reshape(x.shape[0], -1)))
        for _ in range(self.depth):
            z = nn.Dense(self.width, kernel_init=init, use_bias=not self.batch_norm)(h)
            if self.batch_norm:
                z = nn.BatchNorm(use_running_average=not train, momentum=0.9)(z)
            h = h + act(z) if self.residual else act(z)
        return nn.Dense(self.outputs, kernel_init=init)(h)


def _digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from jdl import data

    dataset = data.load("digits")
    scaler = data.Standardizer.fit(dataset.x_train)
    x = np.asarray(scaler(dataset.x_train), np.float32)
    y = np.asarray(dataset.y_train, np.int32)
    pick = np.random.default_rng(seed).permutation(len(x))[: min(n, len(x))]
    return x[pick], y[pick]


def kernel_norms(grads: Any) -> np.ndarray:
    """‖∂L/∂W_l‖ of Dense_0 … Dense_L in layer order."""
    names = sorted((k for k in grads if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1]))
    return np.asarray([float(jnp.linalg.norm(grads[k]["kernel"])) for k in names])


def _check_depth_grid(activations, inits, depths, width, steps, learning_rate, clipnorm, examples, seeds) -> None:
    for name in activations:
        activations_lib.get(name)
    for name in inits:
        if name != "large":
            initializers_lib.get(name)
    for depth in depths:
        _checks.check_number(depth, "depths", integer=True, positive=True)
    _checks.check_number(width, "width", integer=True, positive=True)
    _checks.check_number(steps, "steps", integer=True, nonnegative=True)
    _checks.check_number(learning_rate, "learning_rate", positive=True)
    _checks.check_number(examples, "examples", integer=True, positive=True)
    _checks.check_number(seeds, "seeds", integer=True, positive=True)
    if clipnorm is not None:
        _checks.check_number(clipnorm, "clipnorm", positive=True)


def _depth_record(act, init, depth, bn, res, g0, g1, losses, steps: int, seeds: int) -> dict[str, Any]:
    """A depth-study record from one configuration's per-seed norms g0, g1 (k, L) and losses (k, steps)."""
    record: dict[str, Any] = {"activation": act, "init": init, "depth": int(depth), "batch_norm": bool(bn),
                              "residual": bool(res)}
    record.update(seed_fields("init_norms", g0, seeds))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = g0[:, 0].astype(np.float64) / g0[:, -1]
        first_to_last = float(ratios[0]) if seeds == 1 else float(np.exp(np.mean(np.log(ratios))))
    record["first_to_last"] = first_to_last
    if seeds > 1:
        record["first_to_last_seeds"] = ratios.tolist()
    if steps:
        record.update(seed_fields("trained_norms", g1, seeds))
        record.update(seed_fields("losses", losses, seeds))
        record.update(final_loss=float(np.mean(losses[:, -1])), finite=bool(np.all(np.isfinite(losses))))
    return record


def _fetch(program: Any, *args: Any) -> Any:
    """program(*args) on the host: one configuration, run on a worker thread (XLA releases the GIL while it runs)."""
    return jax.device_get(program(*args))


def depth_study(
    activations: Sequence[str] = ("sigmoid", "tanh", "relu", "leaky_relu", "elu"),
    inits: Sequence[str] = INITS,
    depths: Sequence[int] = (2, 5, 10, 20, 30),
    batch_norm: Sequence[bool] = (False, True),
    residual: Sequence[bool] = (False,),
    *,
    width: int = 256,
    steps: int = 0,
    learning_rate: float = 0.01,
    clipnorm: float | None = None,
    examples: int = 512,
    seed: int = 0,
    seeds: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Per-layer ‖∂L/∂W_l‖ of DeepMLPs on digits over the grid, at init and after `steps` full-batch SGD steps.

    Each record holds the configuration, "init_norms" (Dense_0 … head), "first_to_last" =
    ‖∂L/∂W_0‖ / ‖∂L/∂W_head‖ at init, and with steps > 0 "trained_norms", "losses" (per step),
    "final_loss" and "finite" (False when training diverged). seeds = k repeats every
    configuration with seeds seed … seed + k - 1 (initialization and data subset): the lists are
    then means over seeds with "…_spread" (std over seeds) and "…_seeds" beside them, and
    first_to_last is the geometric mean of the per-seed ratios. All initializers and seeds of one
    (activation, batch norm, residual) run through one compiled program per depth, hidden layers
    under lax.scan (`stacked_mlp`); they run concurrently, one per CPU core, while the next group's
    program compiles. `progress` shows a tqdm bar over configurations.
    """
    from jdl.diagnostics import stacked_mlp

    _check_depth_grid(activations, inits, depths, width, steps, learning_rate, clipnorm, examples, seeds)
    seed_list = [seed + k for k in range(seeds)]
    data = [_digits(examples, s) for s in seed_list]
    batch = [(init, s) for init in inits for s in range(seeds)]
    stacked_params: dict[tuple, Any] = {}

    def params_of(depth: int, bn: bool, res: bool) -> Any:
        key = (depth, bn, res)
        if key not in stacked_params:
            if any(k[1:] != (bn, res) for k in stacked_params):
                stacked_params.clear()
            per_config = []
            for init, s in batch:
                model = DeepMLP(width=width, depth=depth, kernel_init=init, batch_norm=bn, residual=res)
                variables = model.init(jax.random.PRNGKey(seed_list[s]), data[s][0][:2])
                per_config.append(stacked_mlp.stack_variables(variables, depth, bn))
            stacked_params[key] = per_config
        return stacked_params[key]

    from tqdm.auto import tqdm

    results = {}
    groups = [(depth, bn, res, act) for bn in batch_norm for res in residual for act in activations for depth in depths]

    def prepare(group):
        """(the group's compiled program, its configurations' stacked parameters): built while the previous group runs."""
        depth, bn, res, act = group
        params = params_of(int(depth), bool(bn), bool(res))
        run = stacked_mlp.trainer(act, bool(bn), bool(res), int(steps), float(learning_rate), clipnorm)
        return run.lower(params[0], *data[0]).compile(), params

    bar = tqdm(total=len(groups) * len(batch), unit="config", desc="depth study", disable=not progress)
    workers = study_workers(None, len(batch))
    with ThreadPoolExecutor(1) as preparer, ThreadPoolExecutor(workers) as runners:
        upcoming = preparer.submit(prepare, groups[0]) if groups else None
        for index, (depth, bn, res, act) in enumerate(groups):
            bar.set_postfix_str(f"{act}, depth {depth}{', bn' if bn else ''}{', res' if res else ''}")
            program, params = upcoming.result()
            if index + 1 < len(groups):
                upcoming = preparer.submit(prepare, groups[index + 1])
            futures = [runners.submit(_fetch, program, p, *data[s]) for p, (_, s) in zip(params, batch)]
            outputs = []
            for future in futures:
                outputs.append(future.result())
                bar.update(1)
            g0, g1, losses = (np.stack(a) for a in zip(*outputs))
            for i, init in enumerate(inits):
                rows = slice(i * seeds, (i + 1) * seeds)
                results[act, init, depth, bn, res] = _depth_record(act, init, depth, bn, res, g0[rows], g1[rows],
                                                                   losses[rows], steps, seeds)
    bar.close()
    records = [results[act, init, depth, bn, res] for act in activations for init in inits for depth in depths
               for bn in batch_norm for res in residual]
    return {"study": "depth", "width": width, "steps": steps, "learning_rate": learning_rate,
            "clipnorm": clipnorm, "examples": int(len(data[0][0])), "seeds": seeds, "records": records}


def init_study(depth: int = 30, width: int = 512, inits: Sequence[str] = ("xavier_normal", "he_normal"),
               examples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Std of each layer's ReLU activations for a `depth`-layer bias-free ReLU net on N(0, 1) inputs, per init.

    Theory (He et al. 2015): Var[a_l] = (fan_in · Var[W] / 2) · Var[a_{l-1}], so Xavier (Var[W] =
    1/width here) halves the variance per layer (std × 1/√2) and He (2/width) keeps it.
    """
    _checks.check_number(depth, "depth", integer=True, positive=True)
    _checks.check_number(width, "width", integer=True, positive=True)
    rng = jax.random.PRNGKey(seed)
    x = jax.random.normal(jax.random.fold_in(rng, 1), (examples, width))
    result = {"study": "init", "depth": depth, "width": width, "examples": examples, "stds": {}, "ratio_per_layer": {}}
    for name in inits:
        init = initializer(name)
        keys = jax.random.split(jax.random.fold_in(rng, 2), depth)
        h, stds = x, []
        for key in keys:
            h = jax.nn.relu(h @ init(key, (width, width), jnp.float32))
            stds.append(float(jnp.std(h)))
        stds = np.asarray(stds)
        result["stds"][name] = stds.tolist()
        result["ratio_per_layer"][name] = float(np.exp(np.mean(np.diff(np.log(stds)))))
    return result
