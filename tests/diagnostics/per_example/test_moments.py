"""Σ_i g_i and Σ_i g_i² against per_example_grads (itself checked against a loop of jax.grad in test_api)."""

import jax
import numpy as np
import pytest

from jdl.diagnostics import per_example_grads, per_example_moments
from tests.diagnostics.per_example.cases import float64_setup


@pytest.mark.parametrize("name", ["mlp", "cnn", "embedding", "transformer", "lstm", "gru"])
def test_sums_of_per_example_gradients_and_of_their_squares(x64, name):
    model, params, x, y, loss_fn = float64_setup(name)
    stacked = jax.device_get(per_example_grads(loss_fn, params, (x, y)))
    loop = [jax.tree_util.tree_map(lambda g: g[i], stacked) for i in range(len(x))]
    total, squares = per_example_moments(loss_fn, params, (x, y), chunk_size=4)
    want_total = jax.tree_util.tree_map(lambda *g: sum(g), *loop)
    want_squares = jax.tree_util.tree_map(lambda *g: sum(gi**2 for gi in g), *loop)
    for got, want in zip(jax.tree_util.tree_leaves((total, squares)), jax.tree_util.tree_leaves((want_total, want_squares))):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
