"""Example 13 shows vanishing with sigmoid + uniform, balance with ReLU + He, and the cures."""

import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow

NUMBER = r"([-+]?\d+\.\d+e[-+]\d+|nan)"


def test_quick_run_shows_vanishing_its_cures_and_clipping():
    out = run_example("13_vanishing_exploding.py", "--quick")

    def ratio(label):
        match = re.search(rf"^{re.escape(label)}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", out, flags=re.M)
        assert match, label
        return float(match.group(3))

    assert ratio("sigmoid + uniform") < 1e-3
    assert ratio("relu + he_normal") > 1e-2 and ratio("tanh + xavier_normal") > 1e-2
    assert ratio("sigmoid + uniform + batch norm") > 100 * ratio("sigmoid + uniform")
    assert re.search(r"^relu \+ large init .*diverged", out, flags=re.M)
    assert not re.search(r"^relu \+ large init \+ clipnorm 1 .*diverged", out, flags=re.M)
    factors = dict(re.findall(r"^\s+(\w+)\s+×([\d.]+) per layer", out, flags=re.M))
    assert float(factors["xavier_normal"]) == pytest.approx(2 ** -0.5, abs=0.05)
    assert float(factors["he_normal"]) == pytest.approx(1.0, abs=0.05)
