"""Host-side conversion and validation of what a user passes to fit / evaluate / predict: x, y and weights.

Everything here runs on NumPy arrays or on shapes (`jax.eval_shape`), before anything is compiled,
and raises ValueError/TypeError naming the argument, what was expected and what arrived.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl import losses as losses_lib
from jdl.nn.mode import mode_kwargs
from jdl.train.objective import SINGLE, Objective, is_sparse, per_example_loss


@dataclasses.dataclass
class Data:
    """A validated data set on the host: inputs x (pytree), targets y (array or dict), weights w (n,)."""

    x: Any
    y: Any
    w: np.ndarray

    @property
    def size(self) -> int:
        return int(self.w.shape[0])

    def take(self, index: np.ndarray | slice) -> Data:
        pick = lambda a: a[index]  # noqa: E731
        return Data(jax.tree_util.tree_map(pick, self.x), jax.tree_util.tree_map(pick, self.y), self.w[index])

    def padded(self, rows: int) -> Data:
        """The first `rows` rows, the last example repeated to fill them with weight 0 (rows >= size)."""
        index = np.minimum(np.arange(rows), self.size - 1)
        data = self.take(index)
        data.w = np.where(np.arange(rows) < self.size, data.w, 0.0).astype(np.float32)
        return data


def leading_size(tree: Any, name: str) -> int:
    """The common leading (example) axis of every leaf of `tree`; ValueError naming `name` otherwise."""
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else -1 for leaf in jax.tree_util.tree_leaves(tree)}
    if not sizes:
        raise ValueError(f"{name} must hold at least one array, got {_checks.describe(tree)}")
    if -1 in sizes:
        raise ValueError(f"{name} must have a leading example axis (n, ...), got a scalar")
    if len(sizes) > 1:
        raise ValueError(f"all arrays in {name} must have the same number of examples, got sizes {sorted(sizes)}")
    return sizes.pop()


def _numbers_only(tree: Any) -> bool:
    """True for a (nested) list/tuple of Python or NumPy scalars (or 0-d arrays), with no array of examples in it."""
    if isinstance(tree, (list, tuple)):
        return all(_numbers_only(item) for item in tree)
    return isinstance(tree, (bool, int, float, np.number, np.bool_)) or (hasattr(tree, "shape") and np.ndim(tree) == 0)


def model_inputs(model: Any, x: Any, name: str = "x") -> Any:
    """x with a list/tuple of equally shaped arrays stacked into one array unless `model` takes several inputs.

    Lists of numbers are left to `to_host` (converted as NumPy does); arrays of different shapes
    can only be several inputs. Whether the model takes the sequence itself is read off tracing
    its initialisation on the first example of each (`jax.eval_shape`, nothing compiled).
    """
    if not isinstance(x, (list, tuple)) or not x or _numbers_only(x):
        return x
    leaves = [np.shape(item) if hasattr(item, "shape") else None for item in x]
    if None in leaves or len(set(leaves)) > 1:
        return x
    sample = type(x)(np.asarray(item)[:1] for item in x)
    try:
        rngs = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
        jax.eval_shape(lambda v: model.init(rngs, v, **mode_kwargs(model, False)), sample)
        return x
    except Exception:  # the model does not take a sequence of inputs: one input, as NumPy stacks it
        return np.asarray(to_host(list(x), name))


def to_host(tree: Any, name: str) -> Any:
    """Every leaf as a finite numeric NumPy array (float64 as float32 unless x64 is on).

    A (nested) list or tuple of numbers becomes one array, as `np.asarray` converts it.
    """
    def convert(leaf):
        array = np.asarray(leaf)
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numeric arrays, got an array of dtype {array.dtype}")
        if array.dtype.kind == "f":
            if not np.all(np.isfinite(array)):
                bad = np.argwhere(~np.isfinite(array))[0]
                raise ValueError(f"{name} must be finite, got NaN or Inf (first at index {tuple(int(i) for i in bad)})")
            if array.dtype == np.float64 and not jax.config.read("jax_enable_x64"):
                array = array.astype(np.float32)
        return array

    if isinstance(tree, (str, bytes)) or tree is None:
        raise TypeError(f"{name} must be an array or a pytree of arrays, got {_checks.describe(tree)}")
    if isinstance(tree, (list, tuple)) and tree and _numbers_only(tree):
        try:
            tree = np.asarray(tree)
        except ValueError:
            raise ValueError(f"{name} is a nested list of numbers whose rows have different lengths; "
                             "every example must have the same shape") from None
    return jax.tree_util.tree_map(convert, tree)


def data(objective: Objective, x: Any, y: Any, sample_weight: Any, *, name: str = "") -> Data:
    """x, y and sample weights (default 1) as a validated `Data` for `objective`'s heads."""
    x = to_host(x, f"{name}x")
    n = leading_size(x, f"{name}x")
    if y is None:
        raise TypeError(f"{name}y must be given (targets for the loss), got None")
    y = to_host(y, f"{name}y")
    heads = list(objective.head_names)
    if objective.single:
        if isinstance(y, Mapping):
            raise ValueError(f"{name}y is a dict {list(y)}, but the loss has a single head; pass a dict of losses")
    elif not isinstance(y, Mapping) or set(y) != set(heads):
        got = list(y) if isinstance(y, Mapping) else _checks.describe(y)
        raise ValueError(f"{name}y must be a dict with one target per loss head {heads}, got {got}")
    m = leading_size(y, f"{name}y")
    if m != n:
        raise ValueError(f"{name}x and {name}y must have the same number of examples, got {n} and {m}")
    if n == 0:
        raise ValueError(f"{name}x must hold at least one example, got 0")
    if sample_weight is None:
        w = np.ones((n,), np.float32)
    else:
        w = np.asarray(to_host(sample_weight, f"{name}sample_weight"), np.float32)
        if w.shape != (n,):
            raise ValueError(f"{name}sample_weight must have shape ({n},), one weight per example, got {w.shape}")
        if np.any(w < 0):
            raise ValueError(f"{name}sample_weight must be non-negative, got minimum {w.min().item()}")
    return Data(x, y, w)


