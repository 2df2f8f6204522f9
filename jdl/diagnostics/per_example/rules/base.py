"""What a layer rule is: which calls of one layer kind it covers, and the forms of their per-example gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jdl.diagnostics.per_example.rules.forms import Form


def module_params(module: nn.Module) -> dict[str, Any]:
    """The parameter arrays module owns directly, by name ({} outside a bound scope)."""
    try:
        return dict(module.variables.get("params", {}))
    except Exception:  # a module outside a bound scope owns no variables
        return {}


class Rule:
    """One layer kind: with a_t its inputs and δ_t = ∂ℓ_i/∂z_t at output position t, each owned leaf's gradient as a Form.

    δ is the gradient w.r.t. a zero perturbation added to the layer's output (`run`), of the
    shape that `trace` returns.
    """

    kind: str = ""

    def accepts(self, module: nn.Module, x: Any) -> bool:
        """Whether the rule is exact for module called on x alone (its configuration and x's shape)."""
        return True

    def covers(self, module: nn.Module, args: tuple, kwargs: dict) -> bool:
        """Whether this `__call__(*args, **kwargs)` of module is one the rule is exact for."""
        return not kwargs and len(args) == 1 and self.accepts(module, args[0])

    def own(self, module: nn.Module, args: tuple, kwargs: dict) -> dict[str, Any]:
        """The parameter arrays this call uses, by role."""
        return module_params(module)

    def config(self, module: nn.Module, x: Any) -> tuple[Any, ...]:
        """The static configuration the forms need (hashable; part of the plan)."""
        return ()

    def trace(self, module: nn.Module, next_fun: Callable, args: tuple, kwargs: dict) -> tuple[Any, jax.ShapeDtypeStruct]:
        """(the call's output, the shape of its perturbation), while the plan is traced."""
        out = next_fun(*args, **kwargs)
        return out, jax.ShapeDtypeStruct(jnp.shape(out), jnp.result_type(out))

    def run(self, module: nn.Module, next_fun: Callable, args: tuple, kwargs: dict,
            perturbation: jax.Array) -> tuple[Any, jax.Array, Any]:
        """(output + perturbation, the inputs a to record, the output)."""
        out = next_fun(*args, **kwargs)
        return out + perturbation.astype(jnp.result_type(out)), args[0], out

    def extra(self, a: jax.Array, call: Any) -> Any:
        """What the forms need besides a and δ, computed in the forward pass (None)."""
        return None

    def forms(self, call: Any, a: jax.Array, delta: jax.Array, extra: Any) -> dict[int, Form]:
        """{leaf index: Form} of one example's gradient of each leaf the call owns (call.leaves: role → leaf)."""
        raise NotImplementedError
