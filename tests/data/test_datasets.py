import gzip
import math
import struct

import numpy as np
import pytest
from sklearn import datasets as skd

from jdl import data
from jdl.data import datasets as D

BUNDLED = ["digits", "iris", "breast_cancer", "xor", "and", "or", "spirals", "moons", "sine"]
RANDOM = {  # name -> options under which two seeds must give different arrays
    "digits": {}, "iris": {}, "breast_cancer": {}, "spirals": {}, "moons": {}, "sine": {},
    "xor": {"repeat": 3, "noise": 0.1},
}
TABLES = {"xor": lambda a, b: a ^ b, "and": lambda a, b: a & b, "or": lambda a, b: a | b}


def arrays(ds):
    return ds.x_train, ds.y_train, ds.x_test, ds.y_test


# -- registry --------------------------------------------------------------------------------------


def test_registry_lists_every_set():
    assert set(BUNDLED + ["mnist", "fashion_mnist"]) <= set(data.names())
    assert data.names() == sorted(data.names())


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="digits") as err:
        data.load("digitz")
    assert "Valid names" in str(err.value) and "spirals" in str(err.value)
    with pytest.raises(TypeError, match="name"):
        data.load(3)


def test_unknown_option_names_it_and_the_accepted_ones():
    with pytest.raises(TypeError, match="'foo'") as err:
        data.load("digits", foo=1)
    assert "test_size" in str(err.value) and "as_images" in str(err.value)
    with pytest.raises(TypeError, match="'window_size'"):
        data.load("sine", window_size=3)


def test_register_and_overwrite():
    def tiny(*, k=1):
        z = np.zeros((k, 1), np.float32)
        return data.Dataset(z, np.zeros(k, np.int32), z, np.zeros(k, np.int32), {"name": "tiny"})

    data.register("tiny_test_set", tiny)
    try:
        assert data.load("tiny_test_set", k=2).x_train.shape == (2, 1)
        with pytest.raises(ValueError, match="already registered"):
            data.register("tiny_test_set", tiny)
        with pytest.raises(TypeError, match="'j'"):
            data.load("tiny_test_set", j=2)
    finally:
        D._REGISTRY.pop("tiny_test_set")
    with pytest.raises(TypeError, match="loader"):
        data.register("x", 3)


# -- every bundled set -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUNDLED)
def test_shapes_dtypes_ranges_and_info(name):
    ds = data.load(name)
    info = ds.info
    assert isinstance(ds, tuple) and len(ds) == 5
    assert {"name", "task", "input_shape", "source"} <= set(info)
    assert info["name"] == name and info["task"] in D.TASKS
    for x in (ds.x_train, ds.x_test):
        assert isinstance(x, np.ndarray) and x.dtype == np.float32
        assert x.shape[1:] == info["input_shape"] and np.all(np.isfinite(x))
    assert len(ds.x_train) == len(ds.y_train) > 0 and len(ds.x_test) == len(ds.y_test) > 0
    if info["task"] == "classification":
        c = info["num_classes"]
        assert len(info["class_names"]) == c
        for y in (ds.y_train, ds.y_test):
            assert y.dtype == np.int32 and y.ndim == 1 and y.min() >= 0 and y.max() < c
        assert set(np.unique(ds.y_train)) == set(range(c))
    else:
        assert ds.y_train.dtype == np.float32 and ds.y_test.dtype == np.float32
    if "feature_names" in info:
        assert len(info["feature_names"]) == math.prod(info["input_shape"])


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_same_seed_bit_identical_other_seed_differs(name):
    a = data.load(name, seed=3, **RANDOM[name])
    b = data.load(name, seed=3, **RANDOM[name])
    c = data.load(name, seed=4, **RANDOM[name])
    for u, v in zip(arrays(a), arrays(b)):
        assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
    assert any(u.shape != w.shape or not np.array_equal(u, w) for u, w in zip(arrays(a), arrays(c)))


# -- scikit-learn sets -----------------------------------------------------------------------------