def class_weights(objective: Objective, state: Any, data: Data, class_weight: Mapping[int, float]) -> np.ndarray:
    """(n,) weights class_weight[class of y_i] (1 for classes not in the dict), as Keras; single-head models.

    The classes are those the model outputs: k for k > 1 outputs, 2 for one; a key outside
    [0, classes) is a ValueError naming it.
    """
    output = check_inputs(objective, state, data.x)[SINGLE]
    classes = int(output.shape[-1]) if output.ndim >= 2 and output.shape[-1] > 1 else 2
    unknown = sorted(int(k) for k in class_weight if int(k) >= classes)
    if unknown:
        raise ValueError(
            f"class_weight names class(es) {unknown} that the model does not output: its {classes} classes "
            f"are 0..{classes - 1}; got keys {sorted(int(k) for k in class_weight)}"
        )
    return np.asarray(losses_lib.class_weight_to_sample_weight(data.y, class_weight), np.float32)


def check_inputs(objective: Objective, state: Any, x: Any, name: str = "") -> dict[Any, Any]:
    """ValueError unless x's shapes match the inputs the model was built for; returns {head: output shape}."""
    spec = {path: shape for path, shape, _ in state.input_spec}
    flat = jax.tree_util.tree_flatten_with_path(x)[0]
    got = {jax.tree_util.keystr(path): tuple(np.shape(leaf)[1:]) for path, leaf in flat}
    if spec and got != spec:
        def show(shapes):
            return ", ".join(f"{p or 'x'} (n, {', '.join(map(str, s))})" for p, s in shapes.items())

        raise ValueError(f"{name}x does not match the inputs the model was built for: expected {show(spec)}, got {show(got)}")
    sample = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct((1,) + np.shape(a)[1:], np.asarray(a).dtype), x)
    outputs = inference_outputs(objective).eval_shape(state, sample)
    heads = list(objective.head_names)
    if objective.single:
        return {SINGLE: outputs}
    if not isinstance(outputs, Mapping) or set(outputs) != set(heads):
        got_heads = list(outputs) if isinstance(outputs, Mapping) else "a single array"
        raise ValueError(f"the model returns {got_heads}, but the loss names heads {heads}")
    return outputs


