"""Preparing arrays for training: splits, standardization, label encodings and epoch batch plans.

NumPy in, NumPy out; JAX arrays in, JAX arrays out (`Standardizer.__call__` and `one_hot` also
run under `jax.jit`). Random choices take one integer `seed`; the same seed gives the same result.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdl.data.batching import BatchPlan
from jdl._checks import as_array, check_int_range, check_number, describe, is_concrete

__all__ = ["Split", "Standardizer", "batch_indices", "label_encode", "one_hot", "split"]


def _check_bool(value: Any, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")


def _check_seed(seed: Any) -> None:
    check_number(seed, "seed", integer=True, nonnegative=True)


def _numeric_numpy(x: Any, name: str) -> np.ndarray:
    """`x` as a concrete numeric NumPy array; TypeError naming `name` otherwise."""
    if not is_concrete(x):
        raise TypeError(f"{name} must be a concrete array (not traced inside jax.jit), got {describe(x)}")
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a numeric array, got {describe(x)}")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array, got {describe(x)}") from err
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got an array of dtype {arr.dtype}")
    return arr


# -- split -----------------------------------------------------------------------------------------


class Split(NamedTuple):
    """One part of a split: `x` and `y` (each an array or a pytree of arrays), first axis = examples."""

    x: Any
    y: Any


def _leaves(tree: Any, name: str) -> tuple[list[tuple[str, Any]], Any]:
    """The array leaves of `tree` with printable names, and its treedef; lists count as arrays."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda v: isinstance(v, list))
    if not flat:
        raise ValueError(f"{name} must hold at least one array, got {describe(tree)}")
    named = []
    for path, leaf in flat:
        label = name + jax.tree_util.keystr(path)
        if isinstance(leaf, (list, tuple)) or not hasattr(leaf, "shape"):
            leaf = _numeric_numpy(leaf, label) if not isinstance(leaf, list) else np.asarray(leaf)
        if leaf.ndim == 0:
            raise ValueError(f"{label} must have a first (example) axis, got a scalar {describe(leaf)}")
        named.append((label, leaf))
    return named, treedef


def _part_sizes(fractions: Any, n: int) -> list[int]:
    """Sizes summing to n, each floor(f·n) plus one for the largest remainders (Hamilton)."""
    if isinstance(fractions, (str, bytes)) or not isinstance(fractions, Sequence) or not fractions:
        raise TypeError(f"fractions must be a non-empty sequence of numbers, got {describe(fractions)}")
    for i, f in enumerate(fractions):
        check_number(f, f"fractions[{i}]", positive=True)
    total = float(sum(fractions))
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1 (within 1e-6), got {list(fractions)} summing to {total!r}")
    exact = [f / total * n for f in fractions]
    sizes = [math.floor(e) for e in exact]
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i] - exact[i], i))
    for i in order[: n - sum(sizes)]:
        sizes[i] += 1
    empty = [i for i, s in enumerate(sizes) if s == 0]
    if empty:
        raise ValueError(
            f"fractions {list(fractions)} leave part(s) {empty} empty with {n} examples (sizes {sizes}); "
            "use fewer parts, larger fractions or more data"
        )
    return sizes


