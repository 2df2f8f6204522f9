"""The adding problem and the copy-memory task: layout, targets and the baselines of SPEC.md §13."""

import math

import numpy as np
import pytest

from jdl.data import memory_tasks


def test_adding_problem_marks_one_step_per_half_and_targets_their_sum():
    x, y = memory_tasks.adding_problem(500, 30, seed=3)
    assert x.shape == (500, 30, 2) and y.shape == (500, 1) and x.dtype == np.float32
    markers = x[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :15].sum(axis=1) == 1) and np.all(markers[:, 15:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(axis=1), rtol=1e-6)
    assert 0 <= x[..., 0].min() and x[..., 0].max() < 1


def test_adding_problem_constant_prediction_scores_one_sixth():
    _, y = memory_tasks.adding_problem(200_000, 4, seed=0)
    mse = float(np.mean((y - 1.0) ** 2))
    assert mse == pytest.approx(1 / 6, abs=3 * np.sqrt(1 / 180 / 200_000) * 6), "Var(a + b) = 2/12, a, b ~ U[0, 1]"
    assert memory_tasks.ADDING_BASELINE_MSE == pytest.approx(1 / 6)


def test_copy_memory_layout_symbols_delimiter_and_recalled_targets():
    delay = 7
    x, y = memory_tasks.copy_memory(64, delay, seed=1)
    assert x.shape == (64, delay + 20, 10) and y.shape == (64, delay + 20)
    tokens = x.argmax(axis=-1)
    np.testing.assert_array_equal(x.sum(axis=-1), 1.0)
    assert np.all((tokens[:, :10] >= 1) & (tokens[:, :10] <= 8))
    assert np.all(tokens[:, 10:delay + 9] == 0) and np.all(tokens[:, delay + 9] == 9) and np.all(tokens[:, delay + 10:] == 0)
    assert np.all(y[:, :delay + 10] == 0)
    np.testing.assert_array_equal(y[:, -10:], tokens[:, :10])


def test_copy_baseline_is_the_cross_entropy_of_blank_then_uniform_guessing():
    delay = 100
    _, y = memory_tasks.copy_memory(32, delay, seed=2)
    probabilities = np.zeros(y.shape + (10,))
    probabilities[:, :delay + 10, 0] = 1.0
    probabilities[:, delay + 10:, 1:9] = 1 / 8
    picked = np.take_along_axis(probabilities, y[..., None], axis=-1)[..., 0]
    assert float(np.mean(-np.log(picked))) == pytest.approx(memory_tasks.copy_baseline(delay), rel=1e-12)
    assert memory_tasks.copy_baseline(100) == pytest.approx(10 * math.log(8) / 120)


@pytest.mark.parametrize("call, message", [
    (lambda: memory_tasks.adding_problem(0, 10), "n must be"),
    (lambda: memory_tasks.adding_problem(5, 1), "length must be >= 2"),
    (lambda: memory_tasks.copy_memory(5, 2.5), "delay must be"),
    (lambda: memory_tasks.copy_memory(5, 10, seed=-1), "seed must be"),
    (lambda: memory_tasks.copy_baseline(0), "delay must be"),
])
def test_memory_tasks_reject_bad_arguments(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
