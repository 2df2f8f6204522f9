"""`Sequential`: Keras' layer stack, a Flax Linen module whose layers run in order, with `.add(layer)`.

    model = Sequential([Dense(11, activation="relu"), Dropout(0.3), Dense(1, activation="sigmoid")])
    model.add(...)                       # before the model is trained
    Trainer(model, loss="binary_crossentropy", ...)

Layers are named as Keras names them ("dense", "dense_1", "dropout", ...; or their own `name=`),
and so are their parameters: params["dense"]["kernel"]. Dropout and BatchNormalization get the
training flag (Trainer passes `train=`). A final sigmoid or softmax (the last layer's activation,
or a last Activation layer) is left to `Trainer.predict` by default (`logits=True`): the model
outputs logits, as every jdl model does, and the cross-entropy losses read logits; Keras'
probabilities are what `predict` returns. The layers' regularizers and constraints are declared
to the Trainer (`declared_regularizers`, `declared_constraints`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import flax.linen as nn

from jdl import _checks, constraints, regularizers
from jdl.nn import activations
from jdl.nn.embedding import Embedding
from jdl.nn.keras_layers import Activation
from jdl.nn.mode import mode_kwargs

_FOLDED = ("sigmoid", "softmax")


def keras_name(cls: type) -> str:
    """Keras' automatic layer name of a class: "Dense" -> "dense", "MaxPooling2D" -> "max_pooling2d"."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls.__name__)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower().lstrip("_")


def _check_layer(layer: Any, where: str) -> nn.Module:
    if isinstance(layer, type) and issubclass(layer, nn.Module):
        raise TypeError(f"{where} must be a layer instance, got the class {layer.__name__}: call it, e.g. "
                        f"{layer.__name__}(...)")
    if not isinstance(layer, nn.Module):
        raise TypeError(f"{where} must be a layer (a flax.linen.Module such as jdl.nn.Dense(8)), "
                        f"got {_checks.describe(layer)}")
    if isinstance(layer, Embedding) and layer.mask_zero:
        raise ValueError(f"{where}: Sequential does not carry Embedding's mask_zero to later layers; use "
                         f"mask_zero=False, or a model that passes seq_lengths to its recurrent layers")
    return layer


def _auto_names(layers: Sequence[nn.Module], taken: Sequence[str] = ()) -> tuple[str, ...]:
    """The layers' own names, else Keras' "dense", "dense_1", ... (numbered per class, skipping taken names)."""
    names = list(taken)
    for layer in layers:
        if layer.name is not None:
            if layer.name in names:
                raise ValueError(f"layer names must be unique in a Sequential model, got {layer.name!r} twice")
            names.append(layer.name)
            continue
        base, count = keras_name(type(layer)), 0
        name = base
        while name in names:
            count += 1
            name = f"{base}_{count}"
        names.append(name)
    return tuple(names[len(taken):])


def _folded(layer: nn.Module) -> str | None:
    """"sigmoid"/"softmax" when layer's activation is one of them (by name or jdl's function), else None."""
    activation = getattr(layer, "activation", None)
    for name in _FOLDED:
        if activation == name or activation is activations.get(name):
            return name
    return None


class Sequential(nn.Module):
    """Keras Sequential: x -> layers[-1](... layers[0](x)); layers are Flax modules (jdl.nn.Dense, Conv2D, ...).

    layers: a list or tuple of layer instances; names: their names (default Keras' automatic ones);
    logits: True leaves a final sigmoid/softmax to `predict` (the model outputs logits); False
    applies it (outputs are probabilities, as Keras' model(x); use a loss with from_logits=False).
    """

    layers: Sequence[nn.Module] = ()
    names: Sequence[str] = ()
    logits: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.layers, (str, bytes, nn.Module)) or not isinstance(self.layers, Sequence):
            raise TypeError(f"layers must be a list or tuple of layers, got {_checks.describe(self.layers)}")
        layers = tuple(_check_layer(layer, f"layers[{i}]") for i, layer in enumerate(self.layers))
        object.__setattr__(self, "layers", layers)
        if not self.names:
            object.__setattr__(self, "names", _auto_names(layers))
        names = tuple(self.names)
        if len(names) != len(layers) or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise ValueError(f"names must be {len(layers)} distinct non-empty strings, one per layer, got {names!r}")
        object.__setattr__(self, "names", names)
        if not isinstance(self.logits, bool):
            raise TypeError(f"logits must be a bool, got {_checks.describe(self.logits)}")
        super().__post_init__()

    @nn.nowrap
    def add(self, layer: nn.Module) -> None:
        """Append a layer (Keras `model.add`), before the model goes to a Trainer (which reads its layers once)."""
        if self.scope is not None:
            raise RuntimeError("add() on a bound Sequential: add layers before init/apply")
        layer = _check_layer(layer, "layer")
        object.__setattr__(self, "names", self.names + _auto_names((layer,), self.names))
        object.__setattr__(self, "layers", self.layers + (layer,))

    @nn.nowrap
    def pop(self) -> nn.Module:
        """Remove and return the last layer (Keras `model.pop`)."""
        if not self.layers:
            raise ValueError("pop() on a Sequential model without layers")
        last = self.layers[-1]
        object.__setattr__(self, "layers", self.layers[:-1])
        object.__setattr__(self, "names", self.names[:-1])
        return last

    @property
    def output_activation(self) -> str | None:
        """What `Trainer.predict` applies: the folded sigmoid/softmax, "linear" if the model applies it, else None."""
        folded = _folded(self.layers[-1]) if self.layers else None
        if folded is None:
            return None
        return folded if self.logits else "linear"

    @nn.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        if not self.layers:
            raise ValueError("a Sequential model needs at least one layer; add one with model.add(layer)")
        last = len(self.layers) - 1
        for index, (name, layer) in enumerate(zip(self.names, self.layers)):
            if index == last and self.logits and _folded(layer) is not None:
                if isinstance(layer, Activation):
                    break
                layer = layer.copy(name=name, activation=None)
            else:
                layer = layer.copy(name=name)
            x = layer(x, **mode_kwargs(layer, train))
        return x

    @nn.nowrap
    def declared_regularizers(self) -> regularizers.Declared:
        """((layer name, *path), regularizer) for every regularizer the layers declare."""
        return tuple(((name, *path), r) for name, layer in zip(self.names, self.layers)
                     for path, r in regularizers.declared(layer))

    @nn.nowrap
    def declared_constraints(self) -> constraints.Declared:
        """((layer name, *path), constraint) for every constraint the layers declare."""
        return tuple(((name, *path), c) for name, layer in zip(self.names, self.layers)
                     for path, c in constraints.declared(layer))

    @nn.nowrap
    def summary(self, sample_input: Any = None, print_fn: Any = print) -> str:
        """Keras' model.summary(): see `jdl.models.summary` (a sample input is required: jdl builds from shapes)."""
        from jdl.models.summary import summary

        return summary(self, sample_input, print_fn=print_fn)

    @nn.nowrap
    def count_params(self, sample_input: Any = None) -> int:
        """Keras' model.count_params(): see `jdl.models.count_params`."""
        from jdl.models.summary import count_params

        return count_params(self, sample_input)


__all__ = ["Sequential", "keras_name"]
