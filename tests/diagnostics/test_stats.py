"""Gradient and activation statistics against NumPy formulas on explicit per-example gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.diagnostics import stats
from jdl.diagnostics.jacobian import jacobian_singular_values
from jdl.models import MLP


def _tree(rng, n=None):
    lead = () if n is None else (n,)
    return {"Dense_0": {"kernel": rng.randn(*lead, 3, 2), "bias": rng.randn(*lead, 2)},
            "Dense_1": {"kernel": rng.randn(*lead, 2, 1), "bias": rng.randn(*lead, 1)}}


def _flat(tree, layer, n=None):
    parts = [np.asarray(v).reshape((n, -1) if n else (-1,)) for _, v in sorted(tree[layer].items())]
    return np.concatenate(parts, axis=-1)


def test_layer_norms_update_ratios_and_distance_from_init(x64):
    rng = np.random.RandomState(0)
    old, new = _tree(rng), _tree(rng)
    for layer in ("Dense_0", "Dense_1"):
        a, b = _flat(old, layer), _flat(new, layer)
        assert float(stats.layer_norms(old)[layer]) == pytest.approx(np.linalg.norm(a))
        assert float(stats.update_ratios(old, new)[layer]) == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a))
        assert float(stats.distance_from_init(new, old)[layer]) == pytest.approx(np.linalg.norm(b - a))
    everything = np.concatenate([_flat(old, "Dense_0"), _flat(old, "Dense_1")])
    assert float(stats.global_norm(old)) == pytest.approx(np.linalg.norm(everything))


def test_gsnr_and_noise_scale_match_their_definitions_on_explicit_per_example_gradients(x64):
    rng = np.random.RandomState(1)
    n = 40
    per_example = _tree(rng, n)
    per_example["Dense_0"]["kernel"] += 0.7  # a signal shared by all examples in one layer
    total = jax.tree_util.tree_map(lambda g: g.sum(0), per_example)
    squares = jax.tree_util.tree_map(lambda g: (g**2).sum(0), per_example)
    got = stats.gsnr(total, squares, n)
    all_g = []
    for layer in ("Dense_0", "Dense_1"):
        g = _flat(per_example, layer, n)
        all_g.append(g)
        assert float(got[layer]) == pytest.approx(np.mean(g.mean(0) ** 2 / g.var(0, ddof=1)), rel=1e-9)
    assert got["Dense_0"] > 10 * got["Dense_1"]
    g = np.concatenate(all_g, axis=1)
    trace = g.var(0, ddof=1).sum()
    expected = trace / (np.sum(g.mean(0) ** 2) - trace / n)
    assert float(stats.noise_scale(total, squares, n)) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="n must be at least 2"):
        stats.gsnr(total, squares, 1)


def test_norm_distribution_quantiles_and_largest_examples():
    norms = np.random.RandomState(2).gamma(2.0, size=101).astype(np.float32)
    summary = stats.norm_distribution(norms, k=3)
    np.testing.assert_allclose(summary["quantiles"], np.quantile(norms, [0.05, 0.25, 0.5, 0.75, 0.95]), rtol=1e-5)
    assert list(np.asarray(summary["top_indices"])) == list(np.argsort(-norms)[:3])
    assert float(summary["mean"]) == pytest.approx(norms.mean(), rel=1e-6)
    with pytest.raises(ValueError, match="norms must have shape"):
        stats.norm_distribution(np.zeros((2, 2)))


def test_activation_statistics_saturation_and_dead_units():
    z = jnp.asarray([[5.0, 0.0, -5.0, 1.0], [6.0, 0.1, -7.0, -1.0]])
    sig = stats.activation_stats(z, "sigmoid")
    assert float(sig["saturated"]) == pytest.approx(4 / 8), "|z| >= 5 saturates a sigmoid beyond 0.99"
    tanh = stats.activation_stats(z, "tanh")
    assert float(tanh["saturated"]) == pytest.approx(4 / 8)
    relu = stats.activation_stats(z, "relu")
    assert float(relu["dead"]) == pytest.approx(1 / 4), "only unit 2 is negative for every example"
    assert float(relu["mean"]) == pytest.approx(np.maximum(np.asarray(z), 0).mean())


def test_preactivations_are_the_hidden_dense_outputs_and_batch_norm_outputs_when_present():
    x = np.random.RandomState(3).randn(6, 4).astype(np.float32)
    model = MLP(hidden=(5, 3), outputs=2)
    variables = model.init(jax.random.PRNGKey(0), x)
    z = stats.preactivations(model.apply, variables, x)
    assert list(z) == ["Dense_0", "Dense_1"]
    p = variables["params"]
    z0 = x @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    np.testing.assert_allclose(z["Dense_0"], z0, rtol=1e-5)
    np.testing.assert_allclose(z["Dense_1"], np.maximum(z0, 0) @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"], rtol=1e-5, atol=1e-6)
    bn = MLP(hidden=(5, 3), outputs=2, batch_norm=True)
    assert list(stats.preactivations(bn.apply, bn.init(jax.random.PRNGKey(0), x), x)) == ["BatchNorm_0", "BatchNorm_1"]


def test_jacobian_singular_values_of_linear_and_tanh_maps(x64):
    rng = np.random.RandomState(4)
    w = rng.randn(3, 5)
    x = rng.randn(4, 5)
    sv = jacobian_singular_values(lambda v: jnp.tanh(w @ v), x)
    for i in range(4):
        jac = np.diag(1 - np.tanh(w @ x[i]) ** 2) @ w
        np.testing.assert_allclose(sv[i], np.linalg.svd(jac, compute_uv=False), rtol=1e-10)
    with pytest.raises(ValueError, match="x must have shape"):
        jacobian_singular_values(lambda v: v, np.ones(3))
