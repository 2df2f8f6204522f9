"""Recurrent cells (SimpleRNN, LSTM, GRU) with fused gates, and `cell` by name.

A cell follows Flax's `RNNCellBase` conventions: `cell(carry, x_t) -> (new_carry, h_t)` with x_t
(batch, features), `cell.initialize_carry(rng, (batch, features))` (zeros) and
`num_feature_axes == 1`. For speed a cell splits its step in two: `project_inputs(x)` applies the
input kernel and bias to every time step at once (one matrix product, (batch, time, G·units)) and
`step(carry, p_t)` adds the recurrent part; `cell(carry, x_t) == cell.step(carry,
cell.project_inputs(x_t))`. Gates are fused: one (features, G·units) input kernel and one
(units, G·units) recurrent kernel per cell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jdl import _checks
from jdl.nn import activations, initializers

Carry = Any

def _check_unit_count(units: Any) -> None:
    _checks.check_number(units, "units", integer=True, positive=True)


class _Cell(nn.RNNCellBase):
    """Shared fields and machinery of jdl's cells: fused input and recurrent kernels of G·units columns."""

    units: int
    kernel_init: str | Callable[..., jax.Array] = "xavier_uniform"
    recurrent_init: str | Callable[..., jax.Array] = "orthogonal"
    bias_init: str | Callable[..., jax.Array] = "zeros"
    param_dtype: Any = jnp.float32

    gates: ClassVar[int] = 1
    additive: ClassVar[bool] = False  # combine reads only p_t + r_t (then ∂/∂p_t = ∂/∂r_t)

    def __post_init__(self) -> None:
        _check_unit_count(self.units)
        initializers.get(self.kernel_init)
        initializers.get(self.recurrent_init)
        initializers.get(self.bias_init)
        self._check_activations()
        super().__post_init__()

    @nn.nowrap
    def _check_activations(self) -> None:
        pass

    @nn.nowrap
    def _input_bias_init(self) -> Callable[..., jax.Array]:
        return initializers.get(self.bias_init)

    def setup(self) -> None:
        width = self.gates * self.units
        self.input = nn.Dense(width, kernel_init=initializers.get(self.kernel_init),
                              bias_init=self._input_bias_init(), param_dtype=self.param_dtype)
        self.recurrent_kernel = self.param("recurrent_kernel", initializers.get(self.recurrent_init),
                                           (self.units, width), self.param_dtype)

    def project_inputs(self, x: jax.Array) -> jax.Array:
        """x W + b for every step at once: (batch, time, features) or (batch, features) -> (..., G·units)."""
        return self.input(x)

    def step(self, carry: Carry, projected: jax.Array) -> tuple[Carry, jax.Array]:
        """One time step from the projected input p_t (batch, G·units): (new carry, h_t (batch, units))."""
        return self.combine(carry, projected, self.recurrent_product(self.output(carry)))

    def recurrent_product(self, h: jax.Array) -> jax.Array:
        """h_{t-1} U (batch, G·units): the recurrent half of every gate's pre-activation."""
        return h @ self.recurrent_kernel

    @nn.nowrap
    def recurrent_weights(self) -> tuple[jax.Array, jax.Array | None]:
        """(U (units, G·units), b_rec (G·units,) or None): `recurrent_product(h)` = h U (+ b_rec)."""
        return self.recurrent_kernel, None

    @nn.nowrap
    def combine(self, carry: Carry, projected: jax.Array, recurrent: jax.Array) -> tuple[Carry, jax.Array]:
        """The gates from p_t = x_t W + b and r_t = `recurrent_product(h_{t-1})`: (new carry, h_t). No parameters."""
        raise NotImplementedError

    @nn.nowrap
    def backward_combine(self, carry: Carry, projected: jax.Array, recurrent: jax.Array) -> tuple[Carry, jax.Array]:
        """`combine` as the fast backward pass differentiates it: the same values, written for a faster pullback."""
        return self.combine(carry, projected, recurrent)

    def __call__(self, carry: Carry, x: jax.Array) -> tuple[Carry, jax.Array]:
        """One time step from the raw input x_t (batch, features): (new carry, h_t (batch, units))."""
        x = _checks.as_array(x, "x", dtype_kind="float")
        if x.ndim != 2:
            raise ValueError(f"x must have shape (batch, features) for one cell step, got shape {tuple(x.shape)}")
        return self.step(carry, self.project_inputs(x))

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Carry:
        """Zero carry for inputs of shape (batch, features): h (batch, units) (LSTM: (c, h))."""
        del rng
        return self._zeros(_batch_of(input_shape))

    @nn.nowrap
    def _zeros(self, batch: int) -> Carry:
        return jnp.zeros((batch, self.units), self.param_dtype)

    @nn.nowrap
    def output(self, carry: Carry) -> jax.Array:
        """The output h_t that a carry holds (batch, units)."""
        return carry

    @property
    def num_feature_axes(self) -> int:
        return 1


