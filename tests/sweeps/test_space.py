"""Search spaces: grids in order, random points as pure functions of (seed, k), the ranges' laws, run labels."""

import math

import numpy as np
import pytest

from jdl.config import ConfigError
from jdl.sweeps import space


def test_grid_is_every_combination_last_key_fastest():
    dims = space.parse({"train.learning_rate": [0.1, 0.01], "seed": [0, 1, 2]})
    points = space.grid(dims)
    assert points == [{"train.learning_rate": lr, "seed": s} for lr in (0.1, 0.01) for s in (0, 1, 2)]


def test_nested_tables_flatten_to_dotted_keys():
    dims = space.parse({"train": {"learning_rate": {"log_uniform": [1e-4, 1e-1]}}, "model": {"hidden": [[8], [16]]}})
    assert [(d.key, d.kind) for d in dims] == [("train.learning_rate", "log_uniform"), ("model.hidden", "grid")]
    assert dims[1].values == ([8], [16])


def test_random_point_k_depends_only_on_seed_and_k():
    dims = space.parse({"a": {"uniform": [0.0, 1.0]}, "b": {"choice": ["x", "y", "z"]}})
    five, ten = space.random(dims, 5, seed=3), space.random(dims, 10, seed=3)
    assert five == ten[:5]
    assert space.random(dims, 5, seed=4) != five


def test_log_uniform_is_uniform_in_log_and_int_includes_both_ends():
    dims = space.parse({"lr": {"log_uniform": [1e-4, 1e-0]}, "n": {"int": [2, 4]}})
    points = space.random(dims, 4000, seed=0)
    logs = np.log10([p["lr"] for p in points])
    assert logs.min() >= -4 and logs.max() <= 0
    # the quartiles of U[-4, 0] are -3, -2, -1: 4000 draws put each within 0.1 of it (about 5 standard errors)
    np.testing.assert_allclose(np.quantile(logs, [0.25, 0.5, 0.75]), [-3, -2, -1], atol=0.1)
    assert sorted({p["n"] for p in points}) == [2, 3, 4]
    assert all(isinstance(p["n"], int) for p in points)


@pytest.mark.parametrize("table, message", [
    ({"model.dropout": {"choice": []}}, "space.model.dropout: choice needs a non-empty list"),
    ({"model.dropout": []}, "space.model.dropout: a grid needs a non-empty list"),
    ({"train.learning_rate": {"log_uniform": [0.0, 0.1]}}, "space.train.learning_rate: log_uniform needs positive bounds"),
    ({"train.learning_rate": {"log_uniform": [-1e-3, 0.1]}}, "log_uniform needs positive bounds"),
    ({"train.learning_rate": {"uniform": [0.1, 0.01]}}, "uniform needs low < high"),
    ({"train.batch_size": {"int": [8.5, 64]}}, "int needs integer bounds"),
    ({"seed": [1, 1]}, "values repeat"),
    ({"model.dropout": 0.3}, "must be a list of values or one of"),
    ({}, "[space] must be a non-empty table"),
])
def test_malformed_dimensions_name_their_key(table, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        space.parse(table)


def test_grid_refuses_ranges_and_says_what_to_do():
    with pytest.raises(ConfigError, match="method 'grid' needs a list of values for space.lr.*random"):
        space.grid(space.parse({"lr": {"uniform": [0.0, 1.0]}}))


def test_labels_read_like_the_overrides():
    assert space.label({"train.learning_rate": 1e-3, "model.kernel_init": "he_normal"}) == "lr=0.001 init=he_normal"
    assert space.label({"train.learning_rate": 3e-5, "model.hidden": [64, 32], "seed": 2}) == "lr=3.00e-5 hidden=64x32 seed=2"
    assert not math.isnan(space.random(space.parse({"x": {"uniform": [0, 1]}}), 1, 0)[0]["x"])
