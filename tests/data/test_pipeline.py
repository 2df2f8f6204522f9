import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder, OneHotEncoder

from jdl import data


def parts_index(parts):
    """The original row numbers in each part, read back from x = arange-coded rows."""
    return [np.asarray(p.x[:, 0]).astype(int) for p in parts]


def coded(n, classes=None):
    x = np.stack([np.arange(n), np.arange(n) * 10], axis=1).astype(np.float32)
    y = np.arange(n) % 3 if classes is None else classes
    return x, y


# -- split -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n,fractions", [(101, (0.7, 0.15, 0.15)), (10, (0.5, 0.5)), (57, (0.1, 0.2, 0.3, 0.25, 0.15)), (9, (1.0,))])
def test_fractions_respected_and_parts_partition(n, fractions):
    x, y = coded(n)
    parts = data.split(x, y, fractions, seed=1)
    assert len(parts) == len(fractions) and all(isinstance(p, data.Split) for p in parts)
    sizes = [len(p.x) for p in parts]
    assert sum(sizes) == n
    for size, f in zip(sizes, fractions):
        assert 0 < size and abs(size - f * n) < 1
    index = parts_index(parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(index)), np.arange(n))
    for p, i in zip(parts, index):
        np.testing.assert_array_equal(p.y, y[i])
        np.testing.assert_array_equal(p.x[:, 1], 10 * i)


def test_split_is_reproducible_and_seed_dependent():
    x, y = coded(50)
    a = parts_index(data.split(x, y, seed=4))
    b = parts_index(data.split(x, y, seed=4))
    c = parts_index(data.split(x, y, seed=5))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, w) for u, w in zip(a, c))


def test_no_shuffle_gives_contiguous_parts():
    x, y = coded(20)
    index = parts_index(data.split(x, y, (0.5, 0.25, 0.25), shuffle=False))
    np.testing.assert_array_equal(np.concatenate(index), np.arange(20))
    assert [len(i) for i in index] == [10, 5, 5]


