import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.utils.class_weight import compute_class_weight

from jdl import losses as L
from jdl.nn import activations as A
from tests.numeric import jax_central_difference

# -- golden values (SPEC.md §3) ------------------------------------------------------------------


def test_golden_msle():
    assert float(L.msle(jnp.array([4.0, 0.0, 5.0, 2.0]), jnp.array([3.5, 1.0, 5.0, 3.0]))) == pytest.approx(0.14358, abs=5e-6)


def test_golden_categorical_crossentropy_uses_natural_log():
    value = L.categorical_crossentropy(jnp.array([[0.0, 1.0, 0.0]]), jnp.array([[0.2, 0.3, 0.5]]), from_logits=False)
    assert float(value) == pytest.approx(-math.log(0.3), abs=5e-6)
    assert float(value) == pytest.approx(1.20397, abs=5e-6)
    sparse = L.sparse_categorical_crossentropy(jnp.array([1]), jnp.log(jnp.array([[0.2, 0.3, 0.5]])))
    assert float(sparse) == pytest.approx(1.20397, abs=5e-6)


def test_golden_softmax_crossentropy_gradient_is_p_minus_onehot():
    logits = jnp.log(jnp.array([[0.2, 0.3, 0.5]]))
    expected = [[0.2, -0.7, 0.5]]
    onehot = jnp.array([[0.0, 1.0, 0.0]])
    np.testing.assert_allclose(jax.grad(lambda z: L.categorical_crossentropy(onehot, z))(logits), expected, atol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda z: L.sparse_categorical_crossentropy(jnp.array([1]), z))(logits), expected, atol=1e-6)


# -- closed forms -------------------------------------------------------------------------------

rng = np.random.default_rng(0)
Y = rng.normal(size=(6, 3))
P = rng.normal(size=(6, 3))


