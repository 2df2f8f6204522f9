"""`studies.DeepMLP` with its hidden layers stacked: one lax.scan over depth, one compiled program per architecture.

Configurations that differ only in values (initializer, seed, data subset) share one compiled
program, and the scan over layers keeps the program the same size at any depth. It computes what
`DeepMLP.apply(..., train=True)` computes.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jdl.nn import activations as activations_lib

BATCH_NORM_EPSILON = 1e-5  # flax.linen.BatchNorm's default


def stack_variables(variables: Any, depth: int, batch_norm: bool) -> dict[str, Any]:
    """DeepMLP variables -> {"first": Dense_0, "hidden": {kernel (depth, w, w), bias or scale/shift (depth, w)}, "head"}.

    Batch statistics are dropped: in training mode DeepMLP normalizes with the batch's own statistics.
    """
    params = variables["params"]
    hidden = [params[f"Dense_{i}"] for i in range(1, depth + 1)]
    stacked = {"kernel": jnp.stack([layer["kernel"] for layer in hidden])}
    if batch_norm:
        stacked["scale"] = jnp.stack([params[f"BatchNorm_{i}"]["scale"] for i in range(depth)])
        stacked["shift"] = jnp.stack([params[f"BatchNorm_{i}"]["bias"] for i in range(depth)])
    else:
        stacked["bias"] = jnp.stack([layer["bias"] for layer in hidden])
    return {"first": dict(params["Dense_0"]), "hidden": stacked, "head": dict(params[f"Dense_{depth + 1}"])}


def _batch_norm(z: jax.Array, scale: jax.Array, shift: jax.Array) -> jax.Array:
    """(z - E[z]) / √(Var[z] + ε) · scale + shift over the batch, Var = E[z²] - E[z]² clipped at 0 (flax's fast variance)."""
    mean = z.mean(axis=0)
    var = jnp.maximum(0.0, (z * z).mean(axis=0) - mean * mean)
    return (z - mean) * (jax.lax.rsqrt(var + BATCH_NORM_EPSILON) * scale) + shift


def forward(params: dict[str, Any], x: jax.Array, activation: str, batch_norm: bool, residual: bool) -> jax.Array:
    """Logits (n, outputs) of x (n, d): act(x W_0 + b_0), depth scanned blocks [h W_l (+ b_l) → BN? → act (+ h)], head."""
    act = activations_lib.get(activation)
    first, head = params["first"], params["head"]
    h = act(x.reshape(x.shape[0], -1) @ first["kernel"] + first["bias"])

    def block(h, layer):
        z = h @ layer["kernel"]
        z = _batch_norm(z, layer["scale"], layer["shift"]) if batch_norm else z + layer["bias"]
        return (h + act(z) if residual else act(z)), None

    h, _ = jax.lax.scan(block, h, params["hidden"])
    return h @ head["kernel"] + head["bias"]


def kernel_norms(grads: dict[str, Any]) -> jax.Array:
    """‖∂L/∂W_l‖ (depth + 2,) of the first layer, each hidden layer and the head, in layer order."""
    hidden = jnp.sqrt(jnp.sum(grads["hidden"]["kernel"] ** 2, axis=(1, 2)))
    return jnp.concatenate([jnp.linalg.norm(grads["first"]["kernel"])[None], hidden,
                            jnp.linalg.norm(grads["head"]["kernel"])[None]])


def train(params: dict[str, Any], x: jax.Array, y: jax.Array, *, activation: str, batch_norm: bool, residual: bool,
          steps: int, learning_rate: float, clipnorm: float | None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(kernel norms at init (L,), after `steps` full-batch SGD steps (L,), loss per step (steps,)) of one configuration."""
    tx = optax.sgd(learning_rate)
    if clipnorm is not None:
        tx = optax.chain(optax.clip_by_global_norm(clipnorm), tx)

    def loss_fn(p):
        logits = forward(p, x, activation, batch_norm, residual)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    value_and_grad = jax.value_and_grad(loss_fn)
    _, g0 = value_and_grad(params)
    if steps == 0:
        norms = kernel_norms(g0)
        return norms, norms, jnp.zeros((0,), x.dtype)

    def step(carry, _):
        p, opt = carry
        loss, g = value_and_grad(p)
        change, opt = tx.update(g, opt, p)
        return (optax.apply_updates(p, change), opt), loss

    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    _, g1 = value_and_grad(params)
    return kernel_norms(g0), kernel_norms(g1), losses


@functools.lru_cache(maxsize=1)
def trainer(activation: str, batch_norm: bool, residual: bool, steps: int, learning_rate: float,
            clipnorm: float | None):
    """jit(train) for one (activation, batch norm, residual, steps, optimizer): every configuration that differs
    only in values (initializer, seed, data subset) and every depth reuse it (one program per depth).

    Not vmapped over configurations: on XLA's CPU backend the batched products ran slower than the same
    products one configuration at a time (benchmarks/depth_study.py); the depth study runs configurations
    concurrently on threads instead. One cache entry: the depth study visits each group once, depth by
    depth, so a finished group's programs are released instead of kept.
    """
    return jax.jit(functools.partial(train, activation=activation, batch_norm=batch_norm, residual=residual,
                                     steps=steps, learning_rate=learning_rate, clipnorm=clipnorm))
