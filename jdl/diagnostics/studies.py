"""The vanishing/exploding-gradient studies of the course, as functions returning every number.

- `depth_study`: per-layer gradient norms of deep MLPs on digits at initialization (and after some
  training steps) over a grid of activation × initializer × depth × batch norm × residual, the
  textbook picture of Glorot & Bengio (2010): sigmoid with small uniform weights starves the
  first layers; He init with ReLU, batch norm and residual connections cure it; a large init
  explodes, and gradient clipping tames the update.
- `init_study`: He et al. (2015)'s 30-layer ReLU network: the standard deviation of each layer's
  activations under Xavier (shrinks by ≈ 1/√2 per layer) and He (stays constant) initialization.
- `rnn_study`, `adding_study`, `copy_study`: gradients through time (from `rnn_studies`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdl import _checks
from jdl.diagnostics.rnn_studies import adding_study, copy_study, rnn_study  # noqa: F401  (re-exported)
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


@functools.lru_cache(maxsize=256)
def _trainer(model: DeepMLP, steps: int, learning_rate: float, clipnorm: float | None):
    """jit: (variables, x, y) -> (kernel grad norms at init, after `steps` SGD steps, loss per step)."""
    tx = optax.sgd(learning_rate)
    if clipnorm is not None:
        tx = optax.chain(optax.clip_by_global_norm(clipnorm), tx)

    def loss_fn(params, state, x, y):
        logits, updates = model.apply({"params": params, **state}, x, train=True, mutable=list(state))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates

    def grads_of(params, state, x, y):
        (loss, updates), g = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, y)
        return loss, updates, g

    def run(variables, x, y):
        params = variables["params"]
        state = {k: v for k, v in variables.items() if k != "params"}
        _, _, g0 = grads_of(params, state, x, y)
        if steps == 0:
            return g0, g0, jnp.zeros((0,))

        def step(carry, _):
            params, state, opt = carry
            loss, updates, g = grads_of(params, state, x, y)
            change, opt = tx.update(g, opt, params)
            return (optax.apply_updates(params, change), {**state, **updates}, opt), loss

        (params, state, _), losses = jax.lax.scan(step, (params, state, tx.init(params)), None, length=steps)
        _, _, g1 = grads_of(params, state, x, y)
        return g0, g1, losses

    return jax.jit(run)


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
) -> dict[str, Any]:
    """Per-layer ‖∂L/∂W_l‖ of DeepMLPs on digits over the grid, at init and after `steps` full-batch SGD steps.

    Each record holds the configuration, "init_norms" (Dense_0 … head), "first_to_last" =
    ‖∂L/∂W_0‖ / ‖∂L/∂W_head‖ at init, and with steps > 0 "trained_norms", "losses" (per step),
    "final_loss" and "finite" (False when training diverged).
    """
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
    if clipnorm is not None:
        _checks.check_number(clipnorm, "clipnorm", positive=True)
    x, y = _digits(examples, seed)
    records = []
    for act in activations:
        for init in inits:
            for depth in depths:
                for bn in batch_norm:
                    for res in residual:
                        model = DeepMLP(width=width, depth=int(depth), activation=act, kernel_init=init,
                                        batch_norm=bool(bn), residual=bool(res))
                        variables = model.init(jax.random.PRNGKey(seed), x[:2])
                        g0, g1, losses = _trainer(model, int(steps), float(learning_rate), clipnorm)(variables, x, y)
                        init_norms = kernel_norms(g0)
                        record = {"activation": act, "init": init, "depth": int(depth), "batch_norm": bool(bn),
                                  "residual": bool(res), "init_norms": init_norms.tolist(),
                                  "first_to_last": float(init_norms[0] / init_norms[-1])}
                        if steps:
                            losses = np.asarray(losses)
                            record.update(trained_norms=kernel_norms(g1).tolist(), losses=losses.tolist(),
                                          final_loss=float(losses[-1]), finite=bool(np.all(np.isfinite(losses))))
                        records.append(record)
    return {"study": "depth", "width": width, "steps": steps, "learning_rate": learning_rate,
            "clipnorm": clipnorm, "examples": int(len(x)), "records": records}


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