def test_regression_losses_against_numpy():
    np.testing.assert_allclose(L.mse(Y, P, reduction="none"), ((Y - P) ** 2).mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(L.mae(Y, P, reduction="none"), np.abs(Y - P).mean(axis=1), rtol=1e-5)
    assert float(L.rmse(Y, P)) == pytest.approx(math.sqrt(((Y - P) ** 2).mean()), rel=1e-5)
    np.testing.assert_allclose(L.rmse(Y, P, reduction="none"), np.sqrt(((Y - P) ** 2).mean(axis=1)), rtol=1e-5)
    e = P - Y
    for delta in (0.5, 1.0, 2.0):
        expected = np.where(np.abs(e) <= delta, 0.5 * e**2, delta * np.abs(e) - 0.5 * delta**2).mean(axis=1)
        np.testing.assert_allclose(L.huber(Y, P, delta=delta, reduction="none"), expected, rtol=1e-5)
    yp, pp = np.abs(Y), np.abs(P)
    np.testing.assert_allclose(L.msle(yp, pp, reduction="none"), ((np.log1p(yp) - np.log1p(pp)) ** 2).mean(axis=1), rtol=1e-5)


def test_classification_losses_against_numpy():
    t = (rng.random((6, 3)) > 0.5).astype(float)
    p = 1 / (1 + np.exp(-P))
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(L.binary_crossentropy(t, P, reduction="none"), bce, rtol=1e-5)
    np.testing.assert_allclose(L.binary_crossentropy(t, p, from_logits=False, reduction="none"), bce, rtol=1e-5)
    signs = 2 * t - 1
    np.testing.assert_allclose(L.hinge(signs, P, reduction="none"), np.maximum(0, 1 - signs * P).mean(axis=1), rtol=1e-6)
    q = np.exp(P) / np.exp(P).sum(axis=1, keepdims=True)
    target = np.exp(Y) / np.exp(Y).sum(axis=1, keepdims=True)
    kl = (target * np.log(target / q)).sum(axis=1)
    np.testing.assert_allclose(L.kl_divergence(target, q, reduction="none"), kl, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(L.kl_divergence(target, P, from_logits=True, reduction="none"), kl, rtol=1e-5, atol=1e-6)
    assert float(L.kl_divergence(target, target)) == pytest.approx(0.0, abs=1e-6)
    labels = rng.integers(0, 3, size=6)
    np.testing.assert_allclose(
        L.sparse_categorical_crossentropy(labels, P, reduction="none"), -np.log(q[np.arange(6), labels]), rtol=1e-5
    )
    np.testing.assert_allclose(
        L.categorical_crossentropy(np.eye(3)[labels], q, from_logits=False, reduction="none"),
        -np.log(q[np.arange(6), labels]), rtol=1e-5,
    )


def test_label_smoothing_matches_keras_formula():
    t = np.eye(3)[[0, 2]]
    smoothed = t * 0.8 + 0.2 / 3
    log_q = P[:2] - np.log(np.exp(P[:2]).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(L.categorical_crossentropy(t, P[:2], label_smoothing=0.2, reduction="none"),
                               -(smoothed * log_q).sum(axis=1), rtol=1e-5)


# -- reductions and weights ---------------------------------------------------------------------


def test_reductions_and_weighted_mean_divides_by_weight_sum():
    per_example = ((Y - P) ** 2).mean(axis=1)
    w = np.array([0.0, 1.0, 2.0, 0.5, 3.0, 1.0])
    assert float(L.mse(Y, P, reduction="sum")) == pytest.approx(per_example.sum(), rel=1e-5)
    assert float(L.mse(Y, P)) == pytest.approx(per_example.mean(), rel=1e-5)
    assert float(L.mse(Y, P, sample_weight=w)) == pytest.approx((w * per_example).sum() / w.sum(), rel=1e-5)
    assert float(L.mse(Y, P, sample_weight=w, reduction="sum")) == pytest.approx((w * per_example).sum(), rel=1e-5)
    np.testing.assert_allclose(L.mse(Y, P, sample_weight=w, reduction="none"), w * per_example, rtol=1e-5)
    assert float(L.mse(Y, P, sample_weight=np.zeros(6))) == 0.0


def test_sequence_losses_keep_time_axis_and_broadcast_weights():
    logits = rng.normal(size=(4, 5, 7))
    labels = rng.integers(0, 7, size=(4, 5))
    per_step = L.sparse_categorical_crossentropy(labels, logits, reduction="none")
    assert per_step.shape == (4, 5)
    w = np.array([1.0, 0.0, 2.0, 1.0])
    expected = (w[:, None] * np.asarray(per_step)).sum() / (w.sum() * 5)
    assert float(L.sparse_categorical_crossentropy(labels, logits, sample_weight=w)) == pytest.approx(expected, rel=1e-5)
    mask = (rng.random((4, 5)) > 0.3).astype(float)
    expected_masked = (mask * np.asarray(per_step)).sum() / mask.sum()
    assert float(L.sparse_categorical_crossentropy(labels, logits, sample_weight=mask)) == pytest.approx(expected_masked, rel=1e-5)
    assert L.sparse_categorical_crossentropy(labels[..., None], logits, reduction="none").shape == (4, 5)


def test_class_weights_change_the_loss_exactly_as_sample_weights():
    labels = np.array([0, 1, 1, 2, 1, 0])
    class_weight = {0: 5.0, 1: 0.5, 2: 2.0}
    loop_weights = np.array([class_weight[int(c)] for c in labels])
    sample_weight = L.class_weight_to_sample_weight(labels, class_weight)
    np.testing.assert_array_equal(sample_weight, loop_weights)
    np.testing.assert_array_equal(L.class_weight_to_sample_weight(np.eye(3)[labels], class_weight), loop_weights)
    a = L.sparse_categorical_crossentropy(labels, P, sample_weight=sample_weight)
    b = L.sparse_categorical_crossentropy(labels, P, sample_weight=loop_weights)
    assert float(a) == float(b)
    np.testing.assert_array_equal(L.class_weight_to_sample_weight(labels, {2: 4.0}), [1, 1, 1, 4, 1, 1])


def test_balanced_class_weight_matches_scikit_learn():
    y = np.array([0] * 5 + [1] * 70)
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    weights = L.balanced_class_weight(y)
    assert weights == pytest.approx({0: expected[0], 1: expected[1]})
    assert weights[0] == pytest.approx(7.5)


# -- gradients: float64 central finite differences --------------------------------------------

T_REG = np.array([[0.3, -1.2, 2.0], [1.5, 0.1, -0.4]])
P_REG = np.array([[0.9, -0.2, 0.7], [-0.6, 0.45, 1.8]])
T_BIN = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
T_HOT = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
T_DIST = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
P_PROB = np.array([[0.3, 0.6, 0.1], [0.25, 0.15, 0.6]])
W = np.array([0.7, 1.9])

GRADIENT_CASES = {
    "mse": (T_REG, P_REG, {}),
    "mae": (T_REG, P_REG, {}),
    "rmse": (T_REG, P_REG, {}),
    "huber": (T_REG, P_REG, {"delta": 0.8}),
    "msle": (np.abs(T_REG), np.abs(P_REG), {}),
    "binary_crossentropy": (T_BIN, P_REG, {}),
    "binary_crossentropy/probabilities": (T_BIN, P_PROB, {"from_logits": False}),
    "hinge": (2 * T_BIN - 1, P_REG, {}),
    "categorical_crossentropy": (T_HOT, P_REG, {}),
    "categorical_crossentropy/probabilities": (T_HOT, P_PROB, {"from_logits": False}),
    "sparse_categorical_crossentropy": (np.array([1, 2]), P_REG, {}),
    "sparse_categorical_crossentropy/probabilities": (np.array([1, 2]), P_PROB, {"from_logits": False}),
    "kl_divergence": (T_DIST, P_PROB, {}),
    "kl_divergence/logits": (T_DIST, P_REG, {"from_logits": True}),
}


@pytest.mark.parametrize("case", sorted(GRADIENT_CASES))
def test_gradient_matches_float64_central_differences(case, x64):
    y_true, y_pred, options = GRADIENT_CASES[case]
    fn = L.get(case.split("/")[0], **options)
    assert L.names() and case.split("/")[0] in L.names()

    def cost(p):
        return fn(jnp.asarray(y_true), jnp.asarray(p), sample_weight=jnp.asarray(W))

    analytic = jax.jit(jax.grad(cost))(jnp.asarray(y_pred))
    assert analytic.dtype == jnp.float64
    np.testing.assert_allclose(analytic, jax_central_difference(cost, y_pred), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, y_true", [
    ("binary_crossentropy", np.array([[1.0, 0.0, 1.0, 0.0]])),
    ("categorical_crossentropy", np.array([[0.0, 1.0, 0.0, 0.0]])),
    ("sparse_categorical_crossentropy", np.array([0])),
])
def test_stable_at_extreme_logits(name, y_true):
    logits = jnp.array([[1e4, -1e4, -1e4, 1e4]])
    value, grad = jax.value_and_grad(lambda z: L.get(name)(y_true, z))(logits)
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
    probabilities = jnp.array([[1.0, 0.0, 0.0, 1.0]])
    value, grad = jax.value_and_grad(lambda p: L.get(name, from_logits=False)(y_true, p))(probabilities)
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad))


