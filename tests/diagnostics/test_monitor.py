"""GradientMonitor: what the compiled step records equals an independent computation at the same state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.diagnostics import per_example_grad_norms, per_example_grads, stats, studies
from jdl.diagnostics.monitor import GradientMonitor


@pytest.fixture(scope="module")
def monitored_fit():
    rng = np.random.RandomState(0)
    x = rng.randn(48, 6).astype(np.float32)
    y = np.argmax(x[:, :3], axis=1)  # learnable, so the mean gradient stands above the noise at init
    model = jdl.models.MLP(hidden=(8,), outputs=3, activation="tanh")
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.sgd(0.1))
    monitor = GradientMonitor(every=2, moments=True, top_k=3)
    state, _ = trainer.fit(x, y, epochs=2, batch_size=48, shuffle=False, verbose=0, callbacks=[monitor])
    return trainer, model, x, y, monitor


def test_records_every_k_steps_with_the_gradient_of_that_step(monitored_fit):
    trainer, model, x, y, monitor = monitored_fit
    assert [r["step"] for r in monitor.records] == [0]
    params = trainer.init(x, 0).params

    def loss_fn(p, xi, yi):
        return -jax.nn.log_softmax(model.apply({"params": p}, xi[None])[0])[yi]

    grads = jax.grad(lambda p: jnp.mean(jax.vmap(loss_fn, (None, 0, 0))(p, x, y)))(params)
    record = monitor.records[0]
    for layer, value in stats.layer_norms(grads).items():
        assert record["grad_norm"][layer] == pytest.approx(float(value), rel=1e-5)
    want = np.asarray(per_example_grad_norms(loss_fn, params, (x, y), method="vmap"))
    np.testing.assert_allclose(record["example_norm"], want[record["example_index"]], rtol=1e-5)
    assert [i for _, i, _ in monitor.top_examples] == list(np.argsort(-want)[:3])
    g = per_example_grads(loss_fn, params, (x, y))
    total = jax.tree_util.tree_map(lambda a: a.sum(0), g)
    squares = jax.tree_util.tree_map(lambda a: (a**2).sum(0), g)
    for layer, value in stats.gsnr(total, squares, len(x)).items():
        assert record["gsnr"][layer] == pytest.approx(float(value), rel=1e-4)
    expected_scale = float(stats.noise_scale(total, squares, len(x)))
    assert np.isfinite(expected_scale) and record["noise_scale"] == pytest.approx(expected_scale, rel=1e-4)
    assert set(record["activations"]) == {"Dense_0"} and 0 <= record["activations"]["Dense_0"]["saturated"] <= 1


def test_warns_in_plain_words_when_the_first_layers_barely_learn():
    x, y = studies._digits(128, 0)
    model = studies.DeepMLP(width=32, depth=6, activation="sigmoid", kernel_init="uniform")
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.sgd(0.01))
    monitor = GradientMonitor(every=1, per_example=False)
    with pytest.warns(RuntimeWarning, match="orders of magnitude below layer"):
        trainer.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[monitor])
    assert any("Dense_0" in w for w in monitor.warnings)
    assert monitor.records[0]["activations"]["Dense_1"]["saturated"] >= 0.0


def test_monitor_arguments_are_checked():
    with pytest.raises(ValueError, match="every"):
        GradientMonitor(every=0)
    with pytest.raises(TypeError, match="per_example"):
        GradientMonitor(per_example="yes")
