import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_iris

from jdl.nn import Perceptron, perceptron_fit

GATE_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
AND = np.array([0.0, 0.0, 0.0, 1.0])
OR = np.array([0.0, 1.0, 1.0, 1.0])
XOR = np.array([0.0, 1.0, 1.0, 0.0])


def hand_set(weight):
    return {"params": {"kernel": jnp.full((2, 1), weight)}}


@pytest.mark.parametrize("weight, sums, outputs", [(0.7, [0, 0.7, 0.7, 1.4], AND), (1.2, [0, 1.2, 1.2, 2.4], OR)])
def test_golden_hand_set_gates_with_threshold_one(weight, sums, outputs):
    gate = Perceptron(threshold=1.0, use_bias=False)
    z = gate.apply(hand_set(weight), GATE_INPUTS, method=Perceptron.weighted_sum)
    np.testing.assert_allclose(z, sums, rtol=1e-6)
    np.testing.assert_array_equal(gate.apply(hand_set(weight), GATE_INPUTS), outputs)


def test_golden_step_example():
    neuron = Perceptron(use_bias=False)
    params = {"params": {"kernel": jnp.array([[0.8], [0.1], [0.0]])}}
    assert float(neuron.apply(params, jnp.array([[1.0, 7.0, 5.0]]), method=Perceptron.weighted_sum)[0]) == pytest.approx(1.5)
    assert float(neuron.apply(params, jnp.array([[1.0, 7.0, 5.0]]))[0]) == 1.0


def reference_rule(x, y, lr, max_epochs, threshold=0.0):
    """The perceptron rule as a plain Python loop, for comparison."""
    w, b, history = np.zeros(x.shape[1]), 0.0, []
    for _ in range(max_epochs):
        mistakes = 0
        for xi, yi in zip(x, y):
            y_hat = 1.0 if xi @ w + b > threshold else 0.0
            w, b = w + lr * (yi - y_hat) * xi, b + lr * (yi - y_hat)
            mistakes += int(yi != y_hat)
        history.append(mistakes)
        if mistakes == 0:
            break
    return w, b, history


@pytest.mark.parametrize("targets", [AND, OR], ids=["AND", "OR"])
def test_learns_linearly_separable_gates(targets):
    result = perceptron_fit(GATE_INPUTS, targets, learning_rate=0.1, max_epochs=50)
    assert result.converged
    assert result.errors[-1] == 0 and np.all(result.errors[:-1] > 0)
    np.testing.assert_array_equal(Perceptron().apply(result.params, GATE_INPUTS), targets)
    w, b, history = reference_rule(GATE_INPUTS, targets, 0.1, 50)
    np.testing.assert_allclose(result.params["params"]["kernel"][:, 0], w, atol=1e-6)
    assert float(result.params["params"]["bias"][0]) == pytest.approx(b, abs=1e-6)
    assert result.errors.tolist() == history


def test_reports_non_convergence_on_xor_after_bounded_epochs():
    result = perceptron_fit(GATE_INPUTS, XOR, learning_rate=0.1, max_epochs=25)
    assert not result.converged
    assert result.epochs == 25 and result.errors.shape == (25,)
    assert np.all(result.errors > 0)
    assert np.any(Perceptron().apply(result.params, GATE_INPUTS) != XOR)


def test_iris_setosa_versus_versicolor_converges_like_the_reference():
    iris = load_iris()
    keep = iris.target < 2
    x, y = iris.data[keep], iris.target[keep].astype(float)
    result = perceptron_fit(x, y, learning_rate=0.01, max_epochs=100)
    w, b, history = reference_rule(x, y, 0.01, 100)
    assert result.converged and history[-1] == 0
    assert result.errors.tolist() == history
    np.testing.assert_allclose(result.params["params"]["kernel"][:, 0], w, atol=1e-5)
    np.testing.assert_array_equal(Perceptron().apply(result.params, x), y)


def test_shuffled_epochs_are_deterministic_per_seed():
    a = perceptron_fit(GATE_INPUTS, OR, shuffle=True, seed=3)
    b = perceptron_fit(GATE_INPUTS, OR, shuffle=True, seed=3)
    np.testing.assert_array_equal(a.params["params"]["kernel"], b.params["params"]["kernel"])
    assert a.errors.tolist() == b.errors.tolist() and a.converged


def test_starting_params_and_threshold_are_used():
    start = {"params": {"kernel": jnp.full((2, 1), 0.7), "bias": jnp.zeros(1)}}
    result = perceptron_fit(GATE_INPUTS, AND, params=start, threshold=1.0, max_epochs=5)
    assert result.converged and result.epochs == 1
    np.testing.assert_allclose(result.params["params"]["kernel"], np.full((2, 1), 0.7))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"y must hold binary labels in \{0, 1\}"):
        perceptron_fit(GATE_INPUTS, [0, 1, 2, 1])
    with pytest.raises(ValueError, match=r"x and y must have the same number of examples"):
        perceptron_fit(GATE_INPUTS, [0, 1, 1])
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got shape \(4,\)"):
        perceptron_fit(np.zeros(4), AND)
    with pytest.raises(ValueError, match="max_epochs must be > 0"):
        perceptron_fit(GATE_INPUTS, AND, max_epochs=0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        perceptron_fit(GATE_INPUTS, AND, learning_rate=-1.0)
    with pytest.raises(ValueError, match="x must be finite"):
        perceptron_fit(np.where(GATE_INPUTS == 1, np.nan, 0), AND)
    with pytest.raises(ValueError, match=r"params must hold kernel of shape \(2, 1\)"):
        perceptron_fit(GATE_INPUTS, AND, params={"params": {"kernel": jnp.zeros((3, 1)), "bias": jnp.zeros(1)}})
