"""examples/06_cnn_edges_and_digits.py runs (`--quick`, in this process) and prints numbers that make sense."""

import math
import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow  # mostly JIT compilation

NUMBER = r"(-?\d+\.?\d*)"


@pytest.fixture(scope="module")
def output():
    return run_example("06_cnn_edges_and_digits.py", "--quick")


def value(out, label):
    match = re.search(rf"^{re.escape(label)}\s+{NUMBER}", out, re.MULTILINE)
    assert match, f"no line starting with {label!r} in:\n{out}"
    return float(match.group(1))


def matrix_after(out, title, rows):
    lines = out[out.index(title):].splitlines()[1:1 + rows]
    return [[float(v) for v in line.split()] for line in lines]


def test_edge_map_padding_and_output_sizes(output):
    assert matrix_after(output, "valid convolution, stride 1 -> 4×4", 4) == [[0.0, -4.0, -4.0, 0.0]] * 4
    padded = matrix_after(output, "padding 1 -> 6×6", 6)
    assert [len(r) for r in padded] == [6] * 6
    assert padded[2] == [0.0, 0.0, -4.0, -4.0, 0.0, 4.0]  # the right border meets the zero padding
    assert padded[0][2] == -3.0  # top row: the kernel's top row falls on padding: 2·1 + 1·1
    assert "padding 1, stride 2 -> 3×3" in output
    rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", output, re.MULTILINE)
    assert len(rows) == 6
    for n, f, p, s, formula, actual in (map(int, r) for r in rows):
        assert formula == actual == (n + 2 * p - f) // s + 1


def test_pooling_by_hand(output):
    grid = [[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]]
    windows = [[[grid[2 * i + a][2 * j + b] for a in (0, 1) for b in (0, 1)] for j in (0, 1)] for i in (0, 1)]
    assert matrix_after(output, "max pooling 2×2", 2) == [[max(w) for w in row] for row in windows]
    assert matrix_after(output, "min pooling 2×2", 2) == [[min(w) for w in row] for row in windows]
    average = matrix_after(output, "average pooling 2×2", 2)
    for got, row in zip(average, windows):
        assert got == pytest.approx([sum(w) / 4 for w in row], abs=0.006)
    assert "max pooling 3×3, stride 1 -> 2×2" in output


def test_cnn_learns_the_digits(output):
    assert "1024 training and 360 test images of shape (8, 8, 1)" in output
    first, final = value(output, "first loss"), value(output, "final loss")
    assert math.isfinite(first) and first == pytest.approx(math.log(10), rel=0.25), "starts near chance"
    assert final < 0.5 * first
    accuracy = value(output, "test accuracy")
    assert 0.6 <= accuracy <= 1.0, f"even the quick CNN should beat chance (0.1) by far, got {accuracy}"
    assert value(output, "train accuracy") >= 0.6
