"""examples/09_transformer.py runs (`--quick`, in this process) and prints numbers that make sense."""

import math
import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow

NUMBER = r"(-?\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)"


@pytest.fixture(scope="module")
def out():
    return run_example("09_transformer.py", "--quick")


def value(out, label):
    match = re.search(rf"^{re.escape(label)} {NUMBER}", out, re.MULTILINE)
    assert match, f"no line starting with {label!r} in:\n{out}"
    return float(match.group(1))


def test_quick_run_reports_a_balanced_task_and_sane_scores(out):
    assert "positive fraction 0.500; labels match the definition: True" in out
    assert "layers=1" in out and re.search(r"^epochs: 3; ", out, re.MULTILINE)
    for label in ("first epoch loss", "final train loss", "test loss"):
        assert math.isfinite(value(out, label)) and value(out, label) >= 0
    assert value(out, "final train loss") < value(out, "first epoch loss")
    for label in ("final train accuracy", "test accuracy"):
        assert 0.0 <= value(out, label) <= 1.0


def test_attention_heatmap_rows_are_distributions_over_the_real_keys(out):
    sequence = [int(t) for t in re.search(r"for the test sequence \[([\d, ]+)\]", out).group(1).split(", ")]
    first, real_keys = sequence[0], len(sequence) + 1
    repeats = [int(t) for t in re.search(r"is repeated at key positions \[([\d, ]+)\]", out).group(1).split(", ")]
    assert repeats == [i + 1 for i in range(1, len(sequence)) if sequence[i] == first], "keys are offset by [CLS]"
    header = re.search(r"^\s+keys:(.*)$", out, re.MULTILINE).group(1).split()
    assert header == ["CLS", *map(str, sequence)] + ["pad"] * (12 - len(sequence))
    rows = re.findall(r"^layer (\d) head (\d) (first token|\[CLS\])\s+\|(.{13})\|\s+([\d. ]+)$", out, re.MULTILINE)
    assert len(rows) == 4, "one layer, two heads, two query rows"
    for *_, shades, numbers in rows:
        weights = [float(w) for w in numbers.split()]
        assert len(weights) == 13
        assert sum(weights) == pytest.approx(1.0, abs=0.07), "each row is a softmax (printed to two decimals)"
        assert all(w == 0.0 for w in weights[real_keys:]), "padding keys get no attention"
        assert shades[weights.index(max(weights))] == "@"
    mass = re.search(r"mass on its repeats, by layer: ([\d. ]+) \(uniform", out).group(1).split()
    assert len(mass) == 1 and 0.0 <= float(mass[0]) <= 1.0
