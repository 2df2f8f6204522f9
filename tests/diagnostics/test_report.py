"""Reports: every section has content, every plot is embedded, every number is in report.json."""

import base64
import json
import re

from jdl import cli
from jdl.diagnostics import report as report_lib


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)]


def test_depth_report_sections_plots_table_and_findings(tmp_path):
    records = []
    for act, init, norms in (("sigmoid", "uniform", [1e-9, 1e-5, 1.0]), ("relu", "he_normal", [0.5, 1.0, 2.0]),
                             ("relu", "large", [1e5, 1e6, 1e7])):
        records.append({"activation": act, "init": init, "depth": 1, "batch_norm": False, "residual": False,
                        "init_norms": norms, "first_to_last": norms[0] / norms[-1]})
    result = {"study": "depth", "steps": 0, "records": records}
    report = report_lib.depth_report(result)
    page, numbers = report.save(tmp_path)
    text = page.read_text()
    assert len(_images(text)) == 1 and all(png.startswith(b"\x89PNG") for png in _images(text))
    assert text.count("<tr>") == 1 + 3, "a header row and one row per configuration"
    assert any("sigmoid + uniform init, depth 1: vanishing" in f for f in report.findings)
    assert any("relu + large init, depth 1: exploding" in f for f in report.findings)
    assert any(f.startswith("Healthy") and "relu + he_normal" in f for f in report.findings)
    assert json.loads(numbers.read_text())["records"][0]["init_norms"] == [1e-9, 1e-5, 1.0]


def test_jdl_study_init_writes_a_report_with_the_textbook_factors(tmp_path, capsys):
    assert cli.main(["study", "init", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert abs(data["ratio_per_layer"]["xavier_normal"] - 2 ** -0.5) < 0.05
    assert abs(data["ratio_per_layer"]["he_normal"] - 1.0) < 0.05
    page = (tmp_path / "report.html").read_text()
    assert len(_images(page)) == 1 and "<h2>Findings</h2>" in page
    for section in re.findall(r"<section>(.*?)</section>", page, flags=re.S):
        assert "<p>" in section and ("<img" in section or "<table>" in section)
    assert "xavier_normal: activations scale by" in capsys.readouterr().out


def test_jdl_study_rnn_writes_the_gradient_through_time_report(tmp_path, capsys, monkeypatch):
    tiny = dict(cells=("gru",), length=6, units=3, examples=2, scales=(0.5, 2.0), sweep_activations=("linear",),
                sweep_length=5)
    monkeypatch.setitem(cli.STUDY_SIZES["rnn"], "quick", tiny)
    assert cli.main(["study", "rnn", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert [r["scale"] for r in data["sweep"]] == [0.5, 2.0]
    assert abs(data["sweep"][1]["first_to_last"] - 2.0 ** 4) < 1e-3
    page = (tmp_path / "report.html").read_text()
    assert len(_images(page)) == 2
    assert "linear SimpleRNN, recurrent scale 0.5: vanishing" in capsys.readouterr().out