def test_rmse_gradient_is_finite_at_zero_error():
    grad = jax.grad(lambda p: L.rmse(jnp.ones(3), p))(jnp.ones(3))
    assert np.all(np.isfinite(grad))


@jax.jit
def _crossentropies(onehot, logits, labels):
    """(from logits, from softmax probabilities, sparse from logits): one compilation per shape, not one per op."""
    probabilities = A.softmax(logits)
    return (L.categorical_crossentropy(onehot, logits, reduction="none"),
            L.categorical_crossentropy(onehot, probabilities, from_logits=False, reduction="none"),
            L.sparse_categorical_crossentropy(labels, logits, reduction="none"))


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(2, 10)), elements=st.floats(-5, 5)), st.data())
def test_crossentropy_from_logits_equals_crossentropy_of_softmax(logits, data):
    with jax.enable_x64(True):
        labels = np.array(data.draw(st.lists(st.integers(0, logits.shape[1] - 1), min_size=logits.shape[0],
                                             max_size=logits.shape[0])))
        onehot = np.eye(logits.shape[1])[labels]
        from_logits, from_probs, sparse = _crossentropies(onehot, logits, labels)
        assert from_probs.dtype == jnp.float64
        np.testing.assert_allclose(from_logits, from_probs, atol=1e-6)
        np.testing.assert_allclose(sparse, from_probs, atol=1e-6)