def _bumps(allowed: np.ndarray, row_need: np.ndarray, col_need: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """A 0/1 matrix on `allowed` cells with the given row and column sums (bipartite b-matching).

    Augmenting paths from each row; cells with higher `priority` are tried first.
    """
    rows, cols = allowed.shape
    taken = np.zeros_like(allowed, dtype=bool)
    col_left = col_need.astype(int).copy()
    order = [list(np.argsort(-priority[r], kind="stable")) for r in range(rows)]

    def augment(r: int, seen: set[int]) -> bool:
        for c in order[r]:
            if not allowed[r, c] or taken[r, c] or c in seen:
                continue
            seen.add(c)
            if col_left[c] > 0:
                col_left[c] -= 1
                taken[r, c] = True
                return True
            for other in np.flatnonzero(taken[:, c]):
                if augment(int(other), seen):
                    taken[other, c] = False
                    taken[r, c] = True
                    return True
        return False

    for r in np.argsort(-row_need, kind="stable"):
        for _ in range(int(row_need[r])):
            if not augment(int(r), set()):
                raise RuntimeError("stratified allocation failed; this is a bug in jdl.data.split")
    return taken


def _stratified_counts(class_sizes: np.ndarray, part_sizes: list[int]) -> np.ndarray:
    """Counts c[k, p] with row sums = class sizes, column sums = part sizes, |c - m_k·s_p/n| < 1."""
    m = class_sizes.astype(np.int64)[:, None]
    s = np.asarray(part_sizes, dtype=np.int64)[None, :]
    n = int(class_sizes.sum())
    product = m * s
    floor, remainder = product // n, product % n
    row_need = class_sizes - floor.sum(axis=1)
    col_need = np.asarray(part_sizes) - floor.sum(axis=0)
    return floor + _bumps(remainder > 0, row_need, col_need, remainder)


def _stratum_labels(stratify: Any, y_leaves: list[tuple[str, Any]] | None, n: int) -> np.ndarray:
    if stratify is True:
        if y_leaves is None or len(y_leaves) != 1:
            raise ValueError("stratify=True needs y to be one array of class labels; pass stratify=labels otherwise")
        name, labels = y_leaves[0]
    else:
        name, labels = "stratify", stratify
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    elif labels.ndim == 2 and labels.dtype.kind in "biuf":
        labels = labels.argmax(axis=1)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(
            f"{name} must hold one class label per example, shape ({n},) (or one-hot ({n}, C)), "
            f"got shape {labels.shape}"
        )
    return labels


def split(
    x: Any,
    y: Any,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    *,
    seed: int = 0,
    shuffle: bool = True,
    stratify: Any = False,
) -> tuple[Split, ...]:
    """Split examples into parts of sizes ≈ fractions·n: `train, dev, test = split(x, y)`.

    x, y: arrays (or pytrees of arrays, or y=None) sharing the first axis n. Part sizes are
    floor(fᵢ·n) plus one for the largest remainders. stratify=True (or an (n,) label array) gives
    each part every class's share to within one example, |c_kp - n_k·fₚ| < 1. shuffle=False keeps
    the original order (contiguous parts when not stratified).
    """
    x_leaves, x_def = _leaves(x, "x")
    y_leaves, y_def = _leaves(y, "y") if y is not None else (None, None)
    _check_seed(seed)
    _check_bool(shuffle, "shuffle")
    if not isinstance(stratify, (bool, np.bool_)) and not hasattr(stratify, "__len__"):
        raise TypeError(f"stratify must be True, False or an array of class labels, got {describe(stratify)}")
    leaves = x_leaves + (y_leaves or [])
    n = leaves[0][1].shape[0]
    for name, leaf in leaves:
        if leaf.shape[0] != n:
            lengths = ", ".join(f"{nm} {lf.shape[0]}" for nm, lf in leaves)
            raise ValueError(f"x and y must have the same number of examples (first axis), got {lengths}")
    sizes = _part_sizes(fractions, n)
    rng = np.random.default_rng(seed)

    if stratify is False or stratify is np.False_:
        order = rng.permutation(n) if shuffle else np.arange(n)
        parts = np.split(order, np.cumsum(sizes)[:-1])
    else:
        labels = _stratum_labels(stratify, y_leaves, n)
        _, codes = np.unique(labels, return_inverse=True)
        codes = codes.reshape(-1)
        members = [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]
        if shuffle:
            members = [rng.permutation(m) for m in members]
        counts = _stratified_counts(np.array([len(m) for m in members]), sizes)
        bounds = np.concatenate([np.zeros((len(members), 1), int), np.cumsum(counts, axis=1)], axis=1)
        parts = []
        for p in range(len(sizes)):
            index = np.concatenate([m[bounds[k, p] : bounds[k, p + 1]] for k, m in enumerate(members)])
            parts.append(rng.permutation(index) if shuffle else np.sort(index))

    def take(leaf: Any, index: np.ndarray) -> Any:
        return leaf[jnp.asarray(index)] if isinstance(leaf, jax.Array) else leaf[index]

    out = []
    for index in parts:
        px = jax.tree_util.tree_unflatten(x_def, [take(leaf, index) for _, leaf in x_leaves])
        py = None if y_leaves is None else jax.tree_util.tree_unflatten(y_def, [take(leaf, index) for _, leaf in y_leaves])
        out.append(Split(px, py))
    return tuple(out)


# -- standardization -------------------------------------------------------------------------------


def _stat_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else axis
    if not isinstance(axes, tuple) or not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"axis must be an int or a tuple of ints, got {describe(axis)}")
    normalized = tuple(sorted(a % ndim if -ndim <= a < ndim else a for a in axes))
    if normalized != tuple(range(len(axes))) or len(axes) >= ndim:
        raise ValueError(
            f"axis must be the leading axes 0..k-1 of x (k < x.ndim = {ndim}), e.g. 0 for (n, features) "
            f"or (0, 1, 2) for per-channel NHWC statistics, got {axis!r}"
        )
    return normalized


