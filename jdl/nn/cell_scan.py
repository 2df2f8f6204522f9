"""One scan of a recurrent cell over time, shared by `Recurrent` and the per-example recurrent rule.

With p_t = x_t W + b projected before the scan, each step forms r_t = h_{t-1} U (+ b_rec) + e_t
(e_t: an optional perturbation, whose gradient is ρ_t = ∂L/∂r_t) and the cell's gates
`combine(carry_{t-1}, p_t, r_t)`; at steps where keep_t is False the carry is held.

The fast backward pass (cuDNN's order) runs the backward scan for the step cotangents only:
δp_t = ∂L/∂p_t, ρ_t and the carry's cotangent, then forms the weight gradients after it, each as
one large product over all steps and examples: g_U = Σ_t h_{t-1}ᵀ ρ_t, g_b_rec = Σ_t ρ_t (the
input kernel's g_W = Σ_t x_tᵀ δp_t follows from the projection outside the scan, one product too).
A `jax.custom_vjp`, so forward-mode (`jax.jvp`, `jacfwd`, Hessian-vector products by jvp-of-grad)
needs `fast_grad=False`: the plain `lax.scan`, differentiated by JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Carry = Any
Combine = Callable[[Carry, jax.Array, jax.Array], tuple[Carry, jax.Array]]
Output = Callable[[Carry], jax.Array]


def _recurrent_product(h: jax.Array, kernel: jax.Array, bias: jax.Array | None, e: jax.Array | None) -> jax.Array:
    r = h @ kernel
    if bias is not None:
        r = r + bias
    if e is not None:
        r = r + e.astype(r.dtype)
    return r


def _hold(keep: jax.Array | None, new: Carry, old: Carry) -> Carry:
    if keep is None:
        return new
    return jax.tree_util.tree_map(lambda a, b: jnp.where(keep[:, None] > 0, a, b), new, old)


def _plain(combine: Combine, output: Output, unroll: int, kernel, bias, projected, carry, keep, perturbation,
           keep_products: bool = False):
    """The carries after every step, a tree of (T, batch, ...) leaves, by a plain `lax.scan` (and every r_t)."""

    def body(carry, inputs):
        p, k, e = inputs
        r = _recurrent_product(output(carry), kernel, bias, e)
        new, _ = combine(carry, p, r)
        new = _hold(k, new, carry)
        return new, ((new, r) if keep_products else new)

    return jax.lax.scan(body, carry, (projected, keep, perturbation), unroll=unroll)[1]


def _previous(carry0: Carry, carries: Carry) -> Carry:
    """carry_{t-1} for every t: carry0 followed by carries[:-1]."""
    return jax.tree_util.tree_map(lambda c0, cs: jnp.concatenate([c0[None], cs[:-1]], axis=0), carry0, carries)


def _fast(combine: Combine, output: Output, unroll: int, additive: bool, backward_combine: Combine) -> Callable:
    """The scan of `_plain` with the fast backward pass, as a custom_vjp of (kernel, bias, projected, carry0, keep, e).

    additive: the gates read p_t + r_t only (SimpleRNN, LSTM), so ∂L/∂p_t = ρ_t and one stack serves both.
    backward_combine: the gates the backward pass re-runs and differentiates (the same values as combine's).
    """

    @jax.custom_vjp
    def scan(kernel, bias, projected, carry, keep, perturbation):
        return _plain(combine, output, unroll, kernel, bias, projected, carry, keep, perturbation)

    def forward(kernel, bias, projected, carry, keep, perturbation):
        carries, products = _plain(combine, output, unroll, kernel, bias, projected, carry, keep, perturbation,
                                   keep_products=True)
        return carries, (kernel, bias, projected, carry, keep, perturbation, carries, products)

    def backward(residuals, cotangents):
        kernel, bias, projected, carry0, keep, perturbation, carries, products = residuals
        previous = _previous(carry0, carries)

        def gates(carry, p, r):
            return backward_combine(carry, p, r)[0]

        def body(d_carry, inputs):
            g, prev, p, r, k = inputs
            d_new = jax.tree_util.tree_map(jnp.add, g, d_carry)
            through = d_new if k is None else jax.tree_util.tree_map(lambda d: jnp.where(k[:, None] > 0, d, 0), d_new)
            _, pullback = jax.vjp(gates, prev, p, r)
            d_prev, d_p, d_r = pullback(through)
            (d_h,) = jax.vjp(output, prev)[1](d_r @ kernel.T)
            d_prev = jax.tree_util.tree_map(jnp.add, d_prev, d_h)
            if k is not None:
                held = jax.tree_util.tree_map(lambda d: jnp.where(k[:, None] > 0, 0, d), d_new)
                d_prev = jax.tree_util.tree_map(jnp.add, d_prev, held)
            return d_prev, (d_r if additive else (d_p, d_r))

        zeros = jax.tree_util.tree_map(jnp.zeros_like, carry0)
        d_carry0, steps = jax.lax.scan(
            body, zeros, (cotangents, previous, projected, products, keep), reverse=True, unroll=unroll)
        d_projected, d_recurrent = (steps, steps) if additive else steps
        h_prev = output(previous)
        d_kernel = (h_prev.reshape(-1, h_prev.shape[-1]).T @ d_recurrent.reshape(-1, d_recurrent.shape[-1]))
        d_bias = None if bias is None else d_recurrent.sum(axis=(0, 1)).astype(bias.dtype)
        d_keep = None if keep is None else jnp.zeros_like(keep)
        d_perturbation = None if perturbation is None else d_recurrent.astype(perturbation.dtype)
        return d_kernel.astype(kernel.dtype), d_bias, d_projected, d_carry0, d_keep, d_perturbation

    scan.defvjp(forward, backward)
    return scan


def scan_cell(combine: Combine, output: Output, kernel: jax.Array, bias: jax.Array | None, projected: jax.Array,
              carry: Carry, keep: jax.Array | None = None, perturbation: jax.Array | None = None, *,
              unroll: int = 1, fast_grad: bool = True, additive: bool = False,
              backward_combine: Combine | None = None) -> Carry:
    """The carry after every step: a tree like `carry` with leaves (T, batch, ...), time-major.

    combine(carry, p_t, r_t) -> (new carry, h_t): the cell's gates; output(carry) -> h (batch, units).
    kernel U (units, G·units), bias b_rec (G·units,) or None, projected p (T, batch, G·units),
    carry: the initial carry, keep (T, batch) float (1: run the step, 0: hold the carry) or None,
    perturbation e (T, batch, G·units) or None (added to every r_t). fast_grad: the custom backward
    pass (module docstring); False: the plain scan, differentiable in every mode. additive: combine
    reads only p_t + r_t (its gradients w.r.t. both are equal; saves one stack). backward_combine: the
    same gates written for the fast backward pass to differentiate (default: combine). T must be > 0.
    """
    if fast_grad:
        return _fast(combine, output, unroll, additive, backward_combine or combine)(
            kernel, bias, projected, carry, keep, perturbation)
    return _plain(combine, output, unroll, kernel, bias, projected, carry, keep, perturbation)


def last(carries: Carry) -> Carry:
    """The final carry: every leaf at its last step."""
    return jax.tree_util.tree_map(lambda c: c[-1], carries)


def previous_outputs(output: Output, carry0: Carry, carries: Carry) -> jax.Array:
    """h_{t-1} for every step (T, batch, units): the output of the initial carry, then of carries[:-1]."""
    return output(_previous(carry0, carries))
