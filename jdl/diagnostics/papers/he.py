"""He et al. (2015), "Delving deep into rectifiers", Sec. 2.2 and Fig. 3: a 30-layer plain ReLU net, Xavier vs He init.

Signal: std of each layer's ReLU activations against the closed form. With y_l = a_(l-1) W_l, a_l = relu(y_l),
x ~ N(0, 1) and n·Var[W] = c (Xavier c = 1, He c = 2): Var[y_1] = c, Var[y_l] = (c/2)·Var[y_(l-1)], and
std(a_l) = √(1/2 - 1/(2π)) · √Var[y_l] (the std of a rectified N(0, σ²) is σ·√(1/2 - 1/(2π))).
Training: the same depth as a DeepMLP on digits (input layer, depth - 2 hidden, head), full-batch SGD;
both initializers run through one compiled program (`stacked_mlp`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from jdl import _checks

INITS = {"xavier_normal": 1.0, "he_normal": 2.0}  # n · Var[W]
RECTIFIED_STD = math.sqrt(0.5 - 1 / (2 * math.pi))
PAPER = {"xavier_ratio_per_layer": 1 / math.sqrt(2), "he_ratio_per_layer": 1.0,
         "training": "Fig. 3: the 30-layer model with Xavier init completely stalls; with He init it converges"}
STALLED = 0.95  # final loss ≥ 0.95 · ln(classes): nothing learned
CONVERGED = 0.5  # final loss ≤ 0.5 · ln(classes): learning


def closed_form_std(gain: float, depth: int) -> np.ndarray:
    """std(a_l) for l = 1 … depth when n·Var[W] = gain on N(0, 1) inputs: √(1/2 - 1/(2π)) · √gain · (gain/2)^((l-1)/2)."""
    layers = np.arange(depth)
    return RECTIFIED_STD * np.sqrt(gain) * (gain / 2) ** (layers / 2)


def _train(depth: int, width: int, steps: int, learning_rate: float, examples: int, seeds: int, seed: int):
    from jdl.diagnostics import stacked_mlp
    from jdl.diagnostics.studies import DeepMLP, _digits

    hidden = depth - 2
    data = [_digits(examples, seed + k) for k in range(seeds)]
    batch = [(init, k) for init in INITS for k in range(seeds)]
    run = stacked_mlp.trainer("relu", False, False, steps, learning_rate, None)
    losses = np.stack([jax.device_get(run(stacked_mlp.stack_variables(
        DeepMLP(width=width, depth=hidden, kernel_init=init).init(jax.random.PRNGKey(seed + k), data[k][0][:2]),
        hidden, False), data[k][0], data[k][1])[2]) for init, k in batch])
    return {init: np.asarray(losses[i * seeds:(i + 1) * seeds], np.float64) for i, init in enumerate(INITS)}


def he_study(depth: int = 30, width: int = 256, *, signal_width: int = 512, signal_examples: int = 1000,
             steps: int = 300, learning_rate: float = 0.02, examples: int = 512, seeds: int = 1,
             seed: int = 0) -> dict[str, Any]:
    """He et al.'s two results: activation std per layer vs the closed form, and training loss curves per init.

    Arguments: depth (weight layers), width (of the trained net), signal_width / signal_examples (the
    bias-free signal net on N(0, 1) inputs, `studies.init_study`), steps / learning_rate / examples
    (full-batch SGD on digits), seeds (curves as mean ± std over seeds seed … seed + seeds - 1).
    """
    from jdl.diagnostics.studies import init_study

    for value, name in ((depth, "depth"), (width, "width"), (signal_width, "signal_width"),
                        (signal_examples, "signal_examples"), (steps, "steps"), (examples, "examples"),
                        (seeds, "seeds")):
        _checks.check_number(value, name, integer=True, positive=True)
    _checks.check_number(learning_rate, "learning_rate", positive=True)
    if depth < 3:
        raise ValueError(f"depth must be at least 3 (input layer, a hidden layer, head), got {depth}")
    signal = init_study(depth=depth, width=signal_width, inits=tuple(INITS), examples=signal_examples, seed=seed)
    losses = _train(depth, width, steps, learning_rate, examples, seeds, seed)
    chance = math.log(10)
    result: dict[str, Any] = {"study": "he", "depth": depth, "width": width, "signal_width": signal_width,
                              "steps": steps, "learning_rate": learning_rate, "examples": examples, "seeds": seeds,
                              "chance_loss": chance, "paper": PAPER, "stalled_below": STALLED,
                              "converged_below": CONVERGED, "inits": {}}
    for name, gain in INITS.items():
        stds = np.asarray(signal["stds"][name])
        closed = closed_form_std(gain, depth)
        curve = losses[name]
        result["inits"][name] = {
            "activation_std": stds.tolist(), "closed_form_std": closed.tolist(),
            "measured_over_closed_form": (stds / closed).tolist(), "ratio_per_layer": signal["ratio_per_layer"][name],
            "losses": curve.mean(axis=0).tolist(), "losses_spread": curve.std(axis=0).tolist(),
            "final_loss": float(curve[:, -1].mean()), "finite": bool(np.all(np.isfinite(curve)))}
    return result
