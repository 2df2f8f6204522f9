"""Tests for jdl.metrics: agreement with scikit-learn, jit consistency and argument checks."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm

from jdl import metrics

N = 40
SEEDS = range(8)
CLASSIFICATION = {
    "precision": (metrics.precision, skm.precision_score),
    "recall": (metrics.recall, skm.recall_score),
    "f1": (metrics.f1_score, skm.f1_score),
}


def close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol)


def weights(rng, n=N):
    w = rng.rand(n).astype(np.float32)
    w[rng.rand(n) < 0.2] = 0.0
    w[0] = 1.0
    return w


def probabilities(rng, n=N, classes=3):
    logits = rng.randn(n, classes).astype(np.float32)
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


# --- accuracy ---------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_matches_sklearn_on_labels_with_weights(seed):
    rng = np.random.RandomState(seed)
    y_true, y_pred = rng.randint(0, 4, N), rng.randint(0, 4, N)
    w = weights(rng)
    close(metrics.accuracy(y_true, y_pred), skm.accuracy_score(y_true, y_pred))
    close(metrics.accuracy(y_true, y_pred, sample_weight=w), skm.accuracy_score(y_true, y_pred, sample_weight=w))


def test_accuracy_on_probabilities_uses_argmax_for_sparse_and_one_hot_targets():
    rng = np.random.RandomState(1)
    probs = probabilities(rng)
    y_true = rng.randint(0, 3, N)
    expected = skm.accuracy_score(y_true, probs.argmax(axis=1))
    close(metrics.accuracy(y_true, probs), expected)
    close(metrics.accuracy(y_true[:, None], probs), expected)
    close(metrics.accuracy(np.eye(3, dtype=np.float32)[y_true], probs), expected)


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_accuracy_thresholds_one_class_scores(threshold):
    rng = np.random.RandomState(2)
    scores = rng.rand(N).astype(np.float32)
    y_true = rng.randint(0, 2, N)
    expected = skm.accuracy_score(y_true, scores > threshold)
    close(metrics.accuracy(y_true, scores, threshold=threshold), expected)
    close(metrics.accuracy(y_true[:, None], scores[:, None], threshold=threshold), expected)
    close(metrics.accuracy(y_true.astype(np.float32), scores[:, None], threshold=threshold), expected)


def test_accuracy_counts_by_hand():
    y_true, y_pred = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])
    w = [3.0, 1.0, 0.0, 0.0]
    assert float(metrics.accuracy(y_true, y_pred)) == pytest.approx(0.5)
    assert float(metrics.accuracy(y_true, y_pred, sample_weight=w)) == pytest.approx(0.75)
    assert float(metrics.accuracy(y_true[:, None], y_pred[:, None], sample_weight=w)) == pytest.approx(0.75)


# --- confusion matrix -------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_matches_sklearn(seed):
    rng = np.random.RandomState(seed)
    y_true, y_pred = rng.randint(0, 4, N), rng.randint(0, 4, N)
    w = weights(rng)
    labels = np.arange(4)
    cm = metrics.confusion_matrix(y_true, y_pred, 4)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=labels))
    close(
        metrics.confusion_matrix(y_true, y_pred, 4, sample_weight=w),
        skm.confusion_matrix(y_true, y_pred, labels=labels, sample_weight=w),
    )


def test_confusion_matrix_infers_num_classes_from_concrete_labels():
    y_true, y_pred = np.array([0, 3, 1, 3]), np.array([0, 1, 1, 2])
    cm = metrics.confusion_matrix(y_true, y_pred)
    assert cm.shape == (4, 4)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y_true, y_pred, labels=np.arange(4)))


def test_confusion_matrix_from_scores():
    rng = np.random.RandomState(3)
    probs = probabilities(rng, classes=4)
    y_true = rng.randint(0, 4, N)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, probs),
        skm.confusion_matrix(y_true, probs.argmax(1), labels=np.arange(4)),
    )
    scores = rng.rand(N).astype(np.float32)
    y_bin = rng.randint(0, 2, N)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_bin, scores, threshold=0.7),
        skm.confusion_matrix(y_bin, scores > 0.7, labels=[0, 1]),
    )


# --- precision / recall / F1 ------------------------------------------------


@pytest.mark.parametrize("average", ["binary", "macro", "micro", "weighted"])
@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_precision_recall_f1_match_sklearn(name, average):
    ours, theirs = CLASSIFICATION[name]
    classes = 2 if average == "binary" else 4
    for seed in SEEDS:
        rng = np.random.RandomState(seed)
        y_true, y_pred = rng.randint(0, classes, N), rng.randint(0, classes, N)
        w = weights(rng)
        close(ours(y_true, y_pred, average=average), theirs(y_true, y_pred, average=average))
        close(
            ours(y_true, y_pred, average=average, sample_weight=w),
            theirs(y_true, y_pred, average=average, sample_weight=w),
        )


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_binary_scores_respect_pos_label_and_threshold(name):
    ours, theirs = CLASSIFICATION[name]
    rng = np.random.RandomState(4)
    scores = rng.rand(N).astype(np.float32)
    y_true = rng.randint(0, 2, N)
    for pos_label in (0, 1):
        close(
            ours(y_true, scores, threshold=0.4, pos_label=pos_label),
            theirs(y_true, (scores > 0.4).astype(int), pos_label=pos_label),
        )


@pytest.mark.parametrize("average", ["macro", "weighted"])
def test_macro_average_skips_classes_absent_from_both_inputs(average):
    rng = np.random.RandomState(5)
    y_true = rng.choice([0, 1, 3], N)
    y_pred = rng.choice([0, 1, 3], N)
    for name, (ours, theirs) in CLASSIFICATION.items():
        close(ours(y_true, y_pred, average=average, num_classes=6), theirs(y_true, y_pred, average=average))


def test_scores_with_one_hot_targets_match_sklearn():
    rng = np.random.RandomState(6)
    probs = probabilities(rng, classes=4)
    y_true = rng.randint(0, 4, N)
    one_hot = np.eye(4, dtype=np.float32)[y_true]
    w = weights(rng)
    close(
        metrics.f1_score(one_hot, probs, average="macro", sample_weight=w),
        skm.f1_score(y_true, probs.argmax(1), average="macro", sample_weight=w),
    )
    close(
        metrics.recall(one_hot, probs, average="weighted"),
        skm.recall_score(y_true, probs.argmax(1), average="weighted"),
    )


@settings(max_examples=25, deadline=None)
@given(
    y_true=hnp.arrays(np.int32, 12, elements=st.integers(0, 2)),
    y_pred=hnp.arrays(np.int32, 12, elements=st.integers(0, 2)),
    average=st.sampled_from(["macro", "micro", "weighted"]),
)
def test_f1_matches_sklearn_on_small_edge_cases(y_true, y_pred, average):
    expected = skm.f1_score(y_true, y_pred, average=average, zero_division=0)
    close(metrics.f1_score(y_true, y_pred, average=average, num_classes=3), expected)
    close(
        metrics.precision(y_true, y_pred, average=average, num_classes=3),
        skm.precision_score(y_true, y_pred, average=average, zero_division=0),
    )


def test_f1_is_harmonic_mean_of_precision_and_recall_by_hand():
    y_true = [1, 1, 1, 0, 0, 1]
    y_pred = [1, 0, 1, 1, 0, 0]
    p, r = 2 / 3, 2 / 4  # TP = 2, FP = 1, FN = 2
    assert float(metrics.precision(y_true, y_pred)) == pytest.approx(p)
    assert float(metrics.recall(y_true, y_pred)) == pytest.approx(r)
    assert float(metrics.f1_score(y_true, y_pred)) == pytest.approx(2 / (1 / p + 1 / r))
    assert float(metrics.f1(y_true, y_pred)) == pytest.approx(4 / 7)


def test_zero_division_gives_zero_without_nan():
    y_true = np.array([1, 1, 0, 0])
    never_positive = np.zeros(4, np.int32)
    assert float(metrics.precision(y_true, never_positive)) == 0.0
    assert float(metrics.recall(np.zeros(4, np.int32), never_positive)) == 0.0
    assert float(metrics.f1_score(np.zeros(4, np.int32), never_positive)) == 0.0
    assert float(metrics.precision(y_true, never_positive, average="macro")) == pytest.approx(0.25)


# --- ROC --------------------------------------------------------------------


def roc_inputs(seed, ties):
    rng = np.random.RandomState(seed)
    y_true = rng.randint(0, 2, N)
    y_true[:2] = [0, 1]
    scores = rng.rand(N).astype(np.float32)
    if ties:
        scores = np.round(scores, 1).astype(np.float32)
    return rng, y_true, scores


@pytest.mark.parametrize("ties", [False, True])
def test_roc_curve_matches_sklearn(ties):
    for seed in SEEDS:
        rng, y_true, scores = roc_inputs(seed, ties)
        for w in (None, weights(rng)):
            fpr, tpr, thr = metrics.roc_curve(y_true, scores, sample_weight=w)
            fpr_sk, tpr_sk, thr_sk = skm.roc_curve(y_true, scores, sample_weight=w, drop_intermediate=False)
            assert fpr.shape == fpr_sk.shape
            close(fpr, fpr_sk)
            close(tpr, tpr_sk)
            assert np.isinf(thr[0]) and np.isinf(thr_sk[0])
            close(thr[1:], thr_sk[1:])


@pytest.mark.parametrize("ties", [False, True])
def test_roc_auc_matches_sklearn(ties):
    for seed in SEEDS:
        rng, y_true, scores = roc_inputs(seed, ties)
        w = weights(rng)
        close(metrics.roc_auc(y_true, scores), skm.roc_auc_score(y_true, scores))
        close(metrics.roc_auc(y_true, scores, sample_weight=w), skm.roc_auc_score(y_true, scores, sample_weight=w))
        fpr, tpr, _ = metrics.roc_curve(y_true, scores)
        close(metrics.auc(y_true, scores), np.trapezoid(tpr, fpr))


@settings(max_examples=25, deadline=None)
@given(
    y_true=hnp.arrays(np.int32, 16, elements=st.integers(0, 1)),
    scores=hnp.arrays(np.float32, 16, elements=st.sampled_from([0.0, 0.25, 0.5, 1.0])),
)
def test_roc_auc_matches_sklearn_under_heavy_ties(y_true, scores):
    y_true = y_true.copy()
    y_true[:2] = [0, 1]
    close(metrics.roc_auc(y_true, scores), skm.roc_auc_score(y_true, scores))


def test_roc_auc_extremes_and_column_scores():
    y_true = np.array([0, 0, 1, 1])
    assert float(metrics.roc_auc(y_true, [0.1, 0.2, 0.3, 0.4])) == 1.0
    assert float(metrics.roc_auc(y_true, [0.4, 0.3, 0.2, 0.1])) == 0.0
    assert float(metrics.roc_auc(y_true, np.full(4, 0.5))) == 0.5
    assert float(metrics.roc_auc(y_true[:, None], np.array([[0.1], [0.2], [0.3], [0.4]]))) == 1.0


# --- regression -------------------------------------------------------------

REGRESSION = [
    (metrics.mae, skm.mean_absolute_error),
    (metrics.mse, skm.mean_squared_error),
    (metrics.rmse, skm.root_mean_squared_error),
    (metrics.r2_score, skm.r2_score),
]


@pytest.mark.parametrize("shape", [(N,), (N, 3)])
@pytest.mark.parametrize("ours,theirs", REGRESSION, ids=lambda f: getattr(f, "__name__", ""))
def test_regression_matches_sklearn(ours, theirs, shape):
    for seed in SEEDS:
        rng = np.random.RandomState(seed)
        y_true = rng.randn(*shape).astype(np.float32)
        y_pred = (y_true + 0.5 * rng.randn(*shape)).astype(np.float32)
        w = weights(rng)
        close(ours(y_true, y_pred), theirs(y_true, y_pred), rtol=1e-4)
        close(ours(y_true, y_pred, sample_weight=w), theirs(y_true, y_pred, sample_weight=w), rtol=1e-4)


def test_r2_constant_target_follows_sklearn_force_finite():
    y_true = np.array([[2.0, 1.0], [2.0, 2.0], [2.0, 3.0]])
    exact = y_true.copy()
    off = y_true + np.array([[0.0, 0.5], [1.0, 0.0], [0.0, 0.0]])
    close(metrics.r2(y_true, exact), skm.r2_score(y_true, exact))
    close(metrics.r2(y_true, off), skm.r2_score(y_true, off))
    assert float(metrics.r2(y_true[:, 0], off[:, 0])) == 0.0


def test_rmse_averages_per_output_roots():
    y_true = np.zeros((2, 2))
    y_pred = np.array([[3.0, 0.0], [4.0, 0.0]])
    assert float(metrics.rmse(y_true, y_pred)) == pytest.approx(np.sqrt(12.5) / 2)


# --- jit --------------------------------------------------------------------


def test_metrics_agree_under_jit():
    rng = np.random.RandomState(7)
    y_true, y_pred = rng.randint(0, 3, N), rng.randint(0, 3, N)
    probs = probabilities(rng)
    y_bin, scores = roc_inputs(7, ties=True)[1:]
    w = weights(rng)
    y_reg, p_reg = rng.randn(N, 2), rng.randn(N, 2)
    cases = [
        (partial(metrics.accuracy), (y_true, probs, w)),
        (partial(metrics.confusion_matrix, num_classes=3), (y_true, y_pred, w)),
        (partial(metrics.f1_score, average="macro", num_classes=3), (y_true, y_pred, w)),
        (partial(metrics.precision, average="micro", num_classes=3), (y_true, y_pred, w)),
        (partial(metrics.recall), (y_bin, scores, w)),
        (partial(metrics.roc_auc), (y_bin, scores, w)),
        (partial(metrics.r2_score), (y_reg, p_reg, w)),
        (partial(metrics.rmse), (y_reg, p_reg, w)),
    ]
    functions = [fn for fn, _ in cases]

    @jax.jit  # every case in one compilation
    def jitted(inputs):
        return [fn(a, b, sample_weight=sw) for fn, (a, b, sw) in zip(functions, inputs, strict=True)]

    for (fn, (a, b, sw)), got in zip(cases, jitted([args for _, args in cases]), strict=True):
        close(got, fn(a, b, sample_weight=sw))


# --- get --------------------------------------------------------------------


def test_get_resolves_keras_names_and_passes_callables():
    assert metrics.get("acc") is metrics.accuracy
    assert metrics.get("F1") is metrics.f1_score
    assert metrics.get("auc") is metrics.roc_auc is metrics.auc
    assert metrics.get("root_mean_squared_error") is metrics.rmse
    assert metrics.get("r2") is metrics.r2_score
    assert metrics.get(len) is len


def test_get_unknown_name():
    with pytest.raises(ValueError, match="unknown metric 'acuracy'.*accuracy"):
        metrics.get("acuracy")


def test_get_wrong_type():
    with pytest.raises(TypeError, match="metric must be a name"):
        metrics.get(3)


# --- bad inputs -------------------------------------------------------------


def test_label_shapes_must_match():
    with pytest.raises(ValueError, match=r"y_true and y_pred .*y_true \(3,\).*y_pred \(4,\)"):
        metrics.accuracy([0, 1, 1], [0, 1, 1, 0])


def test_target_shape_must_fit_class_scores():
    with pytest.raises(ValueError, match=r"y_true .*\(5, 3\).*got y_true \(5, 2\)"):
        metrics.accuracy(np.zeros((5, 2)), np.zeros((5, 3), np.float32))


def test_unknown_average():
    with pytest.raises(ValueError, match="average must be one of .*'macro'.*'samples'.*got 'sample'"):
        metrics.f1_score([0, 1], [0, 1], average="sample")


def test_negative_sample_weight():
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        metrics.accuracy([0, 1], [0, 1], sample_weight=[1.0, -1.0])


def test_sample_weight_length():
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(3,\).*got shape \(2,\)"):
        metrics.precision([0, 1, 1], [0, 1, 0], sample_weight=[1.0, 1.0])


def test_sample_weight_zero_sum_for_means():
    with pytest.raises(ValueError, match="sample_weight must have a positive sum"):
        metrics.mse([0.0, 1.0], [0.0, 1.0], sample_weight=[0.0, 0.0])


def test_binary_average_rejects_multiclass_y_true():
    with pytest.raises(ValueError, match=r"y_true must hold binary labels.*average='binary'.*\[0, 1, 2\]"):
        metrics.recall([0, 1, 2], [0, 1, 1])


def test_binary_average_rejects_multiclass_y_pred():
    with pytest.raises(ValueError, match="y_pred must hold binary labels"):
        metrics.precision([0, 1, 1], [0, 2, 1])


def test_binary_average_rejects_multiclass_scores():
    with pytest.raises(ValueError, match="average='binary' needs 2 classes.*y_pred has 3"):
        metrics.f1_score([0, 1], np.eye(3, dtype=np.float32)[:2])


def test_binary_average_rejects_num_classes_other_than_two():
    with pytest.raises(ValueError, match="num_classes must be 2 for average='binary'"):
        metrics.f1_score([0, 1], [0, 1], num_classes=3)


def test_binary_scores_need_binary_y_true():
    with pytest.raises(ValueError, match="y_true must hold binary labels"):
        metrics.accuracy([0, 2, 1], np.array([0.1, 0.9, 0.3], np.float32))


def test_pos_label_must_be_zero_or_one_for_binary():
    with pytest.raises(ValueError, match="pos_label must be one of"):
        metrics.precision([0, 1], [0, 1], pos_label=2)


def test_pos_label_type():
    with pytest.raises(TypeError, match="pos_label must be an integer"):
        metrics.precision([0, 1], [0, 1], pos_label=1.0)


def test_y_true_out_of_range_of_num_classes():
    with pytest.raises(ValueError, match=r"y_true must be integer class labels in \[0, 2\]"):
        metrics.confusion_matrix([0, 3], [0, 1], num_classes=3)


def test_y_pred_out_of_range_of_num_classes():
    with pytest.raises(ValueError, match=r"y_pred must be integer class labels in \[0, 2\]"):
        metrics.f1_score([0, 1], [0, 5], average="macro", num_classes=3)


def test_sparse_y_true_out_of_range_of_score_classes():
    with pytest.raises(ValueError, match=r"y_true must be integer class labels in \[0, 2\]"):
        metrics.accuracy([0, 3], np.eye(3, dtype=np.float32)[:2])


def test_negative_labels_without_num_classes():
    with pytest.raises(ValueError, match="y_true must be non-negative"):
        metrics.confusion_matrix([-1, 0], [0, 1])


def test_num_classes_required_under_jit():
    with pytest.raises(ValueError, match="num_classes is required"):
        jax.jit(metrics.confusion_matrix)(jnp.array([0, 1]), jnp.array([1, 1]))


def test_num_classes_must_match_score_classes():
    with pytest.raises(ValueError, match="num_classes must match the 3 classes"):
        metrics.confusion_matrix([0, 1], np.eye(3, dtype=np.float32)[:2], num_classes=4)


def test_num_classes_type():
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        metrics.confusion_matrix([0, 1], [0, 1], num_classes=2.0)


def test_non_integer_labels():
    with pytest.raises(ValueError, match="y_true must hold integer class labels"):
        metrics.accuracy([0.5, 1.0], [0, 1])


def test_y_true_type():
    with pytest.raises(TypeError, match="y_true must be a numeric array"):
        metrics.accuracy("ab", [0, 1])


def test_y_pred_complex():
    with pytest.raises(TypeError, match="y_pred must be a real-valued array"):
        metrics.accuracy([0, 1], np.array([0.1 + 1j, 0.9]))


def test_threshold_type():
    with pytest.raises(TypeError, match="threshold must be a real number"):
        metrics.accuracy([0, 1], np.array([0.2, 0.7]), threshold="0.5")


def test_empty_y_pred():
    with pytest.raises(ValueError, match="y_pred must not be empty"):
        metrics.accuracy(np.zeros(0, np.int32), np.zeros(0, np.int32))


def test_roc_requires_binary_y_true():
    with pytest.raises(ValueError, match=r"y_true must hold binary labels.*\[0, 1, 2\]"):
        metrics.roc_auc([0, 1, 2], [0.1, 0.2, 0.3])


def test_roc_requires_both_classes():
    with pytest.raises(ValueError, match="y_true must contain both classes"):
        metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3])


def test_roc_score_shape():
    with pytest.raises(ValueError, match=r"y_score must have shape \(n,\) or \(n, 1\).*\(3, 2\)"):
        metrics.roc_auc([0, 1, 1], np.zeros((3, 2)))


def test_roc_shapes_must_match():
    with pytest.raises(ValueError, match=r"y_true must have shape \(3,\).*got y_true \(2,\)"):
        metrics.roc_curve([0, 1], [0.1, 0.2, 0.3])


def test_roc_score_must_be_finite():
    with pytest.raises(ValueError, match="y_score must be finite"):
        metrics.roc_auc([0, 1], [0.1, np.nan])


def test_roc_curve_refuses_tracers():
    with pytest.raises(ValueError, match="roc_curve needs concrete arrays.*y_true is traced"):
        jax.jit(metrics.roc_curve)(jnp.array([0, 1]), jnp.array([0.1, 0.2]))


def test_regression_shapes_must_match():
    with pytest.raises(ValueError, match=r"y_true and y_pred must have the same shape.*y_true \(3,\).*y_pred \(3, 1\)"):
        metrics.mae(np.zeros(3), np.zeros((3, 1)))


def test_regression_ndim():
    with pytest.raises(ValueError, match="y_true must have 1 or 2 dimensions"):
        metrics.mse(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


def test_r2_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2 sample"):
        metrics.r2_score([1.0], [1.0])


def test_regression_type():
    with pytest.raises(TypeError, match="y_pred must be a numeric array"):
        metrics.rmse([1.0, 2.0], None)


# -- multi-label ----------------------------------------------------------------------------------

KERAS_WEIGHTED_BINARY_ACCURACY = 0.640037119  # keras 3.15.1 BinaryAccuracy, tests/keras_reference/record_keras.py


def multi_hot(rng, n=N, labels=4):
    y = (rng.rand(n, labels) < 0.4).astype(np.float32)
    y[0] = 0.0  # an example with no true label: the 0/0 cases
    scores = np.clip(0.6 * y + 0.7 * rng.rand(n, labels), 0, 1).astype(np.float32)
    scores[1] = 0.1  # an example with no predicted label
    return y, scores


MULTI_LABEL_SCORES = {
    "precision": (metrics.multilabel_precision, skm.precision_score),
    "recall": (metrics.multilabel_recall, skm.recall_score),
    "f1": (metrics.multilabel_f1, skm.f1_score),
    "jaccard": (metrics.jaccard_score, skm.jaccard_score),
}


@pytest.mark.parametrize("average", metrics.MULTI_LABEL_AVERAGES)
@pytest.mark.parametrize("name", sorted(MULTI_LABEL_SCORES))
def test_multilabel_scores_match_sklearn_with_weights(name, average):
    ours, theirs = MULTI_LABEL_SCORES[name]
    rng = np.random.RandomState(0)
    y, scores = multi_hot(rng)
    w = weights(rng)
    predicted = (scores > 0.5).astype(int)
    expected = theirs(y.astype(int), predicted, average=average, sample_weight=w, zero_division=0)
    close(ours(y, scores, average=average, sample_weight=w), expected)
    close(ours(y, predicted, average=average), theirs(y.astype(int), predicted, average=average, zero_division=0))


@pytest.mark.parametrize("name", ["precision", "recall", "f1"])
def test_average_samples_of_the_classification_scores_is_the_multilabel_score(name):
    y, scores = multi_hot(np.random.RandomState(4))
    ours = {"precision": metrics.precision, "recall": metrics.recall, "f1": metrics.f1_score}[name]
    close(ours(y, scores, average="samples"), MULTI_LABEL_SCORES[name][0](y, scores, average="samples"))


def test_subset_accuracy_is_sklearns_multilabel_accuracy_and_binary_accuracy_counts_each_label():
    rng = np.random.RandomState(5)
    y, scores = multi_hot(rng)
    w = weights(rng)
    predicted = (scores > 0.5).astype(int)
    close(metrics.subset_accuracy(y, scores, sample_weight=w), skm.accuracy_score(y, predicted, sample_weight=w))
    per_example = (y == predicted).mean(axis=1)
    close(metrics.binary_accuracy(y, scores, sample_weight=w), np.sum(w * per_example) / w.sum())
    close(metrics.binary_accuracy(y, scores), 1 - skm.hamming_loss(y, predicted))


def test_binary_accuracy_by_hand_and_at_the_threshold():
    y = np.array([[1, 0, 1], [0, 0, 1]], np.float32)
    p = np.array([[0.9, 0.5, 0.2], [0.1, 0.7, 0.51]], np.float32)  # 0.5 is not > 0.5: predicted 0
    close(metrics.binary_accuracy(y, p), (2 / 3 + 2 / 3) / 2)
    close(metrics.binary_accuracy(y, p, threshold=0.95), (1 / 3 + 2 / 3) / 2)
    close(metrics.binary_accuracy(np.array([1, 0, 1]), np.array([[0.8], [0.3], [0.4]])), 2 / 3)


def test_keras_binary_accuracy_with_sample_weights():
    from tests.keras_reference import cases

    x, y, w, params = cases.multi_label()
    p = jax.nn.sigmoid(x @ params["kernel"] + params["bias"])
    close(metrics.binary_accuracy(y, p, sample_weight=w), KERAS_WEIGHTED_BINARY_ACCURACY, rtol=2e-6)


def test_accuracy_on_multi_hot_targets_stays_categorical_and_warns():
    y = np.array([[1, 0, 1], [0, 1, 1]], np.float32)
    p = np.array([[0.9, 0.2, 0.3], [0.1, 0.2, 0.8]], np.float32)
    with pytest.warns(UserWarning, match="multi-hot.*binary_accuracy"):
        value = metrics.accuracy(y, p)
    close(value, 0.5)  # argmax: [0 vs 0] right, [1 vs 2] wrong (Keras' categorical accuracy)


def test_binary_accuracy_on_sparse_integer_labels_is_refused():
    with pytest.raises(ValueError, match=r"binary_accuracy .*multi-hot.*shape \(3, 4\).*integer class labels of "
                                         r"shape \(3,\).*'accuracy'"):
        metrics.binary_accuracy(np.array([0, 3, 1]), np.full((3, 4), 0.25, np.float32))


def test_multilabel_bad_inputs():
    y = np.array([[1, 0], [0, 1]], np.float32)
    with pytest.raises(ValueError, match=r"y_true must hold binary labels in \{0, 1\}"):
        metrics.binary_accuracy(np.array([[2, 0], [0, 1]]), y)
    with pytest.raises(ValueError, match="average must be one of"):
        metrics.multilabel_f1(y, y, average="binary")
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(2,\)"):
        metrics.jaccard_score(y, y, sample_weight=np.ones(3, np.float32))
    with pytest.raises(ValueError, match=r"needs y_true with y_pred's shape \(2, 2\), got \(2, 3\)"):
        metrics.subset_accuracy(np.zeros((2, 3)), y)


def test_multilabel_metrics_agree_under_jit():
    rng = np.random.RandomState(6)
    y, scores = multi_hot(rng)
    w = weights(rng)
    for fn in (metrics.binary_accuracy, metrics.subset_accuracy, metrics.jaccard_score, metrics.multilabel_f1):
        close(jax.jit(lambda a, b, c: fn(a, b, sample_weight=c))(y, scores, w), fn(y, scores, sample_weight=w))
