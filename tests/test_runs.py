"""`jdl train` (jdl.runs): the run directory, refusing to overwrite, exact resume after a kill, and resuming a run of an earlier release.

Everything runs in-process through `jdl.cli.main` (signals included: a callback raises them at a chosen
dispatch), except the run that is killed (a real process, SIGKILLed mid-run) and one smoke test of the
real `jdl train` command.
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
    environment = json.loads((out / "environment.json").read_text())
    assert environment["process_count"] == jax.process_count() and environment["precision"] == "float32"
    assert environment["device_kinds"] == sorted({d.device_kind for d in jax.devices()})
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] and "val_accuracy" in rows[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 3 and set(summary["test"]) == {"loss", "accuracy"}
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert final_arrays(out, config_path)[1]["epoch"] == 2 and checkpoint.latest_step(out / run.BEST) is not None
    monitor = json.loads((out / "monitor.json").read_text())
    assert [r["step"] for r in monitor["records"]][:2] == [0, 10] and monitor["records"][0]["example_norm"]
    page = (out / "report.html").read_text()
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    for title in ("Findings", "Run summary", "Model", "Training curves", "Gradient norms per layer",
                  "Per-example gradient norms", "Gradient signal and noise", "Activation statistics"):
        assert title in titles, title
    assert re.findall(r"<figcaption>(.*?)</figcaption>", page) == [
        "training curves", "per-layer gradient norm over training (log10)", "histogram of per-example gradient norms",
        "GSNR and gradient noise scale over training", "saturation / dead units over training"]
    assert "The learning rate was constant" in page, "a constant learning rate is a sentence, not a plot"
    assert json.loads((out / "report.json").read_text())["summary"]["epochs_run"] == 3

    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _, stderr = train(capsys, config_path, "--out", out)
    assert code == 2 and "already holds a run; use --resume" in stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    code, _, stderr = train(capsys, config_path, "--out", out, "--resume", "--set", "train.learning_rate=0.5")
    assert code == 2 and "the config differs" in stderr


def test_print_config_prints_the_resolved_config_and_trains_nothing(tmp_path, capsys):
    code, stdout, _ = train(capsys, MAIN_JOB_PATH, "--print-config", "--set", "train.precision=bfloat16",
                            "--out", tmp_path / "never")
    printed = json.loads(stdout)
    assert code == 0 and printed["train"]["precision"] == "bfloat16" and printed["train"]["steps_per_execution"] is None
    assert printed == config_lib.load(MAIN_JOB_PATH, ["train.precision=bfloat16"]).to_dict()
    assert not (tmp_path / "never").exists()


MAIN_JOB_PATH = Path(__file__).resolve().parents[1] / "examples" / "configs" / "digits_mlp.toml"
MAIN_JOB = Path(__file__).resolve().parents[1] / "examples" / "configs" / "digits_mlp.toml"


@pytest.mark.slow
def test_readme_main_job_reaches_97_percent_on_digits(tmp_path, capsys):
    code, _, stderr = train(capsys, MAIN_JOB, "--out", tmp_path / "digits")
    assert code == 0, stderr
    summary = json.loads((tmp_path / "digits" / "summary.json").read_text())
    assert summary["test"]["accuracy"] >= 0.97, summary["test"]


def test_the_real_jdl_train_command_writes_a_run_directory(tmp_path):
    config_path = tmp_path / "run.toml"
    config_path.write_text(CONFIG.format(epochs=1))
    process = subprocess.run([sys.executable, "-m", "jdl.cli", "train", str(config_path), "--out", str(tmp_path / "smoke"),
                              "--verbose", "1"], capture_output=True, text=True, timeout=300)
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


PREEMPTED = """
name = "iris_preempt"
seed = 5
[data]
name = "iris"
options = { test_size = 0.2, seed = 1 }
validation_split = 0.2
[model]
name = "mlp"
hidden = [16]
outputs = 3
dropout = 0.1
[train]
epochs = 30
batch_size = 8
optimizer = "adam"
learning_rate = 0.05
steps_per_execution = 4
[callbacks]
early_stopping = { patience = 4, restore_best_weights = true }
reduce_lr_on_plateau = { patience = 2, factor = 0.5 }
"""
DISPATCHES_PER_EPOCH = 3  # 96 training examples, batch 8: 12 steps, 4 per dispatch


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """(config path, run directory, summary, history) of the early-stopped run, trained without interruption."""
    root = tmp_path_factory.mktemp("preempt")
    config_path = root / "run.toml"
    config_path.write_text(PREEMPTED)
    assert cli.main(["train", str(config_path), "--out", str(root / "whole"), "--verbose", "0"]) == 0
    summary = json.loads((root / "whole" / "summary.json").read_text())
    _, record = final_arrays(root / "whole", config_path)
    history = record["history"]["history"]
    best = int(np.argmin(history["val_loss"]))
    assert best + 1 < summary["epochs_run"] < 30 and len(set(history["lr"])) >= 2, "both callbacks must act"
    return config_path, root / "whole", summary, best


def assert_same_run(a: Path, b: Path, config_path: Path):
    """Same last checkpoint (bit for bit), same metrics.csv, same summary numbers (of the restored best weights)."""
    state_a, record_a = final_arrays(a, config_path)
    state_b, record_b = final_arrays(b, config_path)
    for x, y in zip(jax.tree_util.tree_leaves(state_a.arrays()), jax.tree_util.tree_leaves(state_b.arrays())):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert record_a["history"] == record_b["history"]
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()
    summary_a, summary_b = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for key in ("epochs_run", "best_epoch", "train", "validation", "test"):
        assert summary_a[key] == summary_b[key], key


class SignalAt(run.callbacks_lib.Callback):
    """Sends `signal_number` to this process after dispatch number `at` of the fit, like a user or a scheduler would."""

    holds_state = False

    def __init__(self, signal_number, at):
        self.signal_number, self.at, self.seen = signal_number, at, 0

    def on_train_batch_end(self, steps, state, logs):
        if self.seen == self.at:
            signal.raise_signal(self.signal_number)
        self.seen += 1


def test_ctrl_c_after_the_best_epoch_prints_the_resume_command_and_keeps_the_best_weights(uninterrupted, tmp_path,
                                                                                           capsys, monkeypatch):
    config_path, whole, _, best = uninterrupted
    out = tmp_path / "stopped"
    build = run._callbacks
    at = DISPATCHES_PER_EPOCH * (best + 1) + 1
    monkeypatch.setattr(run, "_callbacks", lambda *a: [SignalAt(signal.SIGINT, at), *build(*a)])
    code, _, stderr = train(capsys, config_path, "--out", out)
    assert code == 130 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"SIGINT: saved the state after step 8/12 of epoch {best + 2} to {out / run.LATEST}/" in stderr
    command = stderr.split("continue with: ")[1].split()
    assert command == ["jdl", "train", str(config_path), "--out", str(out), "--resume"]
    monkeypatch.setattr(run, "_callbacks", build)
    assert not (out / "summary.json").exists()
    code, _, stderr = train(capsys, *command[2:])
    assert code == 0, stderr
    assert_same_run(whole, out, config_path)


def test_an_interruption_between_early_stopping_and_the_summary_trains_no_further_epoch(uninterrupted, tmp_path,
                                                                                         capsys):
    config_path, whole, summary, _ = uninterrupted
    out = tmp_path / "stopped"
    shutil.copytree(whole, out)
    for name in ("summary.json", "report.html", "report.json", "model.json", "monitor.json"):
        (out / name).unlink()
    code, _, stderr = train(capsys, config_path, "--out", out, "--resume")
    assert code == 0, stderr
    assert_same_run(whole, out, config_path)
    assert json.loads((out / "summary.json").read_text())["epochs_run"] == summary["epochs_run"]


def test_sigterm_at_a_random_step_saves_and_resume_ends_bit_identical(uninterrupted, tmp_path, capsys, monkeypatch):
    """SIGTERM (as a scheduler sends it) after a random dispatch of a random epoch: exit 143, one line, exact resume.

    The checkpoint records the last completed epoch and the steps run of the next.
    """
    config_path, whole, summary, _ = uninterrupted
    out = tmp_path / "stopped"
    at = int(np.random.default_rng().integers(0, DISPATCHES_PER_EPOCH * (summary["epochs_run"] - 1)))
    record = sigterm_then_resume(capsys, monkeypatch, config_path, out, at)
    steps = 4 * (at % DISPATCHES_PER_EPOCH + 1)
    assert record["epoch"] == at // DISPATCHES_PER_EPOCH - 1 and record["partial"]["steps"] == steps, (at, record)
    assert_same_run(whole, out, config_path)


def sigterm_then_resume(capsys, monkeypatch, config_path: Path, out: Path, at: int) -> dict:
    """SIGTERM after dispatch `at` of `jdl train CONFIG --out OUT` (exit 143, one line), then `--resume` (exit 0).

    Returns the record of the checkpoint the signal left.
    """
    build = run._callbacks
    monkeypatch.setattr(run, "_callbacks", lambda *a: [SignalAt(signal.SIGTERM, at), *build(*a)])
    code, _, stderr = train(capsys, config_path, "--out", out)
    assert code == 143, (at, stderr)
    assert len(stderr.strip().splitlines()) == 1 and "SIGTERM: saved the state after step" in stderr, stderr
    _, record = final_arrays(out, config_path)
    monkeypatch.setattr(run, "_callbacks", build)
    code, _, stderr = train(capsys, config_path, "--out", out, "--resume")
    assert code == 0, stderr
    return record


def test_sigterm_on_the_grain_path_resumes_bit_identical(tmp_path, capsys, monkeypatch):
    """data.packed (a `jdl data pack` directory, read by Grain while training): SIGTERM mid-epoch, resume, same run.

    EarlyStopping (restoring its best weights) and ReduceLROnPlateau track the run, as in the in-memory test above.
    """
    pack = tmp_path / "iris_pack"
    assert cli.main(["data", "pack", str(pack), "--dataset", "iris", "--option", "test_size=0.2",
                     "--option", "seed=1"]) == 0
    capsys.readouterr()
    config_path = tmp_path / "packed.toml"
    config_path.write_text(PREEMPTED.replace("validation_split = 0.2\n",
                                             f"validation_split = 0.2\nstandardize = false\npacked = '{pack}'\n")
                           .replace("hidden = [16]", "hidden = [16]\nactivation = 'tanh'")  # raw features kill ReLUs
                           .replace("epochs = 30", "epochs = 4"))
    code, _, stderr = train(capsys, config_path, "--out", tmp_path / "whole")
    assert code == 0, stderr
    assert json.loads((tmp_path / "whole" / "summary.json").read_text())["epochs_run"] == 4
    at = int(np.random.default_rng().integers(0, DISPATCHES_PER_EPOCH * 3))
    record = sigterm_then_resume(capsys, monkeypatch, config_path, tmp_path / "stopped", at)
    assert record["partial"]["steps"] == 4 * (at % DISPATCHES_PER_EPOCH + 1), (at, record)
    assert_same_run(tmp_path / "whole", tmp_path / "stopped", config_path)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_parameters(uninterrupted, tmp_path, capsys):
    """SIGKILL gives no chance to save: the run resumes from its last end-of-epoch checkpoint."""
    config_path, whole, _, _ = uninterrupted
    interrupted = tmp_path / "interrupted"
    victim = jdl_train(config_path, "--out", interrupted)
    deadline = time.time() + 240
    while time.time() < deadline and victim.poll() is None:
        if (checkpoint.latest_step(interrupted / run.LATEST) or 0) >= 2 * 12:
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "the run must be killed mid-way for this test to mean anything"
    assert not (interrupted / "summary.json").exists()
    code, _, stderr = train(capsys, config_path, "--out", interrupted, "--resume")
    assert code == 0, stderr
    assert_same_run(whole, interrupted, config_path)
