"""The scan-based layers that run a recurrent cell over sequences: Recurrent, Bidirectional, StackedRecurrent.

`Recurrent` runs a cell (see `jdl.nn.cells`) over (batch, time, features) with `flax.linen.scan`,
so compile time does not grow with the sequence length; `Bidirectional` runs two;
`StackedRecurrent` stacks several. The cells are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks
from jdl.nn import cell_scan
from jdl.nn.cells import CELLS, GRUCell, LSTMCell, SimpleRNNCell, _Cell, cell, check_cell  # noqa: F401  (re-exported)

Carry = Any


def detached(module: nn.Module) -> nn.Module:
    """An unbound copy of a cell, adopted (and named "cell") by the layer it is passed to."""
    return module.clone(parent=None, name=None)


def check_sequence(x: Any, name: str = "x") -> jax.Array:
    """`x` as a float array of shape (batch, time, features); ValueError naming `name` otherwise."""
    x = _checks.as_array(x, name, dtype_kind="float")
    if x.ndim != 3:
        raise ValueError(
            f"{name} must have shape (batch, time, features), got shape {tuple(x.shape)} ({x.ndim} dimensions)"
        )
    return x


def check_seq_lengths(seq_lengths: Any, batch: int, time: int, name: str = "seq_lengths") -> jax.Array:
    """seq_lengths as an int32 array (batch,) with every value in [0, time] (values checked when concrete)."""
    lengths = _checks.as_array(seq_lengths, name, dtype_kind="int")
    if np.dtype(lengths.dtype).kind not in "iub":
        raise TypeError(f"{name} must hold integer lengths, got {_checks.describe(seq_lengths)}")
    if lengths.shape != (batch,):
        raise ValueError(f"{name} must have shape (batch,) = ({batch},), got shape {tuple(lengths.shape)}")
    if _checks.is_concrete(lengths) and batch:
        values = np.asarray(lengths)
        if values.min() < 0:
            raise ValueError(f"{name} must be >= 0, got minimum {values.min().item()}")
        if values.max() > time:
            raise ValueError(
                f"{name} must be <= the sequence length {time} (time axis of x), got maximum {values.max().item()}"
            )
    return lengths.astype(jnp.int32)


def check_carry(carry: Any, expected: Any, name: str = "initial_state") -> Any:
    """`carry` with the tree structure and leaf shapes of `expected`; ValueError naming `name` otherwise."""
    want = jax.tree_util.tree_structure(expected)
    got = jax.tree_util.tree_structure(carry)
    shapes = [tuple(leaf.shape) for leaf in jax.tree_util.tree_leaves(expected)]
    if got != want:
        raise ValueError(f"{name} must be a carry shaped like {jax.tree_util.tree_unflatten(want, shapes)}, got {carry!r}")
    leaves = [_checks.as_array(leaf, name, dtype_kind="float") for leaf in jax.tree_util.tree_leaves(carry)]
    for leaf, shape in zip(leaves, shapes):
        if tuple(leaf.shape) != shape:
            raise ValueError(
                f"{name} must be a carry shaped like {jax.tree_util.tree_unflatten(want, shapes)}, "
                f"got {jax.tree_util.tree_unflatten(want, [tuple(a.shape) for a in leaves])}"
            )
    return jax.tree_util.tree_unflatten(want, leaves)


def reverse_valid(x: jax.Array, seq_lengths: jax.Array | None) -> jax.Array:
    """Reverse each sequence of x (batch, time, ...) within its first seq_lengths[b] steps; padding stays put.

    y[b, t] = x[b, L_b - 1 - t] for t < L_b, and x[b, t] for t ≥ L_b. Its own inverse.
    """
    if seq_lengths is None:
        return jnp.flip(x, axis=1)
    time = x.shape[1]
    t = jnp.arange(time)[None, :]
    index = jnp.where(t < seq_lengths[:, None], seq_lengths[:, None] - 1 - t, t)
    index = index.reshape(index.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, index, axis=1)


def check_mask(mask: Any, batch: int, time: int, name: str = "mask") -> jax.Array:
    """mask as a bool array (batch, time) (Keras' mask: False steps are skipped); TypeError/ValueError naming `name`."""
    if isinstance(mask, (str, bytes)) or not hasattr(mask, "dtype") and not isinstance(mask, (list, tuple)):
        raise TypeError(f"{name} must be a bool array (batch, time), got {_checks.describe(mask)}")
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise TypeError(f"{name} must be a bool array (batch, time), got an array of dtype {mask.dtype}")
    if mask.shape != (batch, time):
        raise ValueError(f"{name} must have shape (batch, time) = ({batch}, {time}), got shape {tuple(mask.shape)}")
    return mask


def step_mask(batch: int, time: int, lengths: jax.Array | None, mask: jax.Array | None) -> jax.Array | None:
    """(batch, time) bool: the steps that run, t < L_b and mask[b, t]; None when every step runs."""
    keep = None if lengths is None else jnp.arange(time)[None, :] < lengths[:, None]
    if mask is not None:
        keep = mask if keep is None else keep & mask
    return keep


class Recurrent(nn.Module):
    """Runs a cell over a sequence with one `lax.scan`: x (batch, time, features) -> outputs.

    The input projection x W + b is computed for all steps before the scan (time-major, one matrix
    product); each scanned step adds h_{t-1} U and applies the gates (`jdl.nn.cell_scan`).
    seq_lengths (batch,): steps t ≥ L_b leave the carry unchanged and give zero outputs; mask
    (batch, time) bool, as Keras' mask: steps where it is False do the same (both may be given).
    reverse: each sequence is read backwards (with seq_lengths only its first L_b steps, as Keras
    and cuDNN do; with a mask alone, the whole sequence with its mask, as Keras' go_backwards) and
    the outputs are returned in the original time order. Returns outputs (batch, time, units) if
    return_sequences else the last valid output (batch, units) (for reverse, the output after
    reading the whole sequence backwards); with return_state, (outputs, final carry) where the
    carry is h, or (c, h) for an LSTM. unroll: steps per scan iteration. fast_grad: the backward
    pass forms g_U as one product after the backward scan (a custom VJP, exact; see
    `jdl.nn.cell_scan`); False keeps plain JAX differentiation, for `jax.jvp`, `jacfwd` and HVPs.
    """

    cell: _Cell
    return_sequences: bool = False
    return_state: bool = False
    reverse: bool = False
    unroll: int = 1
    fast_grad: bool = True

    def __post_init__(self) -> None:
        check_cell(self.cell)
        for flag in ("return_sequences", "return_state", "reverse", "fast_grad"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {_checks.describe(getattr(self, flag))}")
        _checks.check_number(self.unroll, "unroll", integer=True, positive=True)
        super().__post_init__()

    def __call__(self, x: jax.Array, seq_lengths: jax.Array | None = None, initial_state: Carry | None = None,
                 mask: jax.Array | None = None):
        return self.scan_sequence(x, seq_lengths, initial_state, mask)[0]

    def scan_sequence(self, x: jax.Array, seq_lengths: jax.Array | None = None, initial_state: Carry | None = None,
                      mask: jax.Array | None = None, perturbation: jax.Array | None = None):
        """(what `__call__` returns, h_{t-1} (batch, time, units) in the order the scan reads the steps).

        perturbation (batch, time, G·units) or None: added to each step's h_{t-1} U (+ b_rec), in
        the scan's order; the per-example recurrent rule takes its gradient.
        """
        x = check_sequence(x)
        batch, time = x.shape[0], x.shape[1]
        lengths = None if seq_lengths is None else check_seq_lengths(seq_lengths, batch, time)
        if mask is not None:
            mask = check_mask(mask, batch, time)
        expected = self.cell.initialize_carry(None, (batch, x.shape[2]))
        carry = expected if initial_state is None else check_carry(initial_state, expected)
        keep = step_mask(batch, time, lengths, mask)
        if self.reverse:
            x = reverse_valid(x, lengths)
            keep = None if keep is None else reverse_valid(keep, lengths)
        xs = self.cell.project_inputs(jnp.swapaxes(x, 0, 1))
        carry = jax.tree_util.tree_map(lambda c: c.astype(xs.dtype), carry)
        if time == 0:
            carries = jax.tree_util.tree_map(lambda c: jnp.zeros((0,) + c.shape, c.dtype), carry)
            final = carry
            h_prev = jnp.zeros((batch, 0, self.cell.units), xs.dtype)
        else:
            kernel, bias = self.cell.recurrent_weights()
            carries = cell_scan.scan_cell(
                self.cell.combine, self.cell.output, kernel, bias, xs, carry,
                None if keep is None else jnp.swapaxes(keep, 0, 1).astype(xs.dtype),
                None if perturbation is None else jnp.swapaxes(perturbation, 0, 1),
                unroll=self.unroll, fast_grad=self.fast_grad, additive=self.cell.additive,
                backward_combine=self.cell.backward_combine)
            final = cell_scan.last(carries)
            h_prev = jnp.swapaxes(cell_scan.previous_outputs(self.cell.output, carry, carries), 0, 1)
        if self.return_sequences:
            ys = self.cell.output(carries)
            if keep is not None:
                ys = jnp.where(jnp.swapaxes(keep, 0, 1)[..., None], ys, jnp.zeros_like(ys))
            outputs = jnp.swapaxes(ys, 0, 1)
            if self.reverse:
                outputs = reverse_valid(outputs, lengths)
        else:
            outputs = self.cell.output(final)
        return ((outputs, final) if self.return_state else outputs), h_prev


_MERGES = ("concat", "sum")


class Bidirectional(nn.Module):
    """A forward and a backward `Recurrent` over the same sequence, merged: x (batch, time, features) -> outputs.

    merge="concat": [h_fwd, h_bwd] (…, units_f + units_b); merge="sum": h_fwd + h_bwd (equal units).
    The backward outputs are aligned with the forward ones in time; with return_sequences=False the
    merge is of the forward's last valid output and the backward's output at t = 0. seq_lengths and
    mask as in `Recurrent`. With return_state: (outputs, forward carry, backward carry).
    """

    forward_cell: _Cell
    backward_cell: _Cell
    merge: str = "concat"
    return_sequences: bool = False
    return_state: bool = False
    unroll: int = 1

    def __post_init__(self) -> None:
        check_cell(self.forward_cell, "forward_cell")
        check_cell(self.backward_cell, "backward_cell")
        _checks.check_choice(self.merge, "merge", _MERGES)
        if self.merge == "sum" and self.forward_cell.units != self.backward_cell.units:
            raise ValueError(
                f'merge="sum" needs equal units, got forward_cell.units={self.forward_cell.units} and '
                f"backward_cell.units={self.backward_cell.units}"
            )
        for flag in ("return_sequences", "return_state"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {_checks.describe(getattr(self, flag))}")
        _checks.check_number(self.unroll, "unroll", integer=True, positive=True)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, seq_lengths: jax.Array | None = None,
                 initial_state: tuple[Carry, Carry] | None = None, mask: jax.Array | None = None):
        x = check_sequence(x)
        if initial_state is not None and (not isinstance(initial_state, (tuple, list)) or len(initial_state) != 2):
            raise ValueError(
                f"initial_state must be a pair (forward carry, backward carry), got {_checks.describe(initial_state)}"
            )
        first, second = (None, None) if initial_state is None else initial_state
        options = dict(return_sequences=self.return_sequences, return_state=True, unroll=self.unroll)
        out_f, carry_f = Recurrent(detached(self.forward_cell), name="forward", **options)(x, seq_lengths, first, mask)
        out_b, carry_b = Recurrent(detached(self.backward_cell), reverse=True, name="backward", **options)(
            x, seq_lengths, second, mask)
        outputs = jnp.concatenate([out_f, out_b], axis=-1) if self.merge == "concat" else out_f + out_b
        return (outputs, carry_f, carry_b) if self.return_state else outputs


class StackedRecurrent(nn.Module):
    """Recurrent layers on top of each other, each reading the previous one's output sequence.

    x (batch, time, features) -> (batch, time, units_last) if return_sequences else (batch, units_last);
    with return_state, (outputs, [final carry of each layer]). bidirectional: each layer is a
    `Bidirectional` (merge "concat") of its cell and a copy of it. dropout: inverted dropout on the
    sequence between layers, in training only (rng stream "dropout"). seq_lengths and mask
    (batch, time) bool as in `Recurrent`, for every layer.
    """

    cells: Sequence[_Cell]
    return_sequences: bool = False
    return_state: bool = False
    bidirectional: bool = False
    dropout: float = 0.0
    unroll: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.cells, (str, bytes)) or not isinstance(self.cells, Sequence) or not self.cells:
            raise TypeError(f"cells must be a non-empty sequence of recurrent cells, got {_checks.describe(self.cells)}")
        for index, item in enumerate(self.cells):
            check_cell(item, f"cells[{index}]")
        for flag in ("return_sequences", "return_state", "bidirectional"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {_checks.describe(getattr(self, flag))}")
        _checks.check_number(self.dropout, "dropout", nonnegative=True)
        if not self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        _checks.check_number(self.unroll, "unroll", integer=True, positive=True)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, seq_lengths: jax.Array | None = None, train: bool = False,
                 mask: jax.Array | None = None):
        x = check_sequence(x)
        carries = []
        last = len(self.cells) - 1
        for index, layer_cell in enumerate(self.cells):
            sequences = self.return_sequences or index < last
            if self.bidirectional:
                out = Bidirectional(detached(layer_cell), detached(layer_cell), return_sequences=sequences,
                                    return_state=True, unroll=self.unroll, name=f"layer_{index}")(
                    x, seq_lengths, None, mask)
                x, carry = out[0], out[1:]
            else:
                x, carry = Recurrent(detached(layer_cell), return_sequences=sequences, return_state=True, unroll=self.unroll,
                                     name=f"layer_{index}")(x, seq_lengths, None, mask)
            carries.append(carry)
            if self.dropout and index < last:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return (x, carries) if self.return_state else x
