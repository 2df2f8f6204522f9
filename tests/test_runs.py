"""`jdl train` (jdl.runs): the run directory, refusing to overwrite, exact resume after a kill, and resuming a run of an earlier release.

Everything runs in-process through `jdl.cli.main`, except the run that is killed (a real process,
SIGKILLed mid-run) and one smoke test of the real `jdl train` command.
"""

import csv
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jdl import cli
from jdl import config as config_lib
from jdl import runs as run
from jdl.train import checkpoint

FIXTURES = Path(__file__).resolve().parent / "fixtures"

CONFIG = """
name = "iris_resume"
seed = 5
[data]
name = "iris"
options = {{ test_size = 0.2, seed = 1 }}
validation_split = 0.2
[model]
name = "mlp"
hidden = [16]
outputs = 3
dropout = 0.1
[train]
epochs = {epochs}
batch_size = 8
optimizer = "adam"
learning_rate = 0.01
[callbacks]
reduce_lr_on_plateau = {{ patience = 3, factor = 0.5 }}
"""


def jdl_train(*args, **popen):
    """`jdl train ARGS --verbose 0` as a real process."""
    command = [sys.executable, "-m", "jdl.cli", "train", *map(str, args), "--verbose", "0"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def train(capsys, *args):
    """(exit code, stdout, stderr) of `jdl train ARGS --verbose 0`, in this process."""
    code = cli.main(["train", *map(str, args), "--verbose", "0"])
    out = capsys.readouterr()
    return code, out.out, out.err


def final_arrays(out: Path, config_path: Path):
    config = config_lib.load(config_path)
    trainer, dataset = run.build(config)
    state, record = checkpoint.restore(out / run.LATEST, trainer.init(dataset.x_train, config.seed))
    return state, record


def test_run_directory_and_refusal_to_overwrite(tmp_path, capsys):
    config_path = tmp_path / "run.toml"
    config_path.write_text(CONFIG.format(epochs=3))
    out = tmp_path / "out"
    code, stdout, stderr = train(capsys, config_path, "--out", out)
    assert code == 0, stderr
    assert "iris_resume: 3 epochs" in stdout
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == 3
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] and "val_accuracy" in rows[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 3 and set(summary["test"]) == {"loss", "accuracy"}
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert checkpoint.latest_step(out / run.LATEST) == 2 and checkpoint.latest_step(out / run.BEST) is not None
    monitor = json.loads((out / "monitor.json").read_text())
    assert [r["step"] for r in monitor["records"]][:2] == [0, 10] and monitor["records"][0]["example_norm"]
    page = (out / "report.html").read_text()
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    for title in ("Findings", "Run summary", "Model", "Training curves", "Gradient norms per layer",
                  "Per-example gradient norms", "Gradient signal and noise", "Activation statistics"):
        assert title in titles, title
    assert page.count("<img") == 6 and json.loads((out / "report.json").read_text())["summary"]["epochs_run"] == 3

    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _, stderr = train(capsys, config_path, "--out", out)
    assert code == 2 and "already holds a run; use --resume" in stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    code, _, stderr = train(capsys, config_path, "--out", out, "--resume", "--set", "train.learning_rate=0.5")
    assert code == 2 and "the config differs" in stderr


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_parameters(tmp_path, capsys):
    config_path = tmp_path / "run.toml"
    config_path.write_text(CONFIG.format(epochs=25))
    whole, interrupted = tmp_path / "whole", tmp_path / "interrupted"

    victim = jdl_train(config_path, "--out", interrupted)
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None:
        if (checkpoint.latest_step(interrupted / run.LATEST) or 0) >= 2:
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "the run must be killed mid-way for this test to mean anything"
    killed_at = checkpoint.latest_step(interrupted / run.LATEST)
    assert killed_at < 24

    code, _, stderr = train(capsys, config_path, "--out", interrupted, "--resume")
    assert code == 0, stderr
    code, _, stderr = train(capsys, config_path, "--out", whole)
    assert code == 0, stderr

    a, record_a = final_arrays(whole, config_path)
    b, record_b = final_arrays(interrupted, config_path)
    assert record_a["epoch"] == record_b["epoch"] == 24
    for x, y in zip(jax.tree_util.tree_leaves(a.arrays()), jax.tree_util.tree_leaves(b.arrays())):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert record_a["history"] == record_b["history"]
    rows_a = list(csv.reader((whole / "metrics.csv").open()))
    rows_b = list(csv.reader((interrupted / "metrics.csv").open()))
    assert rows_a == rows_b and len(rows_a) == 26
    summary_a = json.loads((whole / "summary.json").read_text())
    summary_b = json.loads((interrupted / "summary.json").read_text())
    assert summary_a["test"] == summary_b["test"] and summary_a["epochs_run"] == summary_b["epochs_run"] == 25


MAIN_JOB = Path(__file__).resolve().parents[1] / "examples" / "configs" / "digits_mlp.toml"


@pytest.mark.slow
def test_readme_main_job_reaches_97_percent_on_digits(tmp_path, capsys):
    started = time.time()
    code, _, stderr = train(capsys, MAIN_JOB, "--out", tmp_path / "digits")
    assert code == 0, stderr
    summary = json.loads((tmp_path / "digits" / "summary.json").read_text())
    assert summary["test"]["accuracy"] >= 0.97, summary["test"]
    assert time.time() - started < 120


def test_the_real_jdl_train_command_writes_a_run_directory(tmp_path):
    process = subprocess.run([sys.executable, "-m", "jdl.cli", "train", str(MAIN_JOB), "--out", str(tmp_path / "smoke"),
                              "--set", "train.epochs=1", "--verbose", "1"], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr
    assert "compiling" in process.stdout and "report.html" in process.stdout
    assert json.loads((tmp_path / "smoke" / "summary.json").read_text())["epochs_run"] == 1


def test_a_run_of_the_previous_release_resumes_and_reports(tmp_path, capsys):
    """tests/fixtures/compat_v0: a run interrupted after epoch 2 of 4 by the code before the engine-core change."""
    fixture = FIXTURES / "compat_v0"
    shutil.copytree(fixture / "run", tmp_path / "run")
    code, _, stderr = train(capsys, fixture / "config.toml", "--out", tmp_path / "run", "--resume")
    assert code == 0, stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    expected = json.loads((fixture / "full_summary.json").read_text())
    assert summary["epochs_run"] == expected["epochs_run"] == 4
    for split in ("train", "validation", "test"):
        for key, value in expected[split].items():
            assert summary[split][key] == pytest.approx(value, rel=1e-5), (split, key)
    params = checkpoint.load_params(tmp_path / "run" / run.LATEST)
    flat = {jax.tree_util.keystr(k, simple=True, separator="/"): np.asarray(v)
            for k, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    reference = np.load(fixture / "full_params.npz")
    assert sorted(flat) == sorted(reference.files)
    for name in reference.files:
        np.testing.assert_allclose(flat[name], reference[name], rtol=1e-5, atol=1e-7)
    assert cli.main(["report", str(tmp_path / "run")]) == 0
    assert "<h2>Gradient norms per layer</h2>" in (tmp_path / "run" / "report.html").read_text()
