"""Example 14 finds most of the flipped labels among the largest per-example gradient norms."""

import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow



def test_quick_run_ranks_flipped_labels_first():
    out = run_example("14_per_example_gradients.py", "--quick")
    flipped = int(re.search(r"(\d+) labels flipped", out).group(1))
    precision = float(re.search(r"precision@\d+ = recall@\d+ = (\d\.\d+)", out).group(1))
    chance = float(re.search(r"chance: ([\d.]+)", out).group(1))
    assert flipped == 29 and chance == pytest.approx(29 / 1437, abs=1e-3)
    assert precision >= 0.5, "flipped labels dominate the largest gradient norms (chance is 0.02)"
    medians = re.search(r"median norm: flipped ([\d.]+), clean ([\d.]+)", out)
    assert float(medians.group(1)) > 2 * float(medians.group(2))
    assert re.search(r"fast norms [\d.]+ ms, vmap norms [\d.]+ ms, vmap\(grad\) [\d.]+ ms", out)
