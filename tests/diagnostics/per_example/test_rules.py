"""The layer rules: Conv patches against XLA's patch extraction; a shared layer's calls merged; the registry."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.diagnostics import per_example_grad_norms
from jdl.diagnostics.per_example import rules
from jdl.diagnostics.per_example.rules import conv, forms
from tests.diagnostics.per_example.cases import cross_entropy, init_params


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("config", [((3, 2), (2, 1), (1, 2), "SAME"), ((3, 3), (1, 1), (1, 1), "VALID"),
                                    ((2, 3), (2, 2), (2, 1), ((1, 0), (0, 2))), ((3,), (2,), (1,), "SAME")])
def test_conv_patches_equal_xlas_patch_extraction(channels, config):
    kernel = config[0]
    x = jnp.asarray(np.random.RandomState(0).randn(*((1, 9, 8)[: len(kernel) + 1] + (channels,))), jnp.float32)
    specs = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[len(kernel)]
    want = jax.lax.conv_general_dilated_patches(x, kernel, config[1], config[3], rhs_dilation=config[2],
                                                dimension_numbers=specs)
    want = jnp.moveaxis(want.reshape((-1, channels) + kernel), 1, -1).reshape(-1, channels * int(np.prod(kernel)))
    np.testing.assert_array_equal(conv.patches(x, config), want)


def test_forms_merge_by_kind_and_a_gram_and_a_direct_kernel_gradient_by_their_sum(x64):
    rng = np.random.RandomState(0)
    a1, d1, a2, d2 = (jnp.asarray(rng.randn(*s)) for s in ((3, 4), (3, 2), (5, 4), (5, 2)))
    want = a1.T @ d1 + a2.T @ d2
    for merged in (forms.Outer(a1, d1).merge(forms.Outer(a2, d2)),
                   forms.Outer(a1, d1).merge(forms.Direct((a2.T @ d2).reshape(-1))),
                   forms.Direct((a1.T @ d1).reshape(-1)).merge(forms.Outer(a2, d2))):
        np.testing.assert_allclose(merged.gradient((4, 2)), want, rtol=1e-12)
        assert float(merged.sq_norm()) == pytest.approx(float(jnp.sum(want**2)), rel=1e-12)
    ids = jnp.asarray([0, 2, 0])
    rows = forms.Rows(ids[:2], d1[:2]).merge(forms.Rows(ids[2:], d1[2:]))
    np.testing.assert_allclose(rows.gradient((3, 2)), jax.ops.segment_sum(d1, ids, num_segments=3), rtol=1e-12)
    assert float(rows.sq_norm()) == pytest.approx(float(jnp.sum(jax.ops.segment_sum(d1, ids, num_segments=3) ** 2)))


def test_a_conv_shared_by_a_large_and_a_small_input_gets_exact_norms(x64):
    """One call's kernel gradient by the Gram form (2×2 output), the other's directly (8×8)."""

    class SharedConv(nn.Module):
        @nn.compact
        def __call__(self, x):
            layer = nn.Conv(4, (3, 3), padding="SAME")
            return nn.Dense(3)(layer(x).mean(axis=(1, 2)) + layer(x[:, :2, :2]).mean(axis=(1, 2)))

    rng = np.random.RandomState(0)
    x, y = jnp.asarray(rng.randn(4, 8, 8, 2)), jnp.asarray(rng.randint(0, 3, 4))
    model = SharedConv()
    params = init_params(model, 0, x[:1], np.float64)
    loss_fn = cross_entropy(model)
    np.testing.assert_allclose(per_example_grad_norms(loss_fn, params, (x, y), method="fast"),
                               per_example_grad_norms(loss_fn, params, (x, y), method="vmap"), rtol=1e-10)


def test_each_covered_layer_type_has_one_rule_and_subclasses_have_none():
    from jdl.nn import Conv2D, Embedding, Recurrent, SimpleRNNCell

    assert rules.rule_for(nn.Dense(3)).kind == "dense"
    assert rules.rule_for(nn.DenseGeneral(3)).kind == "dense_general"
    assert rules.rule_for(nn.Conv(3, (2, 2))).kind == "conv"
    assert rules.rule_for(nn.Embed(3, 2)) is rules.rule_for(Embedding(3, 2))
    assert rules.rule_for(nn.LayerNorm()).kind == "layer_norm"
    assert rules.rule_for(Recurrent(SimpleRNNCell(2))).kind == "recurrent"
    assert rules.rule_for(Conv2D(3, 2)) is None and rules.rule_for(type("D", (nn.Dense,), {})(3)) is None
    assert {rule.kind for rule in rules.RULES.values()} == set(rules.BY_KIND)
