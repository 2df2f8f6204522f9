"""Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural networks", at init.

Five tanh hidden layers on digits, "standard" init W ~ U[-1/√n_in, 1/√n_in] against "normalized" init
W ~ U[-√6/√(n_in + n_out), √6/√(n_in + n_out)], biases 0. Per layer: the activations h_i (Fig. 6), the
back-propagated gradients ∂ℓ/∂s_i of the pre-activations (Fig. 7), the weight gradients ∂L/∂W_i (Fig. 8),
and the singular values of the layer Jacobians J_i = ∂h_(i+1)/∂h_i = diag(1 - h_(i+1)²) W_(i+1)ᵀ (Sec. 4.2.2).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdl import _checks
from jdl.nn import initializers as initializers_lib

INITS = {"standard": "uniform", "normalized": "xavier_uniform"}
PAPER = {"mean_singular_value": {"standard": 0.5, "normalized": 0.8}}
SINGULAR_VALUE_TOLERANCE = 0.1  # |jdl - paper| for "agrees" (the paper gives one digit)


def init_params(name: str, sizes: list[int], seed: int) -> list[dict[str, jax.Array]]:
    """[{"kernel": (n_in, n_out), "bias": zeros}] per layer, the kernels drawn by initializer `name`, one key per layer."""
    init = initializers_lib.get(name)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    return [{"kernel": init(k, (a, b), jnp.float32), "bias": jnp.zeros((b,), jnp.float32)}
            for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def forward(params: list[dict], x: jax.Array, shifts: list[jax.Array]) -> tuple[jax.Array, list[jax.Array]]:
    """(logits, [h_1 … h_L]): h_i = tanh(h_(i-1) W_i + b_i + shift_i); the shifts (zeros) expose ∂ℓ/∂s_i."""
    h, hidden = x, []
    for layer, shift in zip(params[:-1], shifts):
        h = jnp.tanh(h @ layer["kernel"] + layer["bias"] + shift)
        hidden.append(h)
    return h @ params[-1]["kernel"] + params[-1]["bias"], hidden


def at_init(params: list[dict], x: jax.Array, y: jax.Array, jacobian_examples: int) -> dict[str, Any]:
    """Activations (L, n, w), per-example ∂ℓ_i/∂s_i (L, n, w), ∂L/∂W_i and the Jacobians' singular values (L-1, m, w)."""
    n = x.shape[0]
    shifts = [jnp.zeros((n, layer["kernel"].shape[1])) for layer in params[:-1]]

    def loss(params, shifts):
        logits, hidden = forward(params, x, shifts)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), hidden

    (_, hidden), (weight_grads, shift_grads) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, shifts)

    def singular_values(h_next, kernel):
        return jnp.linalg.svd((1 - h_next[:, None] ** 2) * kernel.T, compute_uv=False)

    svs = [jax.vmap(singular_values, (0, None))(hidden[i + 1][:jacobian_examples], params[i + 1]["kernel"])
           for i in range(len(hidden) - 1)]
    return {"activations": jnp.stack(hidden), "backprop": n * jnp.stack(shift_grads),
            "weight_grad_var": jnp.stack([jnp.var(g["kernel"]) for g in weight_grads[:-1]]),
            "singular_values": jnp.stack(svs)}


def _histograms(values: np.ndarray, limit: float, bins: int) -> list[list[int]]:
    edges = np.linspace(-limit, limit, bins + 1)
    return [np.histogram(np.clip(v, -limit, limit), edges)[0].tolist() for v in values.reshape(len(values), -1)]


def glorot_study(width: int = 256, layers: int = 5, *, examples: int = 512, jacobian_examples: int = 64,
                 bins: int = 41, seed: int = 0) -> dict[str, Any]:
    """Glorot & Bengio's measurements at initialization for both inits: every number, with the paper's beside it.

    Per init: "activation_std" and "backprop_std" per hidden layer (1 = nearest the input), histograms of both
    ("activation_hist" over [-1, 1], "backprop_hist" over ± the larger init's 99.5th percentile, `bins` bins),
    "weight_grad_var" per hidden layer's kernel, "singular_values_mean" per Jacobian and overall
    ("mean_singular_value"); "paper" holds the paper's numbers.
    """
    from jdl.diagnostics.studies import _digits

    for value, name in ((width, "width"), (layers, "layers"), (examples, "examples"),
                        (jacobian_examples, "jacobian_examples"), (bins, "bins")):
        _checks.check_number(value, name, integer=True, positive=True)
    if layers < 2:
        raise ValueError(f"layers must be at least 2 (a Jacobian between two hidden layers), got {layers}")
    x, y = _digits(examples, seed)
    sizes = [x.shape[1]] + [width] * layers + [10]
    measured = {name: jax.device_get(jax.jit(at_init, static_argnums=3)(init_params(init, sizes, seed), x, y,
                                                                         min(jacobian_examples, len(x))))
                for name, init in INITS.items()}
    limit = float(max(np.quantile(np.abs(m["backprop"]), 0.995) for m in measured.values()))
    result: dict[str, Any] = {"study": "glorot", "width": width, "layers": layers, "examples": int(len(x)),
                              "jacobian_examples": int(min(jacobian_examples, len(x))), "bins": bins,
                              "backprop_limit": limit, "initializers": dict(INITS), "paper": PAPER,
                              "singular_value_tolerance": SINGULAR_VALUE_TOLERANCE, "inits": {}}
    for name, m in measured.items():
        acts, back = np.asarray(m["activations"], np.float64), np.asarray(m["backprop"], np.float64)
        svs = np.asarray(m["singular_values"], np.float64)
        result["inits"][name] = {
            "activation_std": acts.reshape(layers, -1).std(axis=1).tolist(),
            "backprop_std": back.reshape(layers, -1).std(axis=1).tolist(),
            "activation_hist": _histograms(acts, 1.0, bins), "backprop_hist": _histograms(back, limit, bins),
            "weight_grad_var": np.asarray(m["weight_grad_var"], np.float64).tolist(),
            "singular_values_mean": svs.reshape(layers - 1, -1).mean(axis=1).tolist(),
            "mean_singular_value": float(svs.mean())}
    return result
