"""McCandlish, Kaplan, Amodei et al. (2018), "An empirical model of large-batch training": the simple noise scale.

B_simple = tr(Σ) / |G|², Σ the per-example gradient covariance and G the true gradient. Two estimators
from the same batches of B_big examples, each averaged over `batches` batches before dividing:
- per-example (jdl's exact per-example norms): tr(Σ) ≈ B/(B-1) · (mean_i |g_i|² - |ḡ|²), |G|² ≈ |ḡ|² - tr(Σ)/B;
- two batch sizes (their App. A, B_small = the first `small` examples of each batch):
  |G|² ≈ (B_big |G_big|² - B_small |G_small|²) / (B_big - B_small),
  tr(Σ) ≈ (|G_small|² - |G_big|²) / (1/B_small - 1/B_big).
Beside them the exact value on the whole training set (mean over all examples, population covariance).
An MLP trains with SGD between the checkpoints inside one lax.scan.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdl import _checks

PAPER = {"claim": "the noise scale grows over training as the loss falls (their Sec. 3 and figures; the paper's "
         "own values depend on their models and are not compared here)",
         "estimator": "App. A: unbiased |G|² and tr(Σ) from two batch sizes, averaged, then divided"}
AGREEMENT_TOLERANCE = 0.25  # |per-example - two-batch| / two-batch at every checkpoint


class MLP(nn.Module):
    """x (n, d) -> Dense(hidden) -> relu -> Dense(hidden) -> relu -> Dense(classes)."""

    hidden: int = 128
    classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x.reshape(x.shape[0], -1)
        for _ in range(2):
            h = nn.relu(nn.Dense(self.hidden)(h))
        return nn.Dense(self.classes)(h)


def _data(mnist: str | None, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    if mnist is None:
        from jdl.diagnostics.studies import _digits

        x, y = _digits(10_000, seed)
        return x, y, "digits"
    from jdl import data

    dataset = data.load("mnist", path=mnist, split="train", flatten=True)
    return np.asarray(dataset.x_train, np.float32), np.asarray(dataset.y_train, np.int32), "MNIST"


def estimates(sq_norm_sum: np.ndarray, mean_sq: np.ndarray, small_sq: np.ndarray, big: int, small: int) -> dict:
    """Both estimators from per-batch Σ_i |g_i|² (k,), |ḡ_big|² (k,) and |ḡ_small|² (k,), averaged over the k batches."""
    trace_pe = big / (big - 1) * (sq_norm_sum / big - mean_sq)
    g2_pe = mean_sq - trace_pe / big
    g2_two = (big * mean_sq - small * small_sq) / (big - small)
    trace_two = (small_sq - mean_sq) / (1 / small - 1 / big)
    return {"per_example": {"g2": float(g2_pe.mean()), "trace": float(trace_pe.mean()),
                            "b_simple": float(trace_pe.mean() / g2_pe.mean())},
            "two_batch": {"g2": float(g2_two.mean()), "trace": float(trace_two.mean()),
                          "b_simple": float(trace_two.mean() / g2_two.mean())}}


def _tree_sq(tree: Any) -> jax.Array:
    return sum(jnp.sum(leaf ** 2) for leaf in jax.tree_util.tree_leaves(tree))


def noise_scale_study(*, mnist: str | None = None, hidden: int = 128, steps: int = 1000, checkpoints: int = 10,
                      batch_size: int = 64, learning_rate: float = 0.01, big: int = 512, small: int = 32,
                      batches: int = 256, seed: int = 0) -> dict[str, Any]:
    """B_simple at `checkpoints` points of SGD training (and at init), by both estimators and exactly.

    Arguments: mnist (a directory of MNIST files; default digits), hidden (MLP width), steps / batch_size /
    learning_rate (SGD), big / small (batch sizes of the estimators), batches (batches averaged per
    checkpoint), seed. Records per checkpoint: step, training loss on the whole set, both estimates
    (g2, trace, b_simple) and "exact".
    """
    from jdl.diagnostics import per_example_grad_norms

    for value, name in ((hidden, "hidden"), (steps, "steps"), (checkpoints, "checkpoints"),
                        (batch_size, "batch_size"), (big, "big"), (small, "small"), (batches, "batches")):
        _checks.check_number(value, name, integer=True, positive=True)
    _checks.check_number(learning_rate, "learning_rate", positive=True)
    if not 1 < small < big:
        raise ValueError(f"small must be between 2 and big - 1 ({big - 1}), got {small}")
    if mnist is not None and not isinstance(mnist, str):
        raise TypeError(f"mnist must be a directory path (str), got {_checks.describe(mnist)}")
    x, y, source = _data(mnist, seed)
    model = MLP(hidden=hidden)
    params = model.init(jax.random.PRNGKey(seed), x[:1])["params"]
    tx = optax.sgd(learning_rate)
    xs, ys = jnp.asarray(x), jnp.asarray(y)

    def batch_loss(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, xb), yb).mean()

    def example_loss(p, xi, yi):
        return batch_loss(p, xi[None], yi[None])

    @jax.jit
    def train(p, opt, key):
        def step(carry, k):
            p, opt = carry
            pick = jax.random.randint(k, (batch_size,), 0, xs.shape[0])
            g = jax.grad(batch_loss)(p, xs[pick], ys[pick])
            change, opt = tx.update(g, opt, p)
            return (optax.apply_updates(p, change), opt), None

        return jax.lax.scan(step, (p, opt), jax.random.split(key, steps // checkpoints))[0]

    @jax.jit
    def batch_moments(p, xb, yb):
        """|ḡ_big|², |ḡ_small|² per batch (k,), xb (k, big, ...), and the loss on the whole set."""
        def one(xi, yi):
            return (_tree_sq(jax.grad(batch_loss)(p, xi, yi)),
                    _tree_sq(jax.grad(batch_loss)(p, xi[:small], yi[:small])))

        return (*jax.vmap(one)(xb, yb), batch_loss(p, xs, ys))

    rng = np.random.default_rng(seed)
    full_mean_sq = jax.jit(lambda p: _tree_sq(jax.grad(batch_loss)(p, xs, ys)))
    records, opt, key = [], tx.init(params), jax.random.PRNGKey(seed + 1)
    for checkpoint in range(checkpoints + 1):
        if checkpoint:
            key, sub = jax.random.split(key)
            params, opt = train(params, opt, sub)
        picks = rng.integers(0, len(x), (batches, big))  # with replacement: i.i.d. examples, unbiased estimators
        big_sq, small_sq, loss = jax.device_get(batch_moments(params, xs[picks], ys[picks]))
        all_sq = np.asarray(per_example_grad_norms(example_loss, params, (xs, ys), chunk_size=2048), np.float64) ** 2
        g2 = float(full_mean_sq(params))
        record = {"step": checkpoint * (steps // checkpoints), "loss": float(loss),
                  **estimates(all_sq[picks].sum(axis=1), np.asarray(big_sq, np.float64),
                              np.asarray(small_sq, np.float64), big, small),
                  "exact": {"g2": g2, "trace": float(all_sq.mean() - g2), "b_simple": float((all_sq.mean() - g2) / g2)}}
        records.append(record)
    return {"study": "noise-scale", "data": source, "examples": int(len(x)), "hidden": hidden, "steps": steps,
            "batch_size": batch_size, "learning_rate": learning_rate, "big": big, "small": small, "batches": batches,
            "paper": PAPER, "tolerance": AGREEMENT_TOLERANCE, "records": records}
