"""Data sets by name: scikit-learn's bundled sets, synthetic toys, and local MNIST files.

`load(name, **options) -> Dataset(x_train, y_train, x_test, y_test, info)`. Arrays are NumPy:
float32 features, int32 class labels, float32 regression/forecasting targets; nothing is
downloaded (MNIST-like sets read a directory the caller names). Every loader that draws random
numbers takes `seed`, and the same seed gives bit-identical arrays.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from jdl._checks import check_choice, check_number, describe, lookup
from jdl.data.idx import IDX_FILES, find, read_idx, read_idx_split, read_npz

__all__ = ["Dataset", "load", "names", "read_idx", "register", "FASHION_MNIST_CLASSES"]

TASKS = ("classification", "regression", "forecasting")
SPLITS = ("all", "train", "test")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _sklearn() -> Any:
    """scikit-learn's `datasets`, imported on first use (with scipy it takes most of a second)."""
    from sklearn import datasets

    return datasets


class Dataset(NamedTuple):
    """A train/test pair of NumPy arrays plus `info` (name, task, num_classes, input_shape, ...)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict[str, Any]


Loader = Callable[..., Dataset]
_REGISTRY: dict[str, Loader] = {}


def register(name: str, loader: Loader, *, overwrite: bool = False) -> Loader:
    """Make `loader(**options) -> Dataset` available as `load(name, **options)`; returns `loader`."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {describe(name)}")
    if not callable(loader):
        raise TypeError(f"loader must be callable, got {describe(loader)}")
    key = name.lower()
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"a data set named {key!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[key] = loader
    return loader


def names() -> list[str]:
    """The registered data-set names, sorted."""
    return sorted(_REGISTRY)


def _check_options(name: str, loader: Loader, options: dict[str, Any]) -> None:
    """TypeError naming each option `loader` does not accept, and the ones it does."""
    params = inspect.signature(loader).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    keywordable = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    accepted = [p.name for p in params if p.kind in keywordable]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise TypeError(f"data set {name!r} got unknown option(s) {unknown}; it accepts {accepted}")


def loader(name: str) -> Loader:
    """The loader function registered under `name` (its keywords are the data set's options)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a data-set name (str), got {describe(name)}")
    return lookup("data set", name, _REGISTRY)


def load(name: str, **options: Any) -> Dataset:
    """Load a registered data set: `load("digits", test_size=0.2, seed=0)`; see `names()`."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a data-set name (str), got {describe(name)}")
    loader = lookup("data set", name, _REGISTRY)
    _check_options(name, loader, options)
    return loader(**options)


# -- shared validation ----------------------------------------------------------------------------


def _check_seed(seed: Any) -> None:
    check_number(seed, "seed", integer=True, nonnegative=True)


