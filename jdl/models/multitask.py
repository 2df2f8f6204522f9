"""Multi-input / multi-output models: the notes' two-input, two-head network.

Train them with a dict of losses, one per output head; the cost is L = Σ_h w_h·J_h:
`jdl.Trainer(model, loss={"class": "sparse_categorical_crossentropy", "value": "mse"},
loss_weights={"class": 1.0, "value": 1.0})`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax

from jdl import _checks
from jdl.nn import activations, initializers


def _check_inputs(x: Any, names: Sequence[str], dims: Sequence[int]) -> list[jax.Array]:
    """The inputs in `names` order from a dict {name: (batch, dim)} or a tuple/list of arrays."""
    expected = ", ".join(f"{n!r}: (batch, {d})" for n, d in zip(names, dims))
    if isinstance(x, Mapping):
        missing = [n for n in names if n not in x]
        if missing:
            raise ValueError(f"x is missing input(s) {missing}; expected a dict {{{expected}}}, got keys {sorted(map(str, x))}")
        extra = [k for k in x if k not in names]
        if extra:
            raise ValueError(f"x has unknown input(s) {extra}; expected a dict {{{expected}}}")
        arrays = [x[n] for n in names]
    elif isinstance(x, (tuple, list)):
        if len(x) != len(names):
            raise ValueError(f"x must hold {len(names)} inputs ({expected}), got {len(x)}")
        arrays = list(x)
    else:
        raise TypeError(f"x must be a dict {{{expected}}} or a tuple of {len(names)} arrays, got {_checks.describe(x)}")
    for name, dim, array in zip(names, dims, arrays):
        if not hasattr(array, "shape") or len(array.shape) != 2 or array.shape[1] != dim:
            got = f"shape {tuple(array.shape)}" if hasattr(array, "shape") else _checks.describe(array)
            raise ValueError(f"input {name!r} must have shape (batch, {dim}), got {got}")
    batches = {a.shape[0] for a in arrays}
    if len(batches) > 1:
        raise ValueError(f"all inputs must have the same batch size, got {[a.shape[0] for a in arrays]}")
    return arrays


class TwoInputTwoHead(nn.Module):
    """The notes' functional-API model: inputs a (batch, 11) and b (batch, 5), two output heads.

    As in the notes: h1 = Dense(16, relu)(a); h2 = Dense(4, relu)(h1); "class" = Dense(4)(h2) logits
    (batch, classes), softmax at predict; h3 = Dense(4, relu)(b); "value" = Dense(1)(h3) (batch, 1),
    linear. The branches share no weight, so ∂L/∂w = ∂J1/∂w + ∂J2/∂w has one non-zero term per weight.
    x: a dict {"a": ..., "b": ...} (names from `input_names`) or a tuple (a, b).
    output_activation: {head: activation} that `Trainer.predict` applies (None: from the losses).
    """

    input_dims: tuple[int, int] = (11, 5)
    input_names: tuple[str, str] = ("a", "b")
    hidden: int = 16
    class_hidden: int = 4
    classes: int = 4
    value_hidden: int = 4
    activation: str | Callable[[jax.Array], jax.Array] = "relu"
    kernel_init: str | Callable[..., jax.Array] = "he_uniform"
    output_activation: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        for field, items, kind in (("input_dims", self.input_dims, int), ("input_names", self.input_names, str)):
            if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or len(items) != 2:
                raise ValueError(f"{field} must hold two entries (one per input), got {items!r}")
            for item in items:
                if not isinstance(item, kind) or isinstance(item, bool):
                    raise TypeError(f"{field} entries must be {kind.__name__}, got {_checks.describe(item)}")
        for dim in self.input_dims:
            _checks.check_number(dim, "input_dims entries", integer=True, positive=True)
        if self.input_names[0] == self.input_names[1]:
            raise ValueError(f"input_names must be two different names, got {self.input_names!r}")
        for field in ("hidden", "class_hidden", "classes", "value_hidden"):
            _checks.check_number(getattr(self, field), field, integer=True, positive=True)
        activations.get(self.activation)
        initializers.get(self.kernel_init)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> dict[str, jax.Array]:
        """{"class": logits (batch, classes), "value": (batch, 1)}."""
        a, b = _check_inputs(x, self.input_names, self.input_dims)
        act = activations.get(self.activation)
        init = initializers.get(self.kernel_init)
        h1 = act(nn.Dense(self.hidden, kernel_init=init, name="trunk")(a))
        h2 = act(nn.Dense(self.class_hidden, kernel_init=init, name="class_hidden")(h1))
        logits = nn.Dense(self.classes, kernel_init=init, name="class_head")(h2)
        h3 = act(nn.Dense(self.value_hidden, kernel_init=init, name="value_hidden")(b))
        value = nn.Dense(1, kernel_init=init, name="value_head")(h3)
        return {"class": logits, "value": value}
