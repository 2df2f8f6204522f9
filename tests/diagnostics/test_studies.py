"""The vanishing/exploding studies reproduce the textbook numbers and their own gradients independently."""

import jax
import numpy as np
import optax
import pytest

from jdl.diagnostics import studies
from tests.diagnostics.depth_reference import reference_depth_study


def test_depth_study_equals_the_per_configuration_flax_computation_it_replaced():
    grid = dict(activations=("tanh",), inits=("uniform", "large"), depths=(3,), batch_norm=(False, True),
                residual=(True,))
    options = dict(width=12, steps=4, learning_rate=0.05, clipnorm=1.0, examples=48)
    result = studies.depth_study(**grid, **options)
    expected = reference_depth_study(**grid, **options)
    assert len(result["records"]) == len(expected) == 2 * 2
    for record, reference in zip(result["records"], expected):
        for key in ("init_norms", "trained_norms", "losses"):
            np.testing.assert_allclose(record[key], reference[key], rtol=2e-4, err_msg=f"{key} of {record}")
        assert record["first_to_last"] == pytest.approx(reference["first_to_last"], rel=2e-4)


def test_depth_study_with_seeds_averages_the_single_seed_runs():
    grid = dict(activations=("tanh",), inits=("xavier_normal",), depths=(2,), batch_norm=(False,), width=8,
                steps=2, examples=32)
    result = studies.depth_study(**grid, seed=3, seeds=2)
    runs = [studies.depth_study(**grid, seed=s)["records"][0] for s in (3, 4)]
    record = result["records"][0]
    for key in ("init_norms", "trained_norms", "losses"):
        per_seed = np.asarray([r[key] for r in runs])
        np.testing.assert_allclose(record[f"{key}_seeds"], per_seed, rtol=1e-5)
        np.testing.assert_allclose(record[key], per_seed.mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(record[f"{key}_spread"], per_seed.std(axis=0), rtol=1e-4, atol=1e-9)
    assert record["first_to_last"] == pytest.approx(np.sqrt(runs[0]["first_to_last"] * runs[1]["first_to_last"]))
    assert record["finite"] and record["final_loss"] == pytest.approx(np.mean([r["losses"][-1] for r in runs]))


def test_init_study_xavier_halves_the_variance_per_relu_layer_and_he_keeps_it():
    result = studies.init_study(depth=12, width=256, examples=500)
    assert result["ratio_per_layer"]["xavier_normal"] == pytest.approx(1 / np.sqrt(2), abs=0.04)
    assert result["ratio_per_layer"]["he_normal"] == pytest.approx(1.0, abs=0.04)
    assert len(result["stds"]["he_normal"]) == 12


def test_depth_study_shows_vanishing_for_sigmoid_with_uniform_init_and_not_for_relu_with_he():
    result = studies.depth_study(activations=("sigmoid", "relu"), inits=("uniform", "he_normal"), depths=(6,),
                                 batch_norm=(False,), width=32, examples=128)
    ratio = {(r["activation"], r["init"]): r["first_to_last"] for r in result["records"]}
    assert ratio[("sigmoid", "uniform")] < 1e-4
    assert ratio[("relu", "he_normal")] > 1e-2
    assert all(len(r["init_norms"]) == 8 for r in result["records"]), "input layer + 6 hidden + head"


def test_study_arguments_are_checked():
    with pytest.raises(ValueError, match="activation"):
        studies.depth_study(activations=("sigmoidal",), depths=(2,))
    with pytest.raises(ValueError, match="depths"):
        studies.depth_study(activations=("relu",), inits=("he_normal",), depths=(0,))
    with pytest.raises(ValueError, match="depth"):
        studies.init_study(depth=-1)
