"""examples/19_multi_label.py (`--quick`, in this process): three labels per digit, scored element-wise."""

import re

import pytest

from tests.example_runner import run_example


def test_multi_label_example_beats_the_majority_baseline_and_warns_about_argmax_accuracy():
    out = run_example("19_multi_label.py", "--quick")
    rows = {m.group(1): (float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^(\w+)\s+([\d.]+)\s+([\d.]+)$", out, re.MULTILINE)}
    model, majority = rows["binary_accuracy"]
    assert model > majority + 0.3, out
    assert rows["subset_accuracy"][0] > 0.6 and rows["f1"][0] > rows["f1"][1]
    per_label = [float(v) for v in re.findall(r"(?:even|>=5|round) ([\d.]+)", out.split("per-label")[1])]
    assert model == pytest.approx(sum(per_label) / 3, abs=2e-4), "binary accuracy is the mean of the labels' accuracies"
    assert "jdl warned: use binary_accuracy" in out
