"""Example 15: on the adding problem the LSTM learns what the gradient profile says it can."""

import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow

NUMBER = r"(\d+\.\d+(?:e[-+]\d+)?)"


def test_quick_run_trains_both_cells_and_prints_gradient_profiles():
    out = run_example("15_rnn_long_memory.py", "--quick")
    finals = dict(re.findall(rf"^  (\w+): final test MSE {NUMBER}", out, flags=re.M))
    assert set(finals) == {"simple_rnn", "lstm"}
    assert float(finals["lstm"]) < 0.01, "T = 10 is within an LSTM's reach in 300 steps"
    rows = re.findall(rf"^\s+(\d+)\s+{NUMBER}\s+{NUMBER}$", out, flags=re.M)
    assert [int(step) for step, _, _ in rows] == [100, 200, 300]
    lstm_curve = [float(lstm) for _, _, lstm in rows]
    assert lstm_curve[-1] == pytest.approx(float(finals["lstm"]), abs=1e-4) and lstm_curve[-1] < lstm_curve[0]
    profiles = re.findall(rf"^  (simple_rnn|lstm)\s+((?:\s*{NUMBER}){{5}})$", out, flags=re.M)
    assert len(profiles) == 4, "each cell at initialization and after training"
    for _, values, *_ in profiles:
        numbers = [float(v) for v in values.split()]
        assert all(v > 0 for v in numbers)
    before = {cell: [float(v) for v in values.split()] for cell, values, *_ in profiles[:2]}
    assert before["lstm"][0] < before["lstm"][-1], "at initialization the gradient shrinks going back in time"
