"""The layer rules of the fast path, one per layer kind, by layer type; each module's docstring has its formulas.

Only exact types are covered: a subclass may change what the layer computes.
"""

from __future__ import annotations

import flax.linen as nn

from jdl.diagnostics.per_example.rules.base import Rule, module_params
from jdl.diagnostics.per_example.rules.conv import ConvRule
from jdl.diagnostics.per_example.rules.dense import DenseGeneralRule, DenseRule
from jdl.diagnostics.per_example.rules.embed import EmbedRule
from jdl.diagnostics.per_example.rules.forms import Form, merge, wide
from jdl.diagnostics.per_example.rules.layer_norm import LayerNormRule
from jdl.diagnostics.per_example.rules.recurrent import RecurrentRule
from jdl.nn.embedding import Embedding
from jdl.nn.recurrent import Recurrent

_EMBED = EmbedRule()
RULES: dict[type, Rule] = {
    nn.Dense: DenseRule(),
    nn.DenseGeneral: DenseGeneralRule(),
    nn.Conv: ConvRule(),
    nn.Embed: _EMBED,
    Embedding: _EMBED,
    nn.LayerNorm: LayerNormRule(),
    Recurrent: RecurrentRule(),
}
BY_KIND: dict[str, Rule] = {rule.kind: rule for rule in RULES.values()}


def rule_for(module: nn.Module) -> Rule | None:
    """The rule of module's exact type, or None."""
    return RULES.get(type(module))


__all__ = ["BY_KIND", "RULES", "Form", "Rule", "merge", "module_params", "rule_for", "wide"]
