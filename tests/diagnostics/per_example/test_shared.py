"""The shared pass: a training step's own backward pass gives the batch gradient and exact per-example norms."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.diagnostics import per_example_grad_norms
from jdl.diagnostics.per_example import core
from tests.diagnostics.per_example.cases import cross_entropy, float64_setup, weighted_cost, init_params


@pytest.mark.parametrize("name", ["mlp", "cnn", "jdl_cnn", "embedding"])
def test_shared_pass_gives_the_batch_gradient_and_exact_per_example_norms(x64, name):
    """Compiled, as inside a training step; the reference gradient is compiled too."""
    model, params, x, y, loss_fn = float64_setup(name)
    w = jnp.asarray([1.0, 0.0, 2.5, 1.0, 0.5, 3.0])
    cost_fn = weighted_cost(model, x, y, w)
    plan = core.make_plan(loss_fn, params, (x, y), "auto")
    shared = core.shared_pass(cost_fn, params, plan, len(x))
    assert shared is not None

    @jax.jit
    def step(params, w):
        (cost, aux), grads, captures = shared.value_and_grad(cost_fn, params)
        return (cost, aux), grads, shared.example_norms(captures, w)

    (cost, aux), grads, norms = step(params, w)
    (want_cost, want_aux), want_grads = jax.jit(jax.value_and_grad(cost_fn, has_aux=True))(params)
    assert float(cost) == pytest.approx(float(want_cost), rel=1e-12)
    np.testing.assert_allclose(aux["logits"], want_aux["logits"], rtol=1e-12)
    for got, want in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(want_grads)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    want_norms = np.where(np.asarray(w) > 0, per_example_grad_norms(loss_fn, params, (x, y), method="vmap"), 0.0)
    np.testing.assert_allclose(norms, want_norms, rtol=1e-9)


class _PositionsByEmbed(nn.Module):
    """Token and position embeddings; the positions' Embed sees (T,), not one row per example."""

    @nn.compact
    def __call__(self, tokens):
        h = nn.Embed(9, 4)(tokens) + nn.Embed(tokens.shape[1], 4)(jnp.arange(tokens.shape[1]))
        return nn.Dense(3)(h.mean(axis=1))


@pytest.mark.parametrize("name", ["transformer", "positions", "lstm"])
def test_no_shared_pass_when_a_parameter_needs_vmap_or_a_layer_does_not_see_one_example(x64, name):
    """The LSTM: the recurrent rule re-runs the scan, which would change the training step in the last bits."""
    if name == "positions":
        rng = np.random.RandomState(0)
        model, x, y = _PositionsByEmbed(), jnp.asarray(rng.randint(0, 9, (6, 6))), jnp.asarray(rng.randint(0, 3, 6))
        params = init_params(model, 0, x[:1])
        loss_fn = cross_entropy(model)
    else:
        model, params, x, y, loss_fn = float64_setup(name)
    plan = core.make_plan(loss_fn, params, (x, y), "auto")
    assert core.shared_pass(weighted_cost(model, x, y, jnp.ones(6)), params, plan, len(x)) is None


@pytest.mark.parametrize(("single", "batched", "n", "axis"), [
    ((1, 3), (6, 3), 6, 0), ((5, 1, 3), (5, 6, 3), 6, 1), ((1, 3), (1, 3), 1, 0),
    ((2, 3), (2, 3), 1, None), ((1, 3), (6, 4), 6, None), ((1, 3), (6, 3, 1), 6, None), ((1, 3), (5, 3), 6, None),
])
def test_the_batch_axis_is_the_one_axis_of_size_1_that_becomes_n(single, batched, n, axis):
    from jdl.diagnostics.per_example.shared import batch_axis

    assert batch_axis(single, batched, n) == axis
