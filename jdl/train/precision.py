"""Mixed precision: the forward and backward pass in a low-precision compute dtype, everything else in float32.

With precision "bfloat16" or "float16" the parameters and the floating inputs are cast to the
compute dtype at the start of each forward pass and the outputs back to float32, so
parameters, gradients (the cast's transpose returns them in float32), optimizer state, the loss,
metrics and the gradient monitor's statistics stay float32. "float32" changes nothing.
float16 (range ±65504) trains with dynamic loss scaling (jdl.train.loss_scale): a step whose
gradient overflows is skipped and the scale halved. bfloat16 has float32's range and needs none.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

PRECISIONS = ("float32", "bfloat16", "float16")


def check(precision: Any) -> str:
    """`precision` if it is one of PRECISIONS; ValueError naming the option otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    return precision


def cast_floats(tree: Any, dtype: Any) -> Any:
    """Every floating leaf of `tree` as `dtype` (integer and boolean leaves unchanged)."""
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a, tree)


def compute(precision: str, params: Any, x: Any) -> tuple[Any, Any]:
    """(params, x) in the compute dtype of `precision`, unchanged for "float32"."""
    if precision == "float32":
        return params, x
    return cast_floats(params, precision), cast_floats(x, precision)


def outputs(precision: str, tree: Any) -> Any:
    """Model outputs back in float32 (unchanged for "float32")."""
    return tree if precision == "float32" else cast_floats(tree, jnp.float32)


def like(precision: str, updates: dict[str, Any], model_state: Any) -> dict[str, Any]:
    """Updated model-state collections (batch statistics) in the dtypes of the state they replace."""
    if precision == "float32":
        return updates
    return {name: jax.tree_util.tree_map(lambda new, old: new.astype(old.dtype), value, model_state[name])
            if name in model_state else value for name, value in updates.items()}
