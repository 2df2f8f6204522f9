"""examples/08_seq2seq.py runs (`--quick`, in this process) and prints numbers that make sense."""

import math
import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow

NUMBER = r"(-?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf))"


def value(out, label):
    match = re.search(rf"^\s*{re.escape(label)}\s+{NUMBER}", out, re.MULTILINE)
    assert match, f"no line starting with {label!r} in:\n{out}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def output():
    return run_example("08_seq2seq.py", "--quick")


def test_quick_run_reports_consistent_numbers(output):
    assert "1024 training pairs" in output and "200 held-out test pairs" in output
    assert "source length 8, target length 9" in output
    for label in ("train loss (last epoch)", "test loss (teacher forcing)"):
        loss = value(output, label)
        assert math.isfinite(loss) and 0 < loss < math.log(14), f"{label} below the uniform guess ln 14: {loss}"
    for label in ("train token accuracy", "test token accuracy (teacher)", "exact match (greedy)"):
        assert 0 <= value(output, label) <= 1, label
    assert value(output, "test token accuracy (teacher)") > 0.3, "one quick epoch learns more than chance (1/14)"
    samples = re.findall(r"^\s+(\d+) -> (\S*)\s+\| (\d+)\s+(ok|WRONG)$", output, re.MULTILINE)
    assert len(samples) == 5, output
    for source, predicted, target, verdict in samples:
        assert target == source[::-1], "the test targets are the reversed sources"
        assert (verdict == "ok") == (predicted == target)
    exact = value(output, "exact match (greedy)")
    assert exact * 200 == pytest.approx(round(exact * 200), abs=1e-6), "exact match is a count over 200 strings"