def test_digits_pixels_are_sklearn_over_16():
    ref = skd.load_digits()
    ds = data.load("digits")
    x_all = np.concatenate([ds.x_train, ds.x_test])
    assert x_all.min() == 0.0 and x_all.max() == 1.0
    index = np.concatenate([ds.info["train_index"], ds.info["test_index"]])
    assert np.array_equal(np.sort(index), np.arange(len(ref.data)))
    np.testing.assert_array_equal(x_all, (ref.data[index] / 16).astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([ds.y_train, ds.y_test]), ref.target[index])
    # independent of the recorded indices: the same multiset of (row, label)
    ours = np.column_stack([x_all * 16, np.concatenate([ds.y_train, ds.y_test])])
    theirs = np.column_stack([ref.data, ref.target])
    np.testing.assert_array_equal(np.unique(ours, axis=0), np.unique(theirs, axis=0))


def test_digits_as_images_is_nhwc_reshape():
    flat = data.load("digits", seed=1)
    img = data.load("digits", seed=1, as_images=True)
    assert img.x_train.shape[1:] == (8, 8, 1) and img.info["input_shape"] == (8, 8, 1)
    np.testing.assert_array_equal(img.x_train[:, :, :, 0].reshape(len(img.x_train), 64), flat.x_train)
    np.testing.assert_array_equal(img.y_test, flat.y_test)


@pytest.mark.parametrize("name", ["digits", "iris", "breast_cancer"])
def test_stratified_split_keeps_class_proportions(name):
    ds = data.load(name, test_size=0.25, seed=7)
    y = np.concatenate([ds.y_train, ds.y_test])
    n, n_test = len(y), len(ds.y_test)
    assert n_test == math.ceil(0.25 * n)
    for k in range(ds.info["num_classes"]):
        exact = np.sum(y == k) * n_test / n
        assert abs(np.sum(ds.y_test == k) - exact) <= 1


def test_test_size_as_count_and_bad_values():
    assert len(data.load("iris", test_size=30).y_test) == 30
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="test_size"):
            data.load("iris", test_size=bad)
    with pytest.raises(ValueError, match="test_size"):
        data.load("digits", test_size=5)  # fewer test examples than classes with stratify
    with pytest.raises(TypeError, match="seed"):
        data.load("iris", seed=1.5)
    with pytest.raises(TypeError, match="stratify"):
        data.load("iris", stratify="yes")


def test_unstratified_split_covers_everything():
    ds = data.load("breast_cancer", stratify=False, seed=2)
    assert len(ds.y_train) + len(ds.y_test) == 569
    index = np.concatenate([ds.info["train_index"], ds.info["test_index"]])
    assert np.array_equal(np.sort(index), np.arange(569))


# -- synthetic sets --------------------------------------------------------------------------------


