import subprocess
import sys
from pathlib import Path

import flax
import jax
import optax
import pytest

import jdl
from jdl.cli import build_parser, main
from jdl import runs as run_lib


def test_help_lists_subcommands():
    help_text = build_parser().format_help()
    assert "info" in help_text
    completed = subprocess.run([sys.executable, "-m", "jdl.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0 and "info" in completed.stdout


def test_info_prints_versions_and_devices(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for label, value in [("jdl", jdl.__version__), ("jax", jax.__version__), ("flax", flax.__version__), ("optax", optax.__version__)]:
        assert any(line.split()[:2] == [label, value] for line in out.splitlines()), (label, out)
    assert f"devices  {len(jax.devices())}" in out
    assert jax.devices()[0].platform in out


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "subcommands" in capsys.readouterr().out


# -- a user's mistake is one line on stderr and exit code 2, found before anything is built ------------------------

DIGITS = str(Path(__file__).resolve().parents[1] / "examples" / "configs" / "digits_mlp.toml")


def train(capsys, tmp_path, *overrides):
    """`jdl train digits_mlp.toml --set ...` in-process: (exit code, stdout, stderr lines)."""
    argv = ["train", DIGITS, "--out", str(tmp_path / "out"), "--verbose", "0"]
    for override in overrides:
        argv += ["--set", override]
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.splitlines()


@pytest.mark.parametrize("overrides, key, choice", [
    (["model.activation=rellu"], "model.activation", "'relu'"),
    (["model.kernel_init=he_norml"], "model.kernel_init", "'he_normal'"),
    (["train.optimizer=adamm"], "train.optimizer", "'adam'"),
    (["data.name=mnsit"], "data.name", "'mnist'"),
    (["data.name=mnist"], "data.options.path", "--set data.options.path=DIR"),
    (["callbacks.early_stopping.patence=5"], "callbacks.early_stopping.patence", "'patience'"),
    (["train.schedule={name = 'cosin', epochs = 10}"], "train.schedule.name", "'cosine'"),
])
def test_a_mistake_is_one_line_naming_the_key_and_the_choices(capsys, tmp_path, overrides, key, choice):
    code, out, err = train(capsys, tmp_path, *overrides)
    assert code == 2 and out == ""
    assert len(err) == 1, err
    assert err[0].startswith(f"jdl train: error: {key}"), err[0]
    assert choice in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "out").exists()


def test_switching_to_mnist_drops_the_digits_options_with_a_notice(capsys, tmp_path):
    code, out, err = train(capsys, tmp_path, "data.name=mnist", f"data.options.path={tmp_path / 'no_mnist'}")
    assert code == 2 and out == "" and len(err) == 2, err
    assert err[0].startswith("jdl: note: data.name is 'mnist'") and "dropped data.options test_size, seed" in err[0]
    assert err[1].startswith("jdl train: error: path ") and "does not exist" in err[1]
    assert not (tmp_path / "out").exists()


def test_run_errors_and_ctrl_c_are_one_line(capsys, tmp_path, monkeypatch):
    from jdl import config

    def refuse(*args, **kwargs):
        raise FileExistsError("runs/x already holds a run; use --resume to continue it or --out for a new directory")

    monkeypatch.setattr(run_lib, "run", refuse)
    code, out, err = train(capsys, tmp_path)
    assert code == 2 and err == ["jdl train: error: runs/x already holds a run; use --resume to continue it or --out "
                                 "for a new directory"]

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(config, "load", interrupt)
    code, out, err = train(capsys, tmp_path)
    assert code == 130 and len(err) == 1 and err[0].startswith("jdl train: interrupted")
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("jdl report: error: ") and "summary.json" in err[0]


def test_a_finished_run_names_its_directory_and_report(capsys, tmp_path, monkeypatch):
    summary = {"name": "digits_mlp", "epochs_run": 3, "best_epoch": 2, "test": {"loss": 0.1, "accuracy": 0.97},
               "stop_reason": None}
    monkeypatch.setattr(run_lib, "run", lambda config, out, **kwargs: summary)
    code, out, err = train(capsys, tmp_path)
    assert code == 0 and err == []
    assert out.splitlines()[-1] == f"wrote {tmp_path / 'out'}/ (report: {tmp_path / 'out' / 'report.html'})"
