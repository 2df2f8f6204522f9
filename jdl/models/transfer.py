"""Transfer learning: load trained parameters, transplant a trunk into a new model, fine-tune it frozen.

The recipe::

    old = jdl.train.checkpoint.load_params("runs/old/checkpoints")   # or a TrainState
    model = TrunkHead(trunk=same_trunk, head=new_head)
    state = trainer.init(x)                                    # trainer with adam(..., freeze=["trunk"])
    state = state.replace(params=transplant(state.params, old, ["trunk"]))
    state, history = trainer.fit(x, y, state=state)           # the trunk stays bit-identical

Parameter paths are '/'-joined keys, as `jdl.optim.parameter_paths` prints them ("trunk/Dense_0/kernel").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np

from jdl import _checks
from jdl.nn import activations
from jdl.nn.mode import mode_kwargs


class TrunkHead(nn.Module):
    """x -> head(activation(trunk(x))): a reusable trunk under "trunk", a replaceable head under "head".

    trunk, head: Flax modules (a `train`/`deterministic` keyword, if they have one, follows the
    mode); activation: applied between them (None: none). Shapes: whatever the trunk takes, the
    head's output (e.g. logits (batch, classes)).
    """

    trunk: nn.Module
    head: nn.Module
    activation: str | Callable[[jax.Array], jax.Array] | None = "relu"
    output_activation: str | Callable[[jax.Array], jax.Array] | None = None

    def __post_init__(self) -> None:
        for field in ("trunk", "head"):
            if not isinstance(getattr(self, field), nn.Module):
                raise TypeError(f"{field} must be a flax.linen.Module, got {_checks.describe(getattr(self, field))}")
        if self.activation is not None:
            activations.get(self.activation)
        if self.output_activation is not None:
            activations.get(self.output_activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        h = self.trunk(x, **mode_kwargs(self.trunk, train))
        if self.activation is not None:
            h = activations.get(self.activation)(h)
        return self.head(h, **mode_kwargs(self.head, train))


def _leaves(tree: Any) -> dict[str, Any]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(keys, simple=True, separator="/"): leaf for keys, leaf in flat}


def _under(leaves: Mapping[str, Any], path: str) -> dict[str, Any]:
    """{suffix: leaf} of the leaves at `path` or below it ("" for the leaf itself)."""
    found = {}
    for name, leaf in leaves.items():
        if name == path:
            found[""] = leaf
        elif name.startswith(path + "/"):
            found[name[len(path) + 1 :]] = leaf
    return found


def _modules(leaves: Mapping[str, Any]) -> list[str]:
    return sorted({name.rsplit("/", 1)[0] for name in leaves if "/" in name})


def transplant(new_params: Any, old_params: Any, paths: Sequence[str] | Mapping[str, str]) -> Any:
    """A copy of `new_params` with the subtrees at `paths` replaced by those of `old_params`.

    paths: '/'-joined module or leaf paths ("trunk", "trunk/Dense_0/kernel"), the same in both
    models; or a dict {new path: old path} when the trunk sits elsewhere in the old model
    ({"trunk/Dense_0": "Dense_0"}). ValueError naming the path when it is missing on either side,
    when the two subtrees hold different leaves, or when a leaf's shape differs.
    """
    if isinstance(paths, Mapping):
        pairs = list(paths.items())
    elif isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence):
        raise TypeError(f"paths must be a list of parameter paths or a dict {{new path: old path}}, got {_checks.describe(paths)}")
    else:
        pairs = [(p, p) for p in paths]
    if not pairs:
        raise ValueError("paths must name at least one parameter path, got none")
    new_leaves, old_leaves = _leaves(new_params), _leaves(old_params)
    if not new_leaves:
        raise ValueError(f"new_params must hold at least one array, got {_checks.describe(new_params)}")
    replaced: dict[str, Any] = {}
    for new_path, old_path in pairs:
        for name, path in (("new path", new_path), ("old path", old_path)):
            if not isinstance(path, str) or not path.strip("/"):
                raise TypeError(f"each {name} must be a non-empty '/'-joined string, got {_checks.describe(path)}")
        new_path, old_path = new_path.strip("/"), old_path.strip("/")
        target, source = _under(new_leaves, new_path), _under(old_leaves, old_path)
        for side, found, leaves in (("new_params", target, new_leaves), ("old_params", source, old_leaves)):
            if not found:
                path = new_path if side == "new_params" else old_path
                shown = ", ".join(_modules(leaves) or sorted(leaves))
                raise ValueError(f"path {path!r} is not in {side}; its modules are: {shown}")
        if set(target) != set(source):
            raise ValueError(
                f"path {new_path!r} of new_params and {old_path!r} of old_params hold different parameters: "
                f"{sorted(target)} and {sorted(source)}"
            )
        for suffix, leaf in target.items():
            full_new = "/".join(p for p in (new_path, suffix) if p)
            full_old = "/".join(p for p in (old_path, suffix) if p)
            old_leaf = source[suffix]
            if tuple(np.shape(leaf)) != tuple(np.shape(old_leaf)):
                raise ValueError(
                    f"parameter {full_new!r} has shape {tuple(np.shape(leaf))} in new_params but {full_old!r} has shape "
                    f"{tuple(np.shape(old_leaf))} in old_params"
                )
            replaced[full_new] = jax.numpy.asarray(old_leaf, dtype=jax.numpy.asarray(leaf).dtype)

    def pick(keys, leaf):
        return replaced.get(jax.tree_util.keystr(keys, simple=True, separator="/"), leaf)

    return jax.tree_util.tree_map_with_path(pick, new_params)


def __getattr__(name: str) -> Any:
    """Deprecated alias (one release): `load_params` moved to `jdl.train.checkpoint` (loading belongs with checkpoints)."""
    if name == "load_params":
        import warnings

        from jdl.train import checkpoint

        warnings.warn("jdl.models.transfer.load_params moved to jdl.train.checkpoint.load_params",
                      DeprecationWarning, stacklevel=2)
        return checkpoint.load_params
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