def _batch_of(input_shape: Any) -> int:
    shape = tuple(input_shape)
    if len(shape) != 2:
        raise ValueError(f"input_shape must be (batch, features), got {shape}")
    return int(shape[0])


class SimpleRNNCell(_Cell):
    """Elman cell: h_t = activation(x_t W + b + h_{t-1} U); carry h (batch, units)."""

    activation: str | Callable[[jax.Array], jax.Array] = "tanh"

    gates: ClassVar[int] = 1
    additive: ClassVar[bool] = True

    @nn.nowrap
    def _check_activations(self) -> None:
        activations.get(self.activation)

    @nn.nowrap
    def combine(self, carry: jax.Array, projected: jax.Array, recurrent: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = activations.get(self.activation)(projected + recurrent)
        return h, h


_LSTM_GATES = (0, 1, 3)  # i, f, o: the σ gates, read by one gather; XLA:CPU runs the gates about
# 1.5x faster from a gather than from four slices of z (benchmarks/README.md)


class LSTMCell(_Cell):
    """LSTM cell (Hochreiter & Schmidhuber 1997; Keras/PyTorch form), gates in the order i, f, g, o.

    [i, f, g, o] = x_t W + b + h_{t-1} U;  c_t = σ(f)⊙c_{t-1} + σ(i)⊙tanh(g);  h_t = σ(o)⊙tanh(c_t)
    (σ = recurrent_activation, tanh = activation). Carry (c, h), each (batch, units).
    unit_forget_bias: the forget gate's bias starts at 1 (Jozefowicz et al. 2015), as in Keras.
    """

    activation: str | Callable[[jax.Array], jax.Array] = "tanh"
    recurrent_activation: str | Callable[[jax.Array], jax.Array] = "sigmoid"
    unit_forget_bias: bool = True

    gates: ClassVar[int] = 4
    additive: ClassVar[bool] = True

    @nn.nowrap
    def _check_activations(self) -> None:
        activations.get(self.activation)
        activations.get(self.recurrent_activation)
        if not isinstance(self.unit_forget_bias, bool):
            raise TypeError(f"unit_forget_bias must be a bool, got {_checks.describe(self.unit_forget_bias)}")

    @nn.nowrap
    def _input_bias_init(self) -> Callable[..., jax.Array]:
        base = initializers.get(self.bias_init)
        if not self.unit_forget_bias:
            return base
        units = self.units

        def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
            return base(key, shape, dtype).at[units:2 * units].set(1)

        return init

    @nn.nowrap
    def combine(self, carry: tuple[jax.Array, jax.Array], projected: jax.Array, recurrent: jax.Array):
        c, _ = carry
        gate = activations.get(self.recurrent_activation)
        act = activations.get(self.activation)
        z = projected + recurrent
        z = z.reshape(*z.shape[:-1], 4, z.shape[-1] // 4)
        ifo = gate(z[..., jnp.asarray(_LSTM_GATES), :])
        c = ifo[..., 1, :] * c + ifo[..., 0, :] * act(z[..., 2, :])
        h = ifo[..., 2, :] * act(c)
        return (c, h), h

    @nn.nowrap
    def backward_combine(self, carry: tuple[jax.Array, jax.Array], projected: jax.Array, recurrent: jax.Array):
        """`combine` from four slices of z: the same values; XLA:CPU runs its pullback faster than the gather's
        scatter-add (47 against 66.5 µs per step at batch 64, 128 units), while the gather's forward is faster."""
        c, _ = carry
        gate = activations.get(self.recurrent_activation)
        act = activations.get(self.activation)
        i, f, g, o = jnp.split(projected + recurrent, 4, axis=-1)
        c = gate(f) * c + gate(i) * act(g)
        h = gate(o) * act(c)
        return (c, h), h

    @nn.nowrap
    def _zeros(self, batch: int) -> tuple[jax.Array, jax.Array]:
        zeros = jnp.zeros((batch, self.units), self.param_dtype)
        return zeros, zeros

    @nn.nowrap
    def output(self, carry: tuple[jax.Array, jax.Array]) -> jax.Array:
        return carry[1]


class GRUCell(_Cell):
    """GRU cell (Cho et al. 2014) in the "reset_after" form of Keras 2+, cuDNN and PyTorch; gates z, r, n.

    [x_z, x_r, x_n] = x_t W + b;  [h_z, h_r, h_n] = h_{t-1} U + b_rec;
    z = σ(x_z + h_z),  r = σ(x_r + h_r),  n = tanh(x_n + r⊙h_n),  h_t = z⊙h_{t-1} + (1 - z)⊙n.
    The reset gate multiplies the recurrent product after U (not h before U, the classic 2014 form),
    which is why the recurrent part has its own bias b_rec. Carry h (batch, units).
    """

    activation: str | Callable[[jax.Array], jax.Array] = "tanh"
    recurrent_activation: str | Callable[[jax.Array], jax.Array] = "sigmoid"

    gates: ClassVar[int] = 3

    @nn.nowrap
    def _check_activations(self) -> None:
        activations.get(self.activation)
        activations.get(self.recurrent_activation)

    def setup(self) -> None:
        super().setup()
        self.recurrent_bias = self.param("recurrent_bias", initializers.get(self.bias_init),
                                         (self.gates * self.units,), self.param_dtype)

    def recurrent_product(self, h: jax.Array) -> jax.Array:
        """h_{t-1} U + b_rec (batch, 3·units)."""
        return h @ self.recurrent_kernel + self.recurrent_bias

    @nn.nowrap
    def recurrent_weights(self) -> tuple[jax.Array, jax.Array | None]:
        return self.recurrent_kernel, self.recurrent_bias

    @nn.nowrap
    def combine(self, carry: jax.Array, projected: jax.Array, recurrent: jax.Array) -> tuple[jax.Array, jax.Array]:
        gate = activations.get(self.recurrent_activation)
        act = activations.get(self.activation)
        x_z, x_r, x_n = jnp.split(projected, 3, axis=-1)
        h_z, h_r, h_n = jnp.split(recurrent, 3, axis=-1)
        z = gate(x_z + h_z)
        r = gate(x_r + h_r)
        n = act(x_n + r * h_n)
        h = z * carry + (1 - z) * n
        return h, h


CELLS: dict[str, type[_Cell]] = {"simple_rnn": SimpleRNNCell, "lstm": LSTMCell, "gru": GRUCell}


def cell(name: str | type[_Cell], units: int, **options: Any) -> _Cell:
    """A cell by name ("simple_rnn", "lstm", "gru"; also "rnn" and "simplernn") with `units` and options."""
    aliases = {**CELLS, "rnn": SimpleRNNCell, "simplernn": SimpleRNNCell}
    if isinstance(name, type) and issubclass(name, _Cell):
        return name(units, **options)
    return _checks.lookup("cell", name, aliases)(units, **options)


def check_cell(value: Any, name: str = "cell") -> None:
    """TypeError unless `value` is a jdl recurrent cell (with project_inputs and step)."""
    if not isinstance(value, _Cell):
        raise TypeError(
            f"{name} must be a jdl recurrent cell (SimpleRNNCell, LSTMCell or GRUCell), got {_checks.describe(value)}"
        )
