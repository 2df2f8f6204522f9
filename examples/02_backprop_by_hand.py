"""Backpropagation by hand on the classic 2-2-2 network, then the same numbers from `jax.grad`.

Inputs (0.05, 0.10), targets (0.01, 0.99), sigmoid everywhere, E = Σ ½(target - out)²
(the course notes' worked example). It computes in float64 (the notes print nine digits), inside `jax.enable_x64`, so
the global setting is left as it was. Run: python examples/02_backprop_by_hand.py
"""

import argparse
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdl import losses
from jdl.nn import activations

X = np.array([[0.05, 0.10]])  # NumPy float64: a jnp array made at import would be float32
TARGET = np.array([[0.01, 0.99]])
LEARNING_RATE = 0.5


class TwoTwoTwo(nn.Module):
    """x (1, 2) -> h = sigmoid(x W1 + b1) (1, 2) -> out = sigmoid(h W2 + b2) (1, 2)."""

    @nn.compact
    def __call__(self, x):
        h = activations.sigmoid(nn.Dense(2, name="hidden")(x))
        self.sow("intermediates", "out_h", h)
        return activations.sigmoid(nn.Dense(2, name="output")(h))


def notes_params():
    """w1..w8 = 0.15 .. 0.55 laid out as Dense kernels (in, out): w1: i1→h1, w2: i2→h1, w3: i1→h2, ..."""
    w1, w2, w3, w4, w5, w6, w7, w8 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55
    return {
        "hidden": {"kernel": jnp.array([[w1, w3], [w2, w4]]), "bias": jnp.array([0.35, 0.35])},
        "output": {"kernel": jnp.array([[w5, w7], [w6, w8]]), "bias": jnp.array([0.60, 0.60])},
    }


def total_error(params):
    """E_total = Σ ½(target - out)², through jdl's summed squared error."""
    out = TwoTwoTwo().apply({"params": params}, X)
    return 0.5 * losses.mean_squared_error(TARGET[0], out[0], reduction="sum")


def run():
    """Forward pass, both gradients (chain rule by hand and jax.grad) and one SGD step."""
    params = notes_params()
    out, state = TwoTwoTwo().apply({"params": params}, X, mutable="intermediates")
    out_h = state["intermediates"]["out_h"][0][0]
    out_o = out[0]
    error = total_error(params)

    delta_o1 = (out_o[0] - TARGET[0, 0]) * out_o[0] * (1 - out_o[0])
    delta_o2 = (out_o[1] - TARGET[0, 1]) * out_o[1] * (1 - out_o[1])
    by_hand_w5 = delta_o1 * out_h[0]
    w5, w7 = params["output"]["kernel"][0]
    by_hand_w1 = (delta_o1 * w5 + delta_o2 * w7) * out_h[0] * (1 - out_h[0]) * X[0, 0]

    grads = jax.grad(total_error)(params)
    tx = optax.sgd(LEARNING_RATE)
    updates, _ = tx.update(grads, tx.init(params))
    new_params = optax.apply_updates(params, updates)
    return {
        "out_h1": float(out_h[0]), "out_h2": float(out_h[1]),
        "out_o1": float(out_o[0]), "out_o2": float(out_o[1]),
        "E_total": float(error),
        "dE/dw5 (chain rule)": float(by_hand_w5), "dE/dw5 (jax.grad)": float(grads["output"]["kernel"][0, 0]),
        "dE/dw1 (chain rule)": float(by_hand_w1), "dE/dw1 (jax.grad)": float(grads["hidden"]["kernel"][0, 0]),
        "w5 after one step": float(new_params["output"]["kernel"][0, 0]),
        "w1 after one step": float(new_params["hidden"]["kernel"][0, 0]),
    }


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)  # no options but --help
    print("The 2-2-2 network of the notes: forward, backward, one step with learning rate 0.5")
    with jax.enable_x64(True):  # float64 here only, not for whoever imports or calls this
        results = run()
    for name, value in results.items():
        print(f"  {name:<22} {value:.9f}")


if __name__ == "__main__":
    sys.exit(main())