@dataclasses.dataclass(frozen=True, eq=False)
class Standardizer:
    """z = (x - mean) / std with statistics of the training data; `inverse(z)` = z·std + mean.

    mean, std: NumPy arrays of the trailing (feature) shape of x. Fit on the training part only and
    apply the same instance to dev and test data. Zero-variance features get std = 1 (they map to 0).
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        mean = _numeric_numpy(self.mean, "mean")
        std = _numeric_numpy(self.std, "std")
        if mean.shape != std.shape:
            raise ValueError(f"mean and std must have the same shape, got {mean.shape} and {std.shape}")
        if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or np.any(std <= 0):
            raise ValueError("mean must be finite and std finite and > 0")
        dtype = mean.dtype if mean.dtype.kind == "f" else np.dtype(np.float32)
        object.__setattr__(self, "mean", mean.astype(dtype))
        object.__setattr__(self, "std", std.astype(dtype))

    @classmethod
    def fit(cls, x: Any, axis: int | tuple[int, ...] = 0, epsilon: float = 1e-8) -> Standardizer:
        """Mean and population std of x over `axis` (the leading example axes); std < epsilon -> 1."""
        data = _numeric_numpy(x, "x")
        if data.ndim == 0 or data.shape[0] == 0:
            raise ValueError(f"x must hold at least one example, got shape {data.shape}")
        axes = _stat_axes(axis, data.ndim)
        check_number(epsilon, "epsilon", nonnegative=True)
        wide = data.astype(np.float64)
        mean = wide.mean(axis=axes)
        std = wide.std(axis=axes)
        if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)):
            raise ValueError("x must be finite, got NaN or infinite values")
        std = np.where(std < epsilon, 1.0, std)
        dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float32)
        return cls(mean.astype(dtype), std.astype(dtype))

    def _check(self, x: Any, name: str) -> Any:
        if not (isinstance(x, jax.Array) or hasattr(x, "shape")):
            x = _numeric_numpy(x, name)
        trailing = self.mean.shape
        if x.ndim < len(trailing) or tuple(x.shape[x.ndim - len(trailing):]) != trailing:
            raise ValueError(
                f"{name} must have trailing shape {trailing} (the shape this Standardizer was fit on), "
                f"got shape {tuple(x.shape)}"
            )
        if np.dtype(x.dtype).kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got {describe(x)}")
        return x

    def __call__(self, x: Any) -> Any:
        """(x - mean) / std; shape (..., *mean.shape) preserved."""
        x = self._check(x, "x")
        if isinstance(x, jax.Array):
            dtype = x.dtype if x.dtype.kind == "f" else jnp.result_type(float)
            return (x.astype(dtype) - jnp.asarray(self.mean, dtype)) / jnp.asarray(self.std, dtype)
        x = np.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else self.mean.dtype
        return ((x.astype(dtype) - self.mean) / self.std).astype(dtype)

    def inverse(self, z: Any) -> Any:
        """z·std + mean: back to the original units."""
        z = self._check(z, "z")
        if isinstance(z, jax.Array):
            dtype = z.dtype if z.dtype.kind == "f" else jnp.result_type(float)
            return z.astype(dtype) * jnp.asarray(self.std, dtype) + jnp.asarray(self.mean, dtype)
        z = np.asarray(z)
        dtype = z.dtype if z.dtype.kind == "f" else self.mean.dtype
        return (z.astype(dtype) * self.std + self.mean).astype(dtype)


# -- labels ----------------------------------------------------------------------------------------


def one_hot(y: Any, num_classes: int | None = None) -> Any:
    """Integer labels (n,) -> float32 one-hot rows (n, C); C = max(y) + 1 when num_classes is None."""
    labels = as_array(y, "y", dtype_kind="int")
    if labels.ndim != 1:
        raise ValueError(f"y must be a 1-D array of class labels, shape (n,), got shape {tuple(labels.shape)}")
    if num_classes is None:
        if not is_concrete(labels):
            raise ValueError("num_classes must be given when y is traced inside jax.jit")
        if labels.size == 0:
            raise ValueError("num_classes must be given when y is empty")
        num_classes = int(labels.max()) + 1
    check_number(num_classes, "num_classes", integer=True, positive=True)
    check_int_range(labels, "y", num_classes)
    if isinstance(y, jax.Array):
        return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    return np.eye(num_classes, dtype=np.float32)[np.asarray(labels)]


def label_encode(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Codes int32 (n,) and sorted unique classes, so that classes[codes] == values (LabelEncoder)."""
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"values must be a 1-D array-like of labels, got {describe(values)}")
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-D, shape (n,), got shape {arr.shape}")
    if arr.dtype == object:
        kinds = {type(v) for v in arr}
        if len(kinds) > 1:
            raise TypeError(f"values must all have one type, got {sorted(k.__name__ for k in kinds)}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError("values must not contain NaN")
    classes = np.unique(arr)
    return np.searchsorted(classes, arr).astype(np.int32), classes


# -- batching --------------------------------------------------------------------------------------


def batch_indices(
    n: int,
    batch_size: int | None,
    *,
    seed: Any = 0,
    epoch: Any = 0,
    shuffle: bool = True,
    drop_remainder: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """One epoch's plan: indices (num_batches, batch_size) int32 and mask (num_batches, batch_size) bool.

    The batches `Trainer.fit` trains on (`jdl.data.batching.BatchPlan`): the permutation drawn from
    (seed, epoch), so each epoch differs and repeats for the same (seed, epoch), cut into batches.
    num_batches = ceil(n / batch_size); the last batch is padded with index 0, mask False, unless
    drop_remainder (then floor). batch_size None is one full batch. seed and epoch may be traced
    (n and batch_size are static).
    """
    check_number(n, "n", integer=True, positive=True)
    if batch_size is None:
        batch_size = n
    check_number(batch_size, "batch_size", integer=True, positive=True)
    _check_bool(shuffle, "shuffle")
    _check_bool(drop_remainder, "drop_remainder")
    for name, value in (("seed", seed), ("epoch", epoch)):
        if is_concrete(value):
            if hasattr(value, "dtype") and np.ndim(value) == 0 and np.dtype(value.dtype).kind in "iu":
                value = int(value)
            check_number(value, name, integer=True, nonnegative=True)
            if value >= 2**32:
                raise ValueError(f"{name} must be < 2**32, got {value!r}")
        elif np.ndim(value) != 0 or np.dtype(value.dtype).kind not in "iu":
            raise TypeError(f"{name} must be an integer scalar, got {describe(value)}")
    if drop_remainder and n < batch_size:
        raise ValueError(f"batch_size={batch_size} exceeds n={n}: drop_remainder=True would leave no batch")
    return _plan(jnp.asarray(seed, jnp.uint32), jnp.asarray(epoch, jnp.uint32), n, batch_size, shuffle, drop_remainder)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _plan(seed: jax.Array, epoch: jax.Array, n: int, batch_size: int, shuffle: bool,
          drop_remainder: bool) -> tuple[jax.Array, jax.Array]:
    index, mask = BatchPlan(n, batch_size, shuffle).epoch_indices(seed, epoch)
    if drop_remainder:
        index, mask = index[: n // batch_size], mask[: n // batch_size]
    return index.astype(jnp.int32), mask
