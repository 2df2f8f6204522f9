"""examples/18_text_classification.py runs (`--quick`, in this process): the book of a verse above the majority class,
and fast per-example norms equal to a loop of jax.grad with no layer left to vmap."""

import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow


def value(out, pattern):
    match = re.search(pattern + r"([-+]?\d+\.?\d*(?:e[-+]?\d+)?)", out)
    assert match, f"no {pattern!r} in:\n{out}"
    return float(match.group(1))


def test_quick_run_beats_the_majority_class_and_keeps_norms_exact():
    out = run_example("18_text_classification.py", "--quick")
    accuracy = value(out, r"test accuracy: ")
    baseline = value(out, r"majority-class baseline \(Genesis\): ")
    assert 0.2 < baseline < 0.33  # Genesis: 1533 of 5786 verses (26.5%) in the whole corpus
    assert accuracy > baseline + 0.15, out
    assert "by vmap" in out and re.search(r"\b6 layers on the fast path, 0 by vmap", out), out
    assert value(out, r"max relative difference: ") < 1e-4  # float32 sums of squares
