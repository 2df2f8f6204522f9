"""The four forms one example's gradient of a covered leaf takes, each with its squared norm and its value.

A layer rule describes each leaf it owns by one form, built from the layer's inputs a_t and output
gradients δ_t at positions t (one example); the calls of a shared layer merge their forms.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


def wide(x: jax.Array) -> jax.Array:
    """x in at least float32 (float64 stays float64): sums of squares need the range."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def outer_sq_norm(a: jax.Array, d: jax.Array) -> jax.Array:
    """‖Σ_t a_t d_tᵀ‖²_F for a (T, p), d (T, q), by the cheaper of the Gram form and the direct product."""
    t, p = a.shape
    q = d.shape[1]
    if t == 1:
        return jnp.sum(a * a) * jnp.sum(d * d)
    if t * t * (p + q) <= t * p * q + p * q:
        return jnp.sum((a @ a.T) * (d @ d.T))
    g = a.T @ d
    return jnp.sum(g * g)


class Form:
    """One example's gradient of one leaf, kept in a factored form."""

    def sq_norm(self) -> jax.Array:
        """‖g‖², a scalar."""
        raise NotImplementedError

    def gradient(self, shape: tuple[int, ...]) -> jax.Array:
        """g itself, of the leaf's shape."""
        raise NotImplementedError

    def moment_terms(self, shape: tuple[int, ...]) -> tuple[jax.Array, ...]:
        """What Σ_i g_i and Σ_i g_i² are summed from: (g,), or (a, δ) when g = a δᵀ (see `moments`)."""
        return (self.gradient(shape),)

    def merge(self, other: Form) -> Form:
        """The form of g + other's g: a layer called more than once (shared weights).

        Two forms of one kind merge in that kind; a Conv kernel by the Gram form in one call and
        directly in another (different sizes) merges as the sum of both gradients.
        """
        if type(other) is not type(self):
            return Direct(self.gradient((-1,)) + other.gradient((-1,)))
        return self.combine(other)

    def combine(self, other: Form) -> Form:
        """merge for a form of the same kind: the positions of both (T + T'), concatenated."""
        return type(self)(*[jnp.concatenate([getattr(self, f.name), getattr(other, f.name)])
                            for f in dataclasses.fields(self)])


@dataclasses.dataclass(frozen=True, eq=False)
class Outer(Form):
    """g = Σ_t a_t d_tᵀ = aᵀd for a (T, p), d (T, q); ‖g‖² = Σ_t,t' (a_t·a_t')(d_t·d_t')."""

    a: jax.Array
    d: jax.Array

    def sq_norm(self):
        return outer_sq_norm(self.a, self.d)

    def gradient(self, shape):
        return (self.a.T @ self.d).reshape(shape)

    def moment_terms(self, shape):
        if self.a.shape[0] == 1:
            return (self.a[0], self.d[0])
        return (self.gradient(shape),)


@dataclasses.dataclass(frozen=True, eq=False)
class Summed(Form):
    """g = Σ_t d_t for d (T, q) (a bias); ‖g‖² = ‖Σ_t d_t‖²."""

    d: jax.Array

    def sq_norm(self):
        s = self.d.sum(0)
        return jnp.sum(s * s)

    def gradient(self, shape):
        return self.d.sum(0).reshape(shape)


@dataclasses.dataclass(frozen=True, eq=False)
class Direct(Form):
    """g itself, flattened: ‖g‖² = Σ g²."""

    g: jax.Array

    def sq_norm(self):
        return jnp.sum(self.g * self.g)

    def gradient(self, shape):
        return self.g.reshape(shape)

    def combine(self, other):
        return Direct(self.g + other.g)


@dataclasses.dataclass(frozen=True, eq=False)
class Rows(Form):
    """Rows of a table looked up by ids (T,): g_r = Σ_{t: id_t = r} d_t; ‖g‖² = Σ_t,t' [id_t = id_t'] (d_t·d_t')."""

    ids: jax.Array
    d: jax.Array

    def sq_norm(self):
        same = self.ids[:, None] == self.ids[None, :]
        return jnp.sum(jnp.where(same, self.d @ self.d.T, 0.0))

    def gradient(self, shape):
        return jax.ops.segment_sum(self.d, self.ids, num_segments=shape[0]).reshape(shape)


def merge(terms: list[dict[int, Form]]) -> dict[int, Form]:
    """{leaf: form} of several calls; a leaf used by more than one call gets its forms merged (first-use order)."""
    merged: dict[int, Form] = {}
    for term in terms:
        for leaf, form in term.items():
            merged[leaf] = merged[leaf].merge(form) if leaf in merged else form
    return merged