@functools.lru_cache(maxsize=64)
def inference_outputs(objective: Objective) -> Callable:
    """jit(state, x) -> the model's inference outputs; its `eval_shape` is traced once per state and input shapes,
    so a later fit of the same shapes checks its inputs without tracing the model again."""
    return jax.jit(lambda s, v: objective.forward(s.model, s.params, s.model_state, v, train=False, key=s.rng)[0])


def check_against_model(objective: Objective, state: Any, data: Data, name: str = "") -> Data:
    """Check inputs against what the model was built for and targets against its outputs."""
    outputs = check_inputs(objective, state, data.x, name)
    y = {SINGLE: data.y} if objective.single else data.y
    checked = {h.name: check_targets(h.loss, y[h.name], outputs[h.name], y_name(name, h.name)) for h in objective.heads}
    return Data(data.x, checked[SINGLE] if objective.single else checked, data.w)


def y_name(prefix: str, head: Any) -> str:
    return f"{prefix}y" if head is SINGLE else f"{prefix}y[{head!r}]"


def check_targets(fn: Callable, y: np.ndarray, output: jax.ShapeDtypeStruct, name: str) -> np.ndarray:
    """Targets reshaped to the model's output (a trailing axis of 1 added) and validated for the loss.

    The loss is traced on the targets' shapes (`jax.eval_shape`, nothing compiled) and its value
    checks run on the host (`losses.check_target_values`).
    """
    out_shape = tuple(output.shape[1:])
    y = np.asarray(y)
    if is_sparse(fn):
        if y.ndim == len(out_shape) + 1 and y.shape[-1] == 1 and len(out_shape) >= 1:
            y = y[..., 0]
        if tuple(y.shape[1:]) != out_shape[:-1]:
            raise ValueError(
                f"{name} must hold integer class labels of shape (n{''.join(', ' + str(d) for d in out_shape[:-1])}) "
                f"for a model that outputs (batch, {', '.join(map(str, out_shape))}), got shape {y.shape}"
            )
        if y.dtype.kind == "f" and np.any(y != np.round(y)):
            raise ValueError(f"{name} must hold integer class labels, got non-integer values")
        y = y.astype(np.int32)
        _checks.check_int_range(y, name, out_shape[-1])
        return y
    if tuple(y.shape[1:]) != out_shape:
        if tuple(y.shape[1:]) + (1,) == out_shape:
            y = y[..., None]
        else:
            raise ValueError(
                f"{name} has shape {y.shape}, but the model outputs (batch, {', '.join(map(str, out_shape))}); "
                "targets must have the output's shape (class labels need sparse_categorical_crossentropy)"
            )
    y = y.astype(np.dtype(output.dtype)) if y.dtype.kind in "biu" else y
    try:
        jax.eval_shape(lambda t: per_example_loss(fn, t, jnp.zeros((1,) + out_shape, output.dtype)),
                       jax.ShapeDtypeStruct((1,) + y.shape[1:], y.dtype))
        losses_lib.check_target_values(fn, y)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    return y


def unpack_batch(batch: Sequence[Any]) -> tuple[Any, Any, jax.Array]:
    """(x, y, w) from (x, y) (weights 1) or (x, y, sample_weight)."""
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError(f"batch must be (x, y) or (x, y, sample_weight), got {_checks.describe(batch)}")
    x, y = batch[0], batch[1]
    n = jax.tree_util.tree_leaves(x)[0].shape[0]
    w = jnp.ones((n,), jnp.float32) if len(batch) == 2 else jnp.asarray(batch[2], jnp.float32)
    return x, y, w


def check_state(state: Any) -> None:
    """TypeError unless `state` is a TrainState."""
    from jdl.train.state import TrainState

    if not isinstance(state, TrainState):
        raise TypeError(f"state must be a TrainState (from fit or Trainer.init), got {_checks.describe(state)}")


def batch_size_for(batch_size: Any, n: int, mesh: Any = None) -> int:
    """The batch size of a fit on n examples: n for None (full batch), else a positive int <= n dividing over the mesh."""
    from jdl.train import sharding

    batch_size = n if batch_size is None else batch_size
    _checks.check_number(batch_size, "batch_size", integer=True, positive=True)
    if batch_size > n:
        raise ValueError(f"batch_size must be <= the number of training examples ({n}), got {batch_size}")
    sharding.check_batch_size(batch_size, mesh)
    return batch_size