def test_jit_matches_eager_and_bad_labels_under_jit_are_nan_not_wrong():
    labels = jnp.array([0, 2, 1, 1, 0, 2])
    eager = L.sparse_categorical_crossentropy(labels, P)
    jitted = jax.jit(L.sparse_categorical_crossentropy)(labels, jnp.asarray(P))
    assert float(eager) == pytest.approx(float(jitted), rel=1e-6)
    assert np.isnan(float(jax.jit(L.sparse_categorical_crossentropy)(labels.at[0].set(3), jnp.asarray(P))))


# -- bad input ----------------------------------------------------------------------------------


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"unknown loss 'categorical_cross_entropy'.*Valid names: .*sparse_categorical_crossentropy"):
        L.get("categorical_cross_entropy")
    with pytest.raises(ValueError, match=r"y_true and y_pred must have the same shape, got y_true \(6, 3\) and y_pred \(6, 2\)"):
        L.mse(Y, P[:, :2])
    with pytest.raises(ValueError, match=r"y_true must be integer class labels in \[0, 2\] \(3 classes\), got values from 0 to 3"):
        L.sparse_categorical_crossentropy(np.array([0, 1, 3, 1, 0, 0]), P)
    with pytest.raises(ValueError, match=r"y_true must be integer class labels in \[0, 2\].*from -1"):
        L.sparse_categorical_crossentropy(np.array([0, 1, -1, 1, 0, 0]), P)
    with pytest.raises(ValueError, match=r"y_true must hold one integer label per row of y_pred"):
        L.sparse_categorical_crossentropy(np.array([0, 1]), P)
    with pytest.raises(ValueError, match="y_true must hold integer class labels, got non-integer"):
        L.sparse_categorical_crossentropy(np.array([0, 1, 0.5, 1, 0, 0]), P)
    with pytest.raises(ValueError, match=r"sample_weight must be non-negative, got minimum -1"):
        L.mse(Y, P, sample_weight=np.array([1.0, 1.0, -1.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(6,\)"):
        L.mse(Y, P, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match=r"y_true must hold hinge labels in \{-1, 1\}, got values \[0.0, 1.0\]"):
        L.hinge(np.array([0.0, 1.0]), np.array([0.3, -0.2]))
    with pytest.raises(ValueError, match=r"reduction must be one of \['mean', 'sum', 'none', 'sum_over_batch_size'\], got 'avg'"):
        L.mse(Y, P, reduction="avg")
    with pytest.raises(ValueError, match="delta must be > 0"):
        L.huber(Y, P, delta=0.0)
    with pytest.raises(ValueError, match=r"y_pred must have shape \(batch, \.\.\., classes\)"):
        L.categorical_crossentropy(np.array([0.0, 1.0]), np.array([0.2, 0.8]))
    with pytest.raises(TypeError, match="y_pred must be a numeric array, got str"):
        L.mse(Y, "predictions")
    with pytest.raises(ValueError, match=r"class_weight\[1\] must be >= 0"):
        L.class_weight_to_sample_weight(np.array([0, 1]), {0: 1.0, 1: -2.0})
    with pytest.raises(TypeError, match=r"'mse' got unknown option\(s\) \['from_logits'\]"):
        L.get("mse", from_logits=True)


KERAS_SUM_OVER_BATCH_SIZE = {  # keras 3.15.1 (jax), tests/keras_reference/record_keras.py: Σ w·L / n
    "binary_crossentropy": 0.878624082, "mean_squared_error": 0.31412074}


def test_sum_over_batch_size_divides_by_the_number_of_examples_as_keras():
    from tests.keras_reference import cases

    _, y, w, _ = cases.multi_label()
    p = np.random.default_rng(5).uniform(0.05, 0.95, size=y.shape).astype(np.float32)
    for name, keras_value in KERAS_SUM_OVER_BATCH_SIZE.items():
        fn = L.get(name, from_logits=False) if name == "binary_crossentropy" else L.get(name)
        value = fn(y, p, sample_weight=w, reduction="sum_over_batch_size")
        assert float(value) == pytest.approx(keras_value, rel=2e-6), name
        per_example = np.asarray(fn(y, p, reduction="none"), np.float64)
        assert float(value) == pytest.approx(np.sum(w * per_example) / len(w), rel=1e-6)
        assert float(fn(y, p, sample_weight=w)) == pytest.approx(np.sum(w * per_example) / w.sum(), rel=1e-6)
        assert float(fn(y, p, reduction="sum_over_batch_size")) == pytest.approx(float(fn(y, p)), rel=1e-7)
