"""examples/07_rnn_lstm_gru.py runs (`--quick`, in this process) and prints numbers that make sense."""

import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow

NUMBER = r"(-?\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)"


def value(out, pattern):
    match = re.search(pattern + NUMBER, out)
    assert match, f"no {pattern!r} in:\n{out}"
    return float(match.group(1))


def test_quick_run_prints_sensible_numbers():
    out = run_example("07_rnn_lstm_gru.py", "--quick")
    naive = value(out, r"naive \(last value\) test MSE: ")
    assert 0 < naive < 0.05  # noise 0.05: the naive error is about the change per step plus 2·0.05²
    for cell in ("simple_rnn", "lstm", "gru"):
        mse = value(out, rf"{cell}\s+test MSE: ")
        assert 0 < mse < 0.5  # below the variance of the sine (0.5) after a few epochs
    steps = value(out, r"LSTM: ")
    assert steps == 128
    adding = value(out, r"  test MSE: ")
    assert 0 < adding < 0.5
    assert "baseline 1/6 = 0.1667" in out