def _check_bool(value: Any, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")


def _check_fraction(value: Any, name: str) -> None:
    check_number(value, name)
    if not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")


def _test_count(test_size: Any, n: int) -> int:
    """Examples in the test part: ceil(test_size·n) for a fraction (as scikit-learn), or the count."""
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        if not 1 <= test_size <= n - 1:
            raise ValueError(f"test_size must be a fraction in (0, 1) or a count in [1, {n - 1}], got {test_size!r}")
        return int(test_size)
    _check_fraction(test_size, "test_size")
    count = math.ceil(test_size * n)
    if count >= n:
        raise ValueError(f"test_size={test_size!r} leaves no training examples out of {n}")
    return count


def _train_test(
    x: np.ndarray, y: np.ndarray, *, test_size: Any, seed: Any, stratify: Any, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Shuffled (stratified) train/test split by scikit-learn, with the source indices of each part."""
    _check_seed(seed)
    _check_bool(stratify, "stratify")
    n = len(x)
    n_test = _test_count(test_size, n)
    if stratify and num_classes is not None and min(n_test, n - n_test) < num_classes:
        raise ValueError(
            f"test_size={test_size!r} gives {n_test} test and {n - n_test} training examples; a stratified "
            f"split needs at least {num_classes} (one per class) in each"
        )
    index = np.arange(n)
    from sklearn.model_selection import train_test_split

    train_index, test_index = train_test_split(
        index, test_size=n_test, random_state=seed, shuffle=True, stratify=y if stratify else None
    )
    extra = {"train_index": train_index, "test_index": test_index, "seed": seed, "test_size": test_size}
    return x[train_index], y[train_index], x[test_index], y[test_index], extra


def _info(name: str, task: str, input_shape: tuple[int, ...], source: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "task": task, "input_shape": tuple(input_shape), "source": source, **extra}


# -- scikit-learn's bundled sets ------------------------------------------------------------------


def _load_digits(*, test_size: float = 0.2, seed: int = 0, stratify: bool = True, as_images: bool = False) -> Dataset:
    """8×8 handwritten digits (1797), pixels /16 in [0, 1]; x (n, 64), or (n, 8, 8, 1) with as_images."""
    _check_bool(as_images, "as_images")
    bunch = _sklearn().load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int32)
    x_tr, y_tr, x_te, y_te, extra = _train_test(x, y, test_size=test_size, seed=seed, stratify=stratify, num_classes=10)
    shape = (8, 8, 1) if as_images else (64,)
    info = _info(
        "digits", "classification", shape,
        "scikit-learn load_digits (UCI optical recognition of handwritten digits), pixels 0..16 divided by 16",
        num_classes=10, class_names=[str(c) for c in bunch.target_names],
        feature_names=list(bunch.feature_names), **extra,
    )
    if as_images:
        x_tr, x_te = x_tr.reshape(-1, *shape), x_te.reshape(-1, *shape)
    return Dataset(x_tr, y_tr, x_te, y_te, info)


def _from_sklearn(name: str, bunch: Any, source: str, test_size: Any, seed: Any, stratify: Any) -> Dataset:
    x = np.asarray(bunch.data, dtype=np.float32)
    y = np.asarray(bunch.target, dtype=np.int32)
    classes = [str(c) for c in bunch.target_names]
    x_tr, y_tr, x_te, y_te, extra = _train_test(
        x, y, test_size=test_size, seed=seed, stratify=stratify, num_classes=len(classes)
    )
    info = _info(
        name, "classification", x.shape[1:], source, num_classes=len(classes), class_names=classes,
        feature_names=[str(f) for f in bunch.feature_names], **extra,
    )
    return Dataset(x_tr, y_tr, x_te, y_te, info)


def _load_iris(*, test_size: float = 0.2, seed: int = 0, stratify: bool = True) -> Dataset:
    """Fisher's iris: 150 flowers, 4 measurements (cm), 3 species."""
    return _from_sklearn("iris", _sklearn().load_iris(), "scikit-learn load_iris", test_size, seed, stratify)


def _load_breast_cancer(*, test_size: float = 0.2, seed: int = 0, stratify: bool = True) -> Dataset:
    """Wisconsin diagnostic breast cancer: 569 tumours, 30 features, malignant (0) / benign (1)."""
    return _from_sklearn(
        "breast_cancer", _sklearn().load_breast_cancer(), "scikit-learn load_breast_cancer (UCI WDBC)",
        test_size, seed, stratify,
    )


# -- synthetic sets -------------------------------------------------------------------------------

_TRUTH_TABLE = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
_GATES = {
    "xor": np.array([0, 1, 1, 0], dtype=np.int32),
    "and": np.array([0, 0, 0, 1], dtype=np.int32),
    "or": np.array([0, 1, 1, 1], dtype=np.int32),
}


def _logic_gate(gate: str) -> Loader:
    def loader(*, repeat: int = 1, noise: float = 0.0, seed: int = 0) -> Dataset:
        check_number(repeat, "repeat", integer=True, positive=True)
        check_number(noise, "noise", nonnegative=True)
        _check_seed(seed)
        x = np.tile(_TRUTH_TABLE, (repeat, 1))
        if noise > 0:
            x = (x + noise * np.random.default_rng(seed).standard_normal(x.shape)).astype(np.float32)
        y = np.tile(_GATES[gate], repeat)
        info = _info(
            gate, "classification", (2,),
            f"the {gate.upper()} truth table; train = the 4 rows × repeat with N(0, noise²) jitter, test = the clean rows",
            num_classes=2, class_names=["0", "1"], feature_names=["x1", "x2"], repeat=repeat, noise=noise, seed=seed,
        )
        return Dataset(x, y, _TRUTH_TABLE.copy(), _GATES[gate].copy(), info)

    loader.__name__ = f"_load_{gate}"
    loader.__doc__ = f"The {gate.upper()} truth table (4 rows), repeated with Gaussian jitter for training."
    return loader


def _load_spirals(
    *, n: int = 1000, classes: int = 2, noise: float = 0.2, turns: float = 1.0, test_size: float = 0.2, seed: int = 0
) -> Dataset:
    """Interleaved Archimedean spirals: arm k at r = t, θ = 2π(turns·t + k/classes) + noise·N(0, 1), t ~ U(0, 1).

    `noise` jitters the angle (radians); x (n, 2) with radius ≤ 1, y the arm index.
    """
    check_number(classes, "classes", integer=True)
    if classes < 2:
        raise ValueError(f"classes must be >= 2, got {classes!r}")
    check_number(n, "n", integer=True)
    if n < 4 * classes:
        raise ValueError(f"n must be >= {4 * classes} (4 per class) for {classes} classes, got {n!r}")
    check_number(noise, "noise", nonnegative=True)
    check_number(turns, "turns", positive=True)
    _check_seed(seed)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes, dtype=np.int32), [n // classes + (k < n % classes) for k in range(classes)])
    t = rng.uniform(0.0, 1.0, n)
    theta = 2 * np.pi * (turns * t + y / classes) + noise * rng.standard_normal(n)
    x = np.stack([t * np.cos(theta), t * np.sin(theta)], axis=1).astype(np.float32)
    x_tr, y_tr, x_te, y_te, extra = _train_test(x, y, test_size=test_size, seed=seed, stratify=True, num_classes=classes)
    info = _info(
        "spirals", "classification", (2,), "synthetic: interleaved Archimedean spirals r = t, θ = 2π(turns·t + k/K)",
        num_classes=classes, class_names=[str(k) for k in range(classes)], feature_names=["x1", "x2"],
        noise=noise, turns=turns, **extra,
    )
    return Dataset(x_tr, y_tr, x_te, y_te, info)


def _load_moons(*, n: int = 1000, noise: float = 0.1, test_size: float = 0.2, seed: int = 0) -> Dataset:
    """Two interleaving half circles (scikit-learn make_moons) with N(0, noise²) jitter; x (n, 2)."""
    check_number(n, "n", integer=True)
    if n < 8:
        raise ValueError(f"n must be >= 8, got {n!r}")
    check_number(noise, "noise", nonnegative=True)
    _check_seed(seed)
    x, y = _sklearn().make_moons(n_samples=n, noise=noise, random_state=seed)
    x, y = x.astype(np.float32), y.astype(np.int32)
    x_tr, y_tr, x_te, y_te, extra = _train_test(x, y, test_size=test_size, seed=seed, stratify=True, num_classes=2)
    info = _info(
        "moons", "classification", (2,), "synthetic: scikit-learn make_moons",
        num_classes=2, class_names=["0", "1"], feature_names=["x1", "x2"], noise=noise, **extra,
    )
    return Dataset(x_tr, y_tr, x_te, y_te, info)


def _windows(series: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (input, target) pair: x = s[i : i+window], y = s[i+window : i+window+horizon]."""
    view = np.lib.stride_tricks.sliding_window_view(series, window + horizon)
    return view[:, :window, None].copy(), view[:, window:].copy()


def _load_sine(
    *,
    length: int = 1000,
    window: int = 20,
    horizon: int = 1,
    noise: float = 0.05,
    period: float = 50.0,
    test_size: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Noisy sine s_t = sin(2πt/period) + noise·N(0, 1) cut into forecasting windows.

    x (n, window, 1) = s[i : i+window], y (n, horizon) = s[i+window : i+window+horizon]. The series
    is split first, at b = length - round(test_size·length): training windows lie inside s[:b] and
    test windows inside s[b:], so no value crosses the boundary. info["series"] holds s.
    """
    check_number(window, "window", integer=True, positive=True)
    check_number(horizon, "horizon", integer=True, positive=True)
    check_number(length, "length", integer=True, positive=True)
    check_number(noise, "noise", nonnegative=True)
    check_number(period, "period", positive=True)
    _check_fraction(test_size, "test_size")
    _check_seed(seed)
    boundary = length - round(test_size * length)
    span = window + horizon
    if min(boundary, length - boundary) < span:
        raise ValueError(
            f"length={length} with test_size={test_size} gives parts of {boundary} and {length - boundary} "
            f"steps; each must hold at least window + horizon = {span} steps"
        )
    t = np.arange(length)
    rng = np.random.default_rng(seed)
    series = (np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(length)).astype(np.float32)
    x_tr, y_tr = _windows(series[:boundary], window, horizon)
    x_te, y_te = _windows(series[boundary:], window, horizon)
    info = _info(
        "sine", "forecasting", (window, 1), "synthetic: sin(2πt/period) + Gaussian noise, windowed",
        output_shape=(horizon,), series=series, boundary=boundary, window=window, horizon=horizon,
        period=period, noise=noise, seed=seed, test_size=test_size,
    )
    return Dataset(x_tr, y_tr, x_te, y_te, info)


# -- MNIST-like sets from local files -----------------------------------------------------------


def _mnist_like(
    name: str, npz_name: str, class_names: list[str], source: str, path: Any, split: Any, flatten: Any
) -> Dataset:
    if path is None:
        raise ValueError(
            f"{name} needs path=DIR, a local directory holding the IDX files "
            f"({', '.join(b + '[.gz]' for pair in IDX_FILES.values() for b in pair)}) or {npz_name}; "
            "jdl never downloads"
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a directory path (str or os.PathLike), got {describe(path)}")
    check_choice(split, "split", SPLITS)
    _check_bool(flatten, "flatten")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path {path!r} does not exist (expected a directory holding {name}'s files)")
    parts = ("train", "test") if split == "all" else (split,)
    num_classes = len(class_names)

    if os.path.isfile(path):
        pairs, origin = read_npz(path, parts, num_classes), path
    else:
        needed = [base for part in parts for base in IDX_FILES[part]]
        missing = [base for base in needed if find(path, base) is None]
        npz = os.path.join(path, npz_name)
        if not missing:
            pairs, origin = {part: read_idx_split(path, part, num_classes) for part in parts}, path
        elif os.path.isfile(npz):
            pairs, origin = read_npz(npz, parts, num_classes), npz
        else:
            hint = ""
            if split == "all" and all(find(path, base) for base in IDX_FILES["test"]):
                hint = "; the test files are there, so split='test' loads them alone"
            raise FileNotFoundError(
                f"{name}: no {missing[0]} or {missing[0]}.gz in directory {path!r} (nor {npz_name}); "
                f"split={split!r} needs {', '.join(needed)} (each plain or .gz){hint}"
            )

    image_shape = next(iter(pairs.values()))[0].shape[1:]
    for part, (images, _) in pairs.items():
        if images.shape[1:] != image_shape:
            raise ValueError(f"{origin}: train and test images differ in size: {image_shape} vs {images.shape[1:]}")
    trailing = (math.prod(image_shape),) if flatten else (*image_shape, 1)

    def arrays(part: str) -> tuple[np.ndarray, np.ndarray]:
        if part not in pairs:
            return np.zeros((0, *trailing), np.float32), np.zeros((0,), np.int32)
        images, labels = pairs[part]
        x = (images.astype(np.float32) / np.float32(255.0)).reshape(-1, *trailing)
        return x, labels.astype(np.int32)

    x_tr, y_tr = arrays("train")
    x_te, y_te = arrays("test")
    info = _info(
        name, "classification", trailing, f"{source}, read from {origin}", num_classes=num_classes,
        class_names=list(class_names), split=split,
    )
    return Dataset(x_tr, y_tr, x_te, y_te, info)


def _load_mnist(*, path: str | os.PathLike | None = None, split: str = "all", flatten: bool = False) -> Dataset:
    """MNIST from local IDX files (plain or .gz) or mnist.npz; images /255 in [0, 1], (n, 28, 28, 1)."""
    return _mnist_like(
        "mnist", "mnist.npz", [str(d) for d in range(10)], "MNIST handwritten digits (LeCun et al.)",
        path, split, flatten,
    )


def _load_fashion_mnist(*, path: str | os.PathLike | None = None, split: str = "all", flatten: bool = False) -> Dataset:
    """Fashion-MNIST from local IDX files (plain or .gz) or fashion-mnist.npz; images /255, (n, 28, 28, 1)."""
    return _mnist_like(
        "fashion_mnist", "fashion-mnist.npz", list(FASHION_MNIST_CLASSES),
        "Fashion-MNIST (Zalando Research)", path, split, flatten,
    )


for _name, _loader in {
    "digits": _load_digits,
    "iris": _load_iris,
    "breast_cancer": _load_breast_cancer,
    "xor": _logic_gate("xor"),
    "and": _logic_gate("and"),
    "or": _logic_gate("or"),
    "spirals": _load_spirals,
    "moons": _load_moons,
    "sine": _load_sine,
    "mnist": _load_mnist,
    "fashion_mnist": _load_fashion_mnist,
}.items():
    register(_name, _loader)
