"""Example 17: a hand-written jit loop with the probe writes a run directory and renders it (as `jdl report` does)."""

import json
import re

import pytest

from tests.example_runner import run_example

pytestmark = pytest.mark.slow


def test_quick_run_writes_a_run_directory_jdl_report_renders(tmp_path, capsys):
    out = run_example("17_custom_loop_diagnostics.py", "--quick", "--out", str(tmp_path / "run"))
    assert re.search(r"epoch 2/2: loss [\d.]+, validation accuracy [\d.]+", out)
    assert "layers in call order: token_embedding, LayerNorm_0, MultiHeadDotProductAttention_0/query" in out
    run = tmp_path / "run"
    monitor = json.loads((run / "monitor.json").read_text())
    assert monitor["every"] == 4 and [r["step"] for r in monitor["records"]] == [0, 4]
    assert list(monitor["records"][0]["grad_norm"])[0] == "token_embedding"
    assert {"index", "norm", "step", "epoch", "count"} == set(monitor["top_examples"][0])
    html = (run / "report.html").read_text()
    assert "Gradient norms per layer" in html and "Per-example gradient norms" in html and "Training curves" in html
