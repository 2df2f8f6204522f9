"""Perceptrons as logic gates: the notes' hand-set AND/OR, learned gates, XOR's failure, and its MLP fix.

Run: python examples/01_perceptron_logic_gates.py
"""

import argparse
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdl import losses, metrics
from jdl.nn import Perceptron, activations, initializers, perceptron_fit

INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
GATES = {"AND": np.array([0.0, 0.0, 0.0, 1.0]), "OR": np.array([0.0, 1.0, 1.0, 1.0]), "XOR": np.array([0.0, 1.0, 1.0, 0.0])}


def hand_set_gate(name, weight, threshold=1.0):
    """The notes' gate: both weights equal, no bias, output 1 when the weighted sum exceeds the threshold."""
    gate = Perceptron(threshold=threshold, use_bias=False)
    params = {"params": {"kernel": jnp.full((2, 1), weight)}}
    sums = gate.apply(params, INPUTS, method=Perceptron.weighted_sum)
    outputs = gate.apply(params, INPUTS)
    print(f"\n{name} with weights {weight} and threshold {threshold}:")
    print("  x1 x2 | weighted sum | output | target")
    for x, s, out, target in zip(INPUTS, sums, outputs, GATES[name]):
        print(f"   {x[0]:.0f}  {x[1]:.0f} | {float(s):12.1f} | {float(out):6.0f} | {target:6.0f}")
    return np.asarray(outputs)


def learned_gate(name, max_epochs=20):
    """Learn the gate with the perceptron rule (w += η(y - ŷ)x) and report convergence."""
    result = perceptron_fit(INPUTS, GATES[name], learning_rate=0.1, max_epochs=max_epochs)
    w = np.asarray(result.params["params"]["kernel"][:, 0])
    b = float(result.params["params"]["bias"][0])
    outputs = np.asarray(Perceptron().apply(result.params, INPUTS))
    status = f"converged after {result.epochs} epochs" if result.converged else f"did NOT converge in {result.epochs} epochs"
    print(f"  {name:<3}: {status}; mistakes per epoch {result.errors.tolist()}")
    print(f"       w = [{w[0]:.2f}, {w[1]:.2f}], b = {b:.2f}, outputs {outputs.astype(int).tolist()} "
          f"(target {GATES[name].astype(int).tolist()})")
    return result


class XorMLP(nn.Module):
    """One hidden layer of 8 tanh units and a sigmoid output (as logits): enough for XOR."""

    @nn.compact
    def __call__(self, x):
        h = activations.tanh(nn.Dense(8, kernel_init=initializers.xavier_normal())(x))
        return nn.Dense(1)(h)[:, 0]


def mlp_solves_xor(steps=500, seed=0):
    """Train the MLP on XOR with Adam and binary cross-entropy on logits, all steps in one lax.scan."""
    model, tx = XorMLP(), optax.adam(0.05)
    x, y = jnp.asarray(INPUTS), jnp.asarray(GATES["XOR"])
    params = model.init(jax.random.PRNGKey(seed), x)

    def cost(p):
        return losses.binary_crossentropy(y, model.apply(p, x))

    def step(carry, _):
        p, opt_state = carry
        loss, grads = jax.value_and_grad(cost)(p)
        updates, opt_state = tx.update(grads, opt_state)
        return (optax.apply_updates(p, updates), opt_state), loss

    (params, _), history = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))((params, tx.init(params)))
    probabilities = activations.sigmoid(model.apply(params, x))
    accuracy = float(metrics.accuracy(y, probabilities))
    print(f"\nA 2-8-1 MLP on XOR: cross-entropy {float(history[0]):.3f} -> {float(history[-1]):.4f} in {steps} Adam steps")
    print(f"  outputs {np.round(np.asarray(probabilities), 3).tolist()}, accuracy {accuracy:.2f}")
    return accuracy


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)  # no options but --help
    hand_set_gate("AND", 0.7)
    hand_set_gate("OR", 1.2)
    print("\nLearning the gates with the perceptron rule (learning rate 0.1, weights start at 0):")
    for name in GATES:
        learned_gate(name)
    print("XOR is not linearly separable: no line splits {01, 10} from {00, 11}, so the rule never settles.")
    mlp_solves_xor()


if __name__ == "__main__":
    sys.exit(main())