@pytest.mark.parametrize("fractions", [(0.7, 0.15, 0.15), (0.6, 0.4), (0.5, 0.2, 0.2, 0.1)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_stratified_parts_keep_class_proportions(fractions, shuffle):
    labels = np.repeat(np.arange(5), [50, 31, 17, 9, 3])
    labels = np.random.default_rng(0).permutation(labels)
    x, _ = coded(len(labels))
    parts = data.split(x, labels, fractions, seed=2, stratify=True, shuffle=shuffle)
    n = len(labels)
    counts = np.bincount(labels)
    for p, f in zip(parts, fractions):
        assert abs(len(p.y) - f * n) < 1
        share = np.bincount(p.y, minlength=5)
        assert np.all(np.abs(share - counts * len(p.y) / n) < 1)
        assert np.all(np.abs(share - counts * f) < 1 + 1e-9 + counts / n)
        np.testing.assert_array_equal(p.y, labels[np.asarray(p.x[:, 0]).astype(int)])
    assert sum(len(p.y) for p in parts) == n


def test_stratified_two_way_split_matches_sklearn_counts_within_one():
    labels = np.repeat(np.arange(4), [40, 25, 20, 15])
    x, _ = coded(100)
    train, test = data.split(x, labels, (0.8, 0.2), stratify=True)
    _, _, _, y_te = train_test_split(x, labels, test_size=0.2, stratify=labels, random_state=0)
    assert np.all(np.abs(np.bincount(test.y, minlength=4) - np.bincount(y_te, minlength=4)) <= 1)


def test_stratify_with_explicit_labels_and_one_hot_y():
    labels = np.repeat([0, 1], [30, 10])
    x, _ = coded(40)
    onehot = np.eye(2)[labels]
    a = data.split(x, onehot, (0.5, 0.5), stratify=True)
    b = data.split(x, None, (0.5, 0.5), stratify=labels)
    for p, q in zip(a, b):
        assert q.y is None
        np.testing.assert_array_equal(p.x, q.x)
        assert np.bincount(p.y.argmax(1)).tolist() == [15, 5]


def test_pytree_x_is_split_alike():
    n = 30
    x = {"image": np.arange(n * 4).reshape(n, 2, 2), "meta": (np.arange(n), jnp.arange(n) * 2)}
    y = np.arange(n)
    parts = data.split(x, y, (0.6, 0.4), seed=3)
    for p in parts:
        rows = p.x["image"][:, 0, 0] // 4
        np.testing.assert_array_equal(rows, p.y)
        np.testing.assert_array_equal(p.x["meta"][0], p.y)
        assert isinstance(p.x["meta"][1], jax.Array)
        np.testing.assert_array_equal(np.asarray(p.x["meta"][1]), 2 * p.y)
    tuple_parts = data.split((y, y * 3), y, (0.5, 0.5))
    for p in tuple_parts:
        np.testing.assert_array_equal(p.x[1], 3 * p.x[0])


def test_split_bad_arguments_name_them():
    x, y = coded(10)
    with pytest.raises(ValueError, match="fractions must sum to 1"):
        data.split(x, y, (0.5, 0.4))
    with pytest.raises(ValueError, match=r"fractions\[1\]"):
        data.split(x, y, (1.2, -0.2))
    with pytest.raises(ValueError, match="empty"):
        data.split(x, y, (0.9, 0.05, 0.05))
    with pytest.raises(TypeError, match="fractions"):
        data.split(x, y, 0.5)
    with pytest.raises(ValueError, match="x and y") as err:
        data.split(x, y[:9])
    assert "10" in str(err.value) and "9" in str(err.value)
    with pytest.raises(ValueError, match=r"x\['b'\]"):
        data.split({"a": x, "b": x[:3]}, None)
    with pytest.raises(TypeError, match="seed"):
        data.split(x, y, seed=-1.5)
    with pytest.raises(ValueError, match="stratify"):
        data.split(x, y, stratify=np.zeros(3))


# -- Standardizer ----------------------------------------------------------------------------------


def test_standardizer_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal([5.0, -3.0, 0.0], [2.0, 0.5, 10.0], size=(500, 3)).astype(np.float32)
    test = train[:200] + np.float32(100.0)
    s = data.Standardizer.fit(train)
    np.testing.assert_allclose(s.mean, train.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(s.std, train.astype(np.float64).std(0), rtol=1e-6)
    z_train, z_test = s(train), s(test)
    assert z_train.dtype == np.float32 and isinstance(z_train, np.ndarray)
    np.testing.assert_allclose(z_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z_train.std(0), 1, atol=1e-5)
    np.testing.assert_allclose(z_test, (test - s.mean) / s.std, rtol=1e-6)
    np.testing.assert_allclose(z_test.mean(0) - z_train[:200].mean(0), 100.0 / s.std, rtol=1e-4)
    np.testing.assert_allclose(s.inverse(z_test), test, rtol=1e-5, atol=1e-4)


def test_standardizer_constant_feature_maps_to_zero():
    x = np.column_stack([np.full(10, 3.0), np.arange(10.0)])
    s = data.Standardizer.fit(x)
    assert s.std[0] == 1.0
    z = s(x)
    assert np.all(np.isfinite(z)) and np.all(z[:, 0] == 0)


def test_standardizer_on_jax_arrays_and_under_jit():
    x = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    s = data.Standardizer.fit(jnp.asarray(x))
    out = jax.jit(s)(jnp.asarray(x))
    assert isinstance(out, jax.Array) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, s(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jax.jit(s.inverse)(out), x, rtol=1e-5, atol=1e-5)


def test_standardizer_per_channel_images():
    rng = np.random.default_rng(2)
    x = rng.normal([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], size=(8, 5, 5, 3)).astype(np.float32)
    s = data.Standardizer.fit(x, axis=(0, 1, 2))
    assert s.mean.shape == (3,)
    np.testing.assert_allclose(s(x).reshape(-1, 3).std(0), 1, atol=1e-5)


def test_standardizer_errors():
    s = data.Standardizer.fit(np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"trailing shape \(4,\)") as err:
        s(np.ones((5, 3)))
    assert "(5, 3)" in str(err.value)
    with pytest.raises(ValueError, match="axis"):
        data.Standardizer.fit(np.ones((5, 4, 2)), axis=1)
    with pytest.raises(TypeError, match="x"):
        data.Standardizer.fit("abc")
    with pytest.raises(ValueError, match="std"):
        data.Standardizer(mean=np.zeros(2), std=np.array([1.0, 0.0]))


# -- labels ----------------------------------------------------------------------------------------


def test_one_hot_matches_sklearn():
    y = np.array([2, 0, 1, 2, 4])
    ref = OneHotEncoder(categories=[list(range(5))], sparse_output=False).fit_transform(y[:, None])
    out = data.one_hot(y)
    assert out.dtype == np.float32 and out.shape == (5, 5)
    np.testing.assert_array_equal(out, ref)
    wide = data.one_hot(y, num_classes=7)
    assert wide.shape == (5, 7) and np.all(wide[:, 5:] == 0)
    jout = jax.jit(lambda v: data.one_hot(v, 5))(jnp.asarray(y))
    assert isinstance(jout, jax.Array) and jout.dtype == jnp.float32
    np.testing.assert_array_equal(jout, ref)


def test_one_hot_errors():
    with pytest.raises(ValueError, match="y must be integer class labels in"):
        data.one_hot([0, 3], num_classes=3)
    with pytest.raises(ValueError, match="y must be a 1-D"):
        data.one_hot(np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="integer class labels"):
        data.one_hot([0.5, 1.0])


@pytest.mark.parametrize("values", [["cat", "dog", "ant", "dog"], [10, -2, 7, 10, 10], [0.5, 0.25, 0.5]])
def test_label_encode_matches_sklearn(values):
    codes, classes = data.label_encode(values)
    ref = LabelEncoder().fit(values)
    assert codes.dtype == np.int32
    np.testing.assert_array_equal(codes, ref.transform(values))
    np.testing.assert_array_equal(classes, ref.classes_)
    np.testing.assert_array_equal(classes[codes], np.asarray(values))


def test_label_encode_errors():
    with pytest.raises(ValueError, match="values must be 1-D"):
        data.label_encode(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="values"):
        data.label_encode("abc")
    with pytest.raises(ValueError, match="NaN"):
        data.label_encode([1.0, np.nan])


# -- batch_indices ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n,batch_size", [(10, 3), (12, 4), (7, 10), (1, 1)])
def test_batch_plan_covers_every_index_once(n, batch_size):
    index, mask = data.batch_indices(n, batch_size, seed=1, epoch=0)
    batches = -(-n // batch_size)
    assert index.shape == mask.shape == (batches, batch_size)
    assert index.dtype == jnp.int32 and mask.dtype == jnp.bool_
    index, mask = np.asarray(index), np.asarray(mask)
    np.testing.assert_array_equal(np.sort(index[mask]), np.arange(n))
    assert mask.sum() == n and np.all((index >= 0) & (index < n))
    assert mask.reshape(-1).tolist() == sorted(mask.reshape(-1).tolist(), reverse=True)


def test_batch_plan_epochs_differ_and_repeat():
    a = np.asarray(data.batch_indices(50, 8, seed=0, epoch=0)[0])
    b = np.asarray(data.batch_indices(50, 8, seed=0, epoch=1)[0])
    c = np.asarray(data.batch_indices(50, 8, seed=0, epoch=1)[0])
    d = np.asarray(data.batch_indices(50, 8, seed=1, epoch=1)[0])
    assert not np.array_equal(a, b) and not np.array_equal(b, d)
    np.testing.assert_array_equal(b, c)


def test_batch_plan_drop_remainder_full_batch_and_order():
    index, mask = data.batch_indices(10, 3, drop_remainder=True)
    assert index.shape == (3, 3) and bool(mask.all())
    assert len(set(np.asarray(index).ravel().tolist())) == 9
    full, full_mask = data.batch_indices(6, None, seed=3)
    assert full.shape == (1, 6) and bool(full_mask.all())
    assert sorted(np.asarray(full)[0].tolist()) == list(range(6))
    ordered, _ = data.batch_indices(5, 2, shuffle=False)
    np.testing.assert_array_equal(np.asarray(ordered)[:2], [[0, 1], [2, 3]])


def test_batch_plan_under_jit_with_traced_epoch():
    plan = jax.jit(lambda seed, epoch: data.batch_indices(9, 4, seed=seed, epoch=epoch))
    for epoch in (0, 3):
        got = plan(jnp.int32(2), jnp.int32(epoch))
        want = data.batch_indices(9, 4, seed=2, epoch=epoch)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_batch_plan_errors():
    with pytest.raises(ValueError, match="batch_size"):
        data.batch_indices(10, 0)
    with pytest.raises(ValueError, match="batch_size"):
        data.batch_indices(3, 5, drop_remainder=True)
    with pytest.raises(ValueError, match="n must be > 0"):
        data.batch_indices(0, 2)
    with pytest.raises(TypeError, match="epoch"):
        data.batch_indices(10, 2, epoch=1.5)
