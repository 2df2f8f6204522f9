"""Embedding lookups (flax Embed, jdl Embedding): g_E[r] = Σ_{t: id_t = r} δ_t, ‖g_E‖² = Σ_t,t' [id_t = id_t'] (δ_t·δ_t')."""

from __future__ import annotations

from jdl.diagnostics.per_example.rules.base import Rule
from jdl.diagnostics.per_example.rules.forms import Rows, wide


class EmbedRule(Rule):
    """a: the looked-up ids (any shape), δ (..., features)."""

    kind = "embed"

    def forms(self, call, a, delta, extra):
        roles = dict(call.leaves)
        d = wide(delta.reshape(-1, delta.shape[-1]))
        return {roles.get("embedding", roles.get("embeddings")): Rows(a.reshape(-1), d)}
