"""Per-example gradients and norms against a loop of jax.grad: attention and recurrent models."""

import pytest

from tests.diagnostics.per_example.cases import check_against_the_loop


@pytest.mark.parametrize("name", ["transformer", "jdl_transformer", "lstm", "gru", "rnn", "bigru"])
def test_per_example_grads_and_norms_equal_a_python_loop_of_grad(x64, name):
    check_against_the_loop(name)
