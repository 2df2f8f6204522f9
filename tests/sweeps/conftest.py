"""A tiny base run (iris, one hidden layer of 8, 3 epochs) and sweep files over it."""

import textwrap

import pytest

BASE = """
name = "iris_base"
seed = 0
[data]
name = "iris"
options = { test_size = 0.2, seed = 1 }
validation_split = 0.2
[model]
name = "mlp"
hidden = [8]
outputs = 3
[train]
epochs = 3
batch_size = 16
optimizer = "sgd"
learning_rate = 0.05
"""


@pytest.fixture
def write_sweep(tmp_path):
    """write_sweep(body) -> path of a sweep file whose base is the tiny iris config."""
    (tmp_path / "base.toml").write_text(BASE)

    def write(body: str, name: str = "sweep.toml"):
        path = tmp_path / name
        path.write_text('base = "base.toml"\n' + textwrap.dedent(body))
        return path

    return write
