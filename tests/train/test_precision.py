"""Mixed precision (bfloat16/float16 compute, float32 state) and gradient accumulation (optax.MultiSteps)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import data, optim
from jdl.models import MLP
from jdl.train import Trainer, precision


def digits_trainer(compute):
    return Trainer(MLP(hidden=(64,), outputs=10), loss="sparse_categorical_crossentropy", optimizer=optim.adam(3e-3),
                   metrics=["accuracy"], precision=compute)


def test_bfloat16_training_of_the_digits_mlp_reaches_float32_accuracy_with_float32_state():
    digits = data.load("digits", test_size=0.2, seed=0)
    results = {}
    for compute in ("float32", "bfloat16"):
        trainer = digits_trainer(compute)
        state, history = trainer.fit(digits.x_train, digits.y_train, epochs=8, batch_size=64, verbose=0, seed=0)
        results[compute] = (trainer, state, history, trainer.evaluate(state, digits.x_test, digits.y_test))
    _, state, history, low = results["bfloat16"]
    _, _, _, full = results["float32"]
    assert abs(low["accuracy"] - full["accuracy"]) <= 0.015, (low, full)
    assert full["accuracy"] > 0.9
    for leaf in jax.tree_util.tree_leaves((state.params, state.opt_state)):
        assert leaf.dtype in (jnp.float32, jnp.int32), leaf.dtype
    assert all(isinstance(v, float) and np.isfinite(v) for v in history.history["loss"])
    # The same parameters predict differently in bfloat16 (8-bit mantissa) but within its rounding.
    f32, bf16 = (results[c][0].predict(state, digits.x_test[:64]) for c in ("float32", "bfloat16"))
    assert f32.dtype == bf16.dtype == np.float32
    assert 0 < np.max(np.abs(f32 - bf16)) < 0.05


def test_cast_leaves_integers_and_returns_float32_outputs():
    tree = {"x": jnp.ones((2,), jnp.float32), "i": jnp.arange(2)}
    cast = precision.cast_floats(tree, jnp.bfloat16)
    assert cast["x"].dtype == jnp.bfloat16 and cast["i"].dtype == tree["i"].dtype
    assert precision.outputs("bfloat16", cast)["x"].dtype == jnp.float32


def test_an_unknown_precision_names_the_option():
    with pytest.raises(ValueError, match=r"precision must be one of 'float32', 'bfloat16', 'float16', got 'float8'"):
        digits_trainer("float8")


def test_accumulating_4_batches_of_32_equals_batches_of_128_after_20_updates():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int32)

    def fit(batch_size, accumulate):
        trainer = Trainer(MLP(hidden=(8,), outputs=2), loss="sparse_categorical_crossentropy", optimizer=optim.sgd(0.5),
                          accumulate=accumulate)
        return trainer.fit(x, y, epochs=10, batch_size=batch_size, verbose=0, seed=4)[0]

    big, small, plain = fit(128, 1), fit(32, 4), fit(32, 1)
    assert int(small.step) == 4 * int(big.step) == 80
    for a, b in zip(jax.tree_util.tree_leaves(big.params), jax.tree_util.tree_leaves(small.params)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
    moved = [np.max(np.abs(np.asarray(a) - np.asarray(b)))
             for a, b in zip(jax.tree_util.tree_leaves(big.params), jax.tree_util.tree_leaves(plain.params))]
    assert max(moved) > 1e-2, "80 updates at batch 32 must differ from 20 at batch 128"


def test_accumulate_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="accumulate must be > 0, got 0"):
        Trainer(MLP(hidden=(8,), outputs=2), loss="sparse_categorical_crossentropy", accumulate=0)


def test_per_example_gradient_norms_under_bfloat16_agree_with_float32():
    from jdl.callbacks import GradientMonitor

    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=64).astype(np.int32)
    norms = {}
    for compute in ("float32", "bfloat16"):
        monitor = GradientMonitor(every=1, per_example=True)
        trainer = Trainer(MLP(hidden=(16,), outputs=3), loss="sparse_categorical_crossentropy",
                          optimizer=optim.sgd(0.0), precision=compute)
        trainer.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=0, callbacks=[monitor])
        norms[compute] = np.asarray([r["example_norm"] for r in monitor.records])
    assert norms["float32"].shape == (2, 32)
    np.testing.assert_allclose(norms["bfloat16"], norms["float32"], rtol=1e-2)
    assert not np.array_equal(norms["bfloat16"], norms["float32"]), "the bfloat16 pass must have run in bfloat16"