@pytest.mark.parametrize("gate", sorted(TABLES))
def test_logic_gates_truth_tables(gate):
    ds = data.load(gate)
    rows = ds.x_test.astype(int)
    assert sorted(map(tuple, rows)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    np.testing.assert_array_equal(ds.y_test, [TABLES[gate](a, b) for a, b in rows])
    np.testing.assert_array_equal(ds.x_train, ds.x_test)

    noisy = data.load(gate, repeat=50, noise=0.1, seed=1)
    assert noisy.x_train.shape == (200, 2) and noisy.y_train.shape == (200,)
    clean = np.round(noisy.x_train).astype(int)
    np.testing.assert_array_equal(noisy.y_train, [TABLES[gate](a, b) for a, b in clean])
    jitter = noisy.x_train - clean
    assert 0.07 < jitter.std() < 0.13 and np.abs(jitter).max() < 0.5
    np.testing.assert_array_equal(noisy.x_test, ds.x_test)


def test_logic_gate_bad_options():
    with pytest.raises(ValueError, match="repeat"):
        data.load("xor", repeat=0)
    with pytest.raises(ValueError, match="noise"):
        data.load("xor", noise=-1.0)


@pytest.mark.parametrize("classes,turns", [(2, 1.0), (3, 0.5)])
def test_spirals_lie_on_their_arms(classes, turns):
    ds = data.load("spirals", n=301, classes=classes, noise=0.0, turns=turns)
    x = np.concatenate([ds.x_train, ds.x_test]).astype(np.float64)
    y = np.concatenate([ds.y_train, ds.y_test])
    assert len(y) == 301 and np.ptp(np.bincount(y)) <= 1
    r = np.hypot(x[:, 0], x[:, 1])
    assert r.max() <= 1.0 + 1e-6
    expected = 2 * np.pi * (turns * r + y / classes)
    gap = np.angle(np.exp(1j * (np.arctan2(x[:, 1], x[:, 0]) - expected)))
    assert np.abs(gap).max() < 1e-4
    noisy = data.load("spirals", n=300, classes=classes, noise=0.2, turns=turns)
    assert not np.allclose(noisy.x_train, data.load("spirals", n=300, classes=classes, noise=0.0, turns=turns).x_train)


def test_spirals_bad_options():
    with pytest.raises(ValueError, match="classes"):
        data.load("spirals", classes=1)
    with pytest.raises(ValueError, match="n must be"):
        data.load("spirals", n=5, classes=3)


def test_moons_are_sklearn_make_moons():
    ds = data.load("moons", n=200, noise=0.05, seed=5)
    x, y = skd.make_moons(n_samples=200, noise=0.05, random_state=5)
    ours = np.column_stack([np.concatenate([ds.x_train, ds.x_test]), np.concatenate([ds.y_train, ds.y_test])])
    theirs = np.column_stack([x.astype(np.float32), y])
    np.testing.assert_array_equal(np.unique(ours, axis=0), np.unique(theirs, axis=0))
    assert len(ds.y_test) == 40


@pytest.mark.parametrize("window,horizon", [(20, 1), (7, 3)])
def test_sine_windows_are_slices_of_the_series(window, horizon):
    length = 300
    ds = data.load("sine", length=length, window=window, horizon=horizon, noise=0.05, test_size=0.25, seed=2)
    s, b = ds.info["series"], ds.info["boundary"]
    assert s.shape == (length,) and b == length - round(0.25 * length)
    residual = s - np.sin(2 * np.pi * np.arange(length) / 50.0)
    assert 0.035 < residual.std() < 0.065
    assert ds.x_train.shape == (b - window - horizon + 1, window, 1)
    assert ds.y_train.shape == (b - window - horizon + 1, horizon)
    assert ds.x_test.shape == (length - b - window - horizon + 1, window, 1)
    for x, y, start in ((ds.x_train, ds.y_train, 0), (ds.x_test, ds.y_test, b)):
        for i in range(len(x)):
            np.testing.assert_array_equal(x[i, :, 0], s[start + i : start + i + window])
            np.testing.assert_array_equal(y[i], s[start + i + window : start + i + window + horizon])
    # every value a training window touches comes strictly before every value a test window touches
    last_train = len(ds.x_train) - 1 + window + horizon - 1
    assert last_train < b
    np.testing.assert_array_equal(ds.y_train[-1, -1], s[last_train])
    np.testing.assert_array_equal(ds.x_test[0, 0, 0], s[b])


def test_sine_bad_options():
    with pytest.raises(ValueError, match="window"):
        data.load("sine", length=50, window=20, test_size=0.2)
    with pytest.raises(ValueError, match="window"):
        data.load("sine", window=0)
    with pytest.raises(ValueError, match="test_size"):
        data.load("sine", test_size=1.2)


# -- MNIST-like files ------------------------------------------------------------------------------


def write_idx(path, array, *, type_code=0x08, gz=False):
    dtype = {0x08: np.uint8, 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + np.asarray(array).astype(dtype).tobytes()
    if gz:
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def fake_mnist(rng, n, size=(28, 28)):
    return rng.integers(0, 256, (n, *size)).astype(np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_split(directory, prefix, images, labels, gz):
    suffix = ".gz" if gz else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, gz=gz)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz=gz)


@pytest.mark.parametrize("gz_train,gz_test", [(False, False), (True, True), (True, False)])
def test_idx_files_read_back_exactly(tmp_path, gz_train, gz_test):
    rng = np.random.default_rng(0)
    (xtr, ytr), (xte, yte) = fake_mnist(rng, 5), fake_mnist(rng, 3)
    write_split(tmp_path, "train", xtr, ytr, gz_train)
    write_split(tmp_path, "t10k", xte, yte, gz_test)
    ds = data.load("mnist", path=tmp_path)
    assert ds.x_train.shape == (5, 28, 28, 1) and ds.x_test.shape == (3, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(np.round(ds.x_train[..., 0] * 255).astype(np.uint8), xtr)
    np.testing.assert_array_equal(ds.x_test[..., 0], xte / np.float32(255))
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.y_test, yte)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.info["num_classes"] == 10 and ds.info["input_shape"] == (28, 28, 1)
    flat = data.load("mnist", path=str(tmp_path), flatten=True)
    assert flat.x_train.shape == (5, 784) and flat.info["input_shape"] == (784,)
    np.testing.assert_array_equal(flat.x_train, ds.x_train.reshape(5, 784))


def test_read_idx_other_types(tmp_path):
    a = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "a", a, type_code=0x0B)), a)
    f = np.linspace(-1, 1, 10, dtype=np.float32)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "f.gz", f, type_code=0x0D, gz=True)), f)


