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


# -- jdl data pack, and jdl train on a packed data set -----------------------------------------------------------------

def _write_idx(path, array):
    """An IDX file written from its definition: 0x0000, type byte (0x08 uint8), ndim, big-endian sizes, data; gzipped."""
    import gzip
    import struct

    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(">u1").tobytes()))
    return str(path)


def test_data_pack_writes_idx_and_npz_files_that_read_back_exactly(capsys, tmp_path):
    import numpy as np

    from jdl.data import packed

    images = np.random.default_rng(0).integers(0, 256, (7, 3, 2)).astype(np.uint8)
    labels = np.arange(7, dtype=np.uint8) % 3
    idx = [_write_idx(tmp_path / "img.gz", images), _write_idx(tmp_path / "lab.gz", labels)]
    assert main(["data", "pack", str(tmp_path / "a"), "--idx", *idx, "--flatten", "--scale", str(1 / 255)]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'a'}/ (7 examples: x <f4 (7, 6), y |u1 (7,))\n"
    x, y = packed.open_packed(tmp_path / "a").read(np.arange(7))
    np.testing.assert_array_equal(x, images.reshape(7, 6).astype(np.float32) * np.float32(1 / 255))
    np.testing.assert_array_equal(y, labels)
    np.savez(tmp_path / "d.npz", inputs=images, targets=labels.astype(np.int32))
    assert main(["data", "pack", str(tmp_path / "b"), "--npz", str(tmp_path / "d.npz"), "--x-key", "inputs",
                 "--y-key", "targets"]) == 0
    np.testing.assert_array_equal(packed.open_packed(tmp_path / "b").read(np.arange(7))[0], images)
    capsys.readouterr()
    for argv, message in [
        (["--npz", str(tmp_path / "d.npz")], "d.npz lacks key(s) ['x_train', 'y_train']; it holds ['inputs', 'targets']"),
        (["--npz", str(tmp_path / "d.npz"), "--idx", *idx], "give exactly one of --idx, --npz and --dataset, got 2"),
        (["--idx", idx[1], idx[0]], "img.gz has magic number 0x00000803 (3 dimensions); expected 0x00000801"),
    ]:
        assert main(["data", "pack", str(tmp_path / "c"), *argv]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("jdl data pack: error: ") and message in err[0], (message, err)
    assert main(["data", "pack", str(tmp_path / "a"), "--idx", *idx]) == 2
    assert "already holds a packed data set" in capsys.readouterr().err


def test_a_packed_set_that_disagrees_with_the_model_is_one_line_naming_data_packed(capsys, tmp_path):
    from jdl.data import packed

    digits = jdl.data.load("digits", test_size=0.2, seed=0)
    packed.write(tmp_path / "flat", digits.x_train.reshape(len(digits.x_train), 8, 8), digits.y_train)
    code, out, err = train(capsys, tmp_path, f"data.packed={tmp_path / 'flat'}")
    assert code == 2 and len(err) == 1 and err[0].startswith(f"jdl train: error: data.packed: {tmp_path / 'flat'} "
                                                             "holds examples x of shape (8, 8), but data set 'digits'")
    assert not (tmp_path / "out").exists()
    code, out, err = train(capsys, tmp_path, f"data.packed={tmp_path / 'flat'}", "data.standardize=true")
    assert code == 2 and err == ["jdl train: error: data.packed: the rows are read while training, so jdl cannot "
                                 "standardize them; set data.standardize = false (and standardize the arrays before "
                                 "jdl data pack)"]
