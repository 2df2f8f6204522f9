"""Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks", Sec. 3.2, Fig. 6.

The one-unit recurrent model x_t = w·σ(x_(t-1)) + b (σ the logistic sigmoid) from x_0 = 0.5, loss
E(w, b) = (x_T - target)². For w > 4 the map has two stable fixed points over a range of b; where the one
that x_0 falls into disappears, x_T jumps between them and E has a wall of huge curvature (the cliff).
Gradient descent from the lower branch walks to the wall; the plain step there is thrown far, the step
with norm clipping (g ← g·min(1, c/‖g‖)) is at most lr·c and crosses it. Plain and clipped descent are
one vmapped program (plain = threshold ∞).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl import _checks

PAPER = {"model": "x_t = w·σ(x_(t-1)) + b, one hidden unit", "claim": "Fig. 6: gradient descent hitting the "
         "high-curvature wall takes a huge step and is thrown away; rescaling the gradient when its norm exceeds a "
         "threshold keeps the step small and crosses the wall"}
JUMP_FACTOR = 20.0  # "jumps": the largest plain step is at least this many times the clipped step bound lr·c


def final_state(w: jax.Array, b: jax.Array, steps: int, x0: float) -> jax.Array:
    """x_T of x_t = w·σ(x_(t-1)) + b after `steps` steps from x0."""
    def step(x, _):
        return w * jax.nn.sigmoid(x) + b, None

    return jax.lax.scan(step, jnp.full_like(w, x0), None, length=steps)[0]


def error(params: jax.Array, steps: int, x0: float, target: float) -> jax.Array:
    """E(w, b) = (x_T - target)², params = (w, b)."""
    return (final_state(params[0], params[1], steps, x0) - target) ** 2


def descend(start: jax.Array, threshold: jax.Array, *, learning_rate: float, iterations: int, steps: int, x0: float,
            target: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(points (iterations + 1, 2), E before each step (iterations,), ‖∇E‖ (iterations,)) of descent with norm clipping."""
    value_and_grad = jax.value_and_grad(error)

    def step(p, _):
        e, g = value_and_grad(p, steps, x0, target)
        norm = jnp.linalg.norm(g)
        p = p - learning_rate * g * jnp.minimum(1.0, threshold / norm)
        return p, (p, e, norm)

    _, (points, errors, norms) = jax.lax.scan(step, start, None, length=iterations)
    return jnp.concatenate([start[None], points]), errors, norms


def pascanu_study(*, steps: int = 50, x0: float = 0.5, target: float = 0.7, start: tuple[float, float] = (5.0, -4.0),
                  learning_rate: float = 0.01, clipnorm: float = 1.0, iterations: int = 400,
                  w_range: tuple[float, float] = (1.0, 9.0), b_range: tuple[float, float] = (-6.0, 0.0),
                  grid: int = 161) -> dict[str, Any]:
    """The error surface of the one-unit RNN on a grid, and plain vs clipped gradient descent across its cliff.

    Arguments: steps (T), x0, target, start (w, b), learning_rate, clipnorm (c), iterations (descent steps),
    w_range / b_range / grid (the surface, grid × grid points). Each run records its path, errors, gradient
    norms, step lengths, the largest step and the x_T it started and ended at (the sign says the branch).
    """
    for value, name in ((steps, "steps"), (iterations, "iterations"), (grid, "grid")):
        _checks.check_number(value, name, integer=True, positive=True)
    for value, name in ((learning_rate, "learning_rate"), (clipnorm, "clipnorm")):
        _checks.check_number(value, name, positive=True)
    for pair, name in ((start, "start"), (w_range, "w_range"), (b_range, "b_range")):
        if len(tuple(pair)) != 2:
            raise ValueError(f"{name} must be a pair of numbers, got {pair!r}")
    ws = np.linspace(*w_range, grid, dtype=np.float32)
    bs = np.linspace(*b_range, grid, dtype=np.float32)
    surface = jax.jit(jax.vmap(jax.vmap(lambda w, b: error(jnp.stack([w, b]), steps, x0, target), (0, None)),
                               (None, 0)))(jnp.asarray(ws), jnp.asarray(bs))
    run = jax.jit(jax.vmap(lambda t: descend(jnp.asarray(start, jnp.float32), t, learning_rate=learning_rate,
                                             iterations=iterations, steps=steps, x0=x0, target=target)))
    points, errors, norms = jax.device_get(run(jnp.asarray([np.inf, clipnorm], jnp.float32)))
    result: dict[str, Any] = {"study": "pascanu", "steps": steps, "x0": x0, "target": target, "start": list(start),
                              "learning_rate": learning_rate, "clipnorm": clipnorm, "iterations": iterations,
                              "w": ws.tolist(), "b": bs.tolist(), "surface": np.asarray(surface).tolist(),
                              "paper": PAPER, "jump_factor": JUMP_FACTOR, "runs": {}}
    for i, name in enumerate(("plain", "clipped")):
        path = np.asarray(points[i], np.float64)
        lengths = np.linalg.norm(np.diff(path, axis=0), axis=1)
        x_start, x_end = (float(final_state(jnp.float32(p[0]), jnp.float32(p[1]), steps, x0)) for p in (path[0], path[-1]))
        result["runs"][name] = {"path": path.tolist(), "errors": np.asarray(errors[i], np.float64).tolist(),
                                "grad_norms": np.asarray(norms[i], np.float64).tolist(), "step_lengths": lengths.tolist(),
                                "largest_step": float(lengths.max()), "largest_step_at": int(lengths.argmax()),
                                "largest_grad_norm": float(np.max(norms[i])), "median_step": float(np.median(lengths)),
                                "final_error": float(error(jnp.asarray(path[-1], jnp.float32), steps, x0, target)),
                                "x_T_start": x_start, "x_T_end": x_end}
    return result
