"""Per-example gradients and norms against a loop of jax.grad: attention and recurrent models."""

import pytest

from jdl.diagnostics.per_example import fast_path_coverage
from tests.diagnostics.per_example.cases import check_against_the_loop, float64_setup


@pytest.mark.parametrize("name", ["transformer", "jdl_transformer", "lstm", "gru", "rnn", "bigru", "token_bilstm"])
def test_per_example_grads_and_norms_equal_a_python_loop_of_grad(x64, name):
    check_against_the_loop(name)


@pytest.mark.parametrize("name", ["bigru", "token_bilstm"])
def test_reversed_and_masked_recurrent_layers_are_on_the_fast_path(x64, name):
    """The backward half of a Bidirectional and a mask_zero mask no longer fall back to vmap."""
    model, params, x, y, loss_fn = float64_setup(name)
    coverage = fast_path_coverage(loss_fn, params, (x, y))
    assert coverage["vmap"] == [] and any(layer.endswith("backward/cell") for layer in coverage["fast"])
