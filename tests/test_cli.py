import subprocess
import sys

import flax
import jax
import optax

import jdl
from jdl.cli import build_parser, main


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