def test_npz_is_read_back_exactly(tmp_path):
    rng = np.random.default_rng(1)
    (xtr, ytr), (xte, yte) = fake_mnist(rng, 4), fake_mnist(rng, 2)
    np.savez(tmp_path / "fashion-mnist.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    ds = data.load("fashion_mnist", path=tmp_path)
    np.testing.assert_array_equal(ds.x_train[..., 0], xtr / np.float32(255))
    np.testing.assert_array_equal(ds.y_test, yte)
    assert ds.info["class_names"][0] == "T-shirt/top" and ds.info["class_names"][9] == "Ankle boot"
    assert len(ds.info["class_names"]) == 10
    direct = data.load("fashion_mnist", path=tmp_path / "fashion-mnist.npz", split="test")
    np.testing.assert_array_equal(direct.x_test, ds.x_test)
    np.savez(tmp_path / "mnist.npz", x_train=xtr, y_train=ytr)
    with pytest.raises(ValueError, match="x_test"):
        data.load("mnist", path=tmp_path)


def test_missing_file_names_the_file_both_spellings_and_directory(tmp_path):
    rng = np.random.default_rng(2)
    write_split(tmp_path, "t10k", *fake_mnist(rng, 2), gz=True)
    with pytest.raises(FileNotFoundError) as err:
        data.load("mnist", path=tmp_path)
    message = str(err.value)
    assert "train-images-idx3-ubyte or train-images-idx3-ubyte.gz" in message
    assert str(tmp_path) in message and "split='test'" in message


def test_split_test_on_a_directory_with_only_test_files(tmp_path):
    rng = np.random.default_rng(3)
    xte, yte = fake_mnist(rng, 3)
    write_split(tmp_path, "t10k", xte, yte, gz=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 7).astype(np.uint8), gz=True)
    ds = data.load("mnist", path=tmp_path, split="test")
    assert ds.x_train.shape == (0, 28, 28, 1) and ds.x_train.dtype == np.float32
    assert ds.y_train.shape == (0,) and ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(ds.y_test, yte)
    assert data.load("mnist", path=tmp_path, split="test", flatten=True).x_train.shape == (0, 784)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load("mnist", path=tmp_path, split="train")


def test_truncated_and_corrupt_files_name_the_file(tmp_path):
    rng = np.random.default_rng(4)
    xte, yte = fake_mnist(rng, 3)
    write_split(tmp_path, "t10k", xte, yte, gz=False)
    images = tmp_path / "t10k-images-idx3-ubyte"
    whole = images.read_bytes()
    images.write_bytes(whole[:-10])
    with pytest.raises(ValueError, match="truncated") as err:
        data.load("mnist", path=tmp_path, split="test")
    assert str(images) in str(err.value)
    images.write_bytes(b"\x00\x00\x08\x01" + whole[4:])  # labels' magic on an image file
    with pytest.raises(ValueError, match="magic") as err:
        data.load("mnist", path=tmp_path, split="test")
    assert str(images) in str(err.value) and "0x00000803" in str(err.value)
    images.write_bytes(b"GIF89a" + whole)
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(images)
    gz = tmp_path / "t10k-labels-idx1-ubyte"
    gz.unlink()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(8))[:-6])
    images.write_bytes(whole)
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        data.load("mnist", path=tmp_path, split="test")


def test_mismatched_counts_and_bad_labels(tmp_path):
    rng = np.random.default_rng(5)
    xte, _ = fake_mnist(rng, 3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", xte)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2], np.uint8))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        data.load("mnist", path=tmp_path, split="test")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([1, 2, 12], np.uint8))
    with pytest.raises(ValueError, match="labels must be in"):
        data.load("mnist", path=tmp_path, split="test")


def test_mnist_path_validation(tmp_path):
    with pytest.raises(ValueError, match="path"):
        data.load("mnist")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("fashion_mnist", path=tmp_path / "nowhere")
    with pytest.raises(TypeError, match="path"):
        data.load("mnist", path=3)
    with pytest.raises(ValueError, match="split"):
        data.load("mnist", path=tmp_path, split="validation")
