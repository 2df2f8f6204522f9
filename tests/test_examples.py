"""The lecture examples print the notes' numbers; one of them also runs as a user runs it, in a fresh interpreter."""

import re
import subprocess
import sys

import jax
import pytest

from tests.example_runner import EXAMPLES, run_example


def test_an_example_runs_as_a_script():
    """The one subprocess smoke test: `python examples/01_perceptron_logic_gates.py` exits 0 and prints."""
    completed = subprocess.run([sys.executable, str(EXAMPLES / "01_perceptron_logic_gates.py")],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "XOR: did NOT converge in 20 epochs" in completed.stdout


def test_perceptron_logic_gates_example():
    out = run_example("01_perceptron_logic_gates.py")
    assert re.search(r"1\s+1 \|\s+1\.4 \|\s+1 \|\s+1", out), "AND: 0.7 + 0.7 = 1.4 exceeds the threshold"
    assert re.search(r"0\s+1 \|\s+0\.7 \|\s+0 \|\s+0", out)
    assert re.search(r"1\s+0 \|\s+1\.2 \|\s+1 \|\s+1", out), "OR: 1.2 exceeds the threshold"
    assert re.search(r"AND: converged after \d+ epochs", out)
    assert re.search(r"OR : converged after \d+ epochs", out)
    assert "XOR: did NOT converge in 20 epochs" in out
    assert "accuracy 1.00" in out, "the MLP solves XOR"


GOLDEN_2_2_2 = {
    "out_h1": "0.593269992",
    "out_h2": "0.596884378",
    "out_o1": "0.75136507",
    "out_o2": "0.772928465",
    "E_total": "0.298371109",
    "dE/dw5 (chain rule)": "0.082167041",
    "dE/dw5 (jax.grad)": "0.082167041",
    "dE/dw1 (chain rule)": "0.000438568",
    "dE/dw1 (jax.grad)": "0.000438568",
    "w5 after one step": "0.35891648",
    "w1 after one step": "0.14978072",
}


def test_backprop_by_hand_example_reproduces_the_2_2_2_golden_numbers():
    x64 = jax.config.read("jax_enable_x64")
    out = run_example("02_backprop_by_hand.py")
    assert jax.config.read("jax_enable_x64") == x64, "the example's float64 stays inside its main"
    printed = {}
    for line in out.splitlines()[1:]:
        name, value = line.strip().rsplit(" ", 1)
        printed[name.strip()] = float(value)
    assert set(printed) == set(GOLDEN_2_2_2)
    for name, golden in GOLDEN_2_2_2.items():
        half_last_digit = 0.5 * 10.0 ** -len(golden.split(".")[1])
        assert printed[name] == pytest.approx(float(golden), abs=half_last_digit), name

