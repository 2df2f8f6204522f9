"""GradientMonitor: what the compiled step records equals an independent computation at the same state."""

import json
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

    grads = jax.jit(jax.grad(lambda p: jnp.mean(jax.vmap(loss_fn, (None, 0, 0))(p, x, y))))(params)
    record = monitor.records[0]
    for layer, value in jax.jit(stats.layer_norms)(grads).items():
        assert record["grad_norm"][layer] == pytest.approx(float(value), rel=1e-5)
    want = np.asarray(per_example_grad_norms(loss_fn, params, (x, y), method="vmap"))
    np.testing.assert_allclose(record["example_norm"], want[record["example_index"]], rtol=1e-5)
    assert [t["index"] for t in monitor.top_examples] == list(np.argsort(-want)[:3])
    g = per_example_grads(loss_fn, params, (x, y))
    total, squares = jax.jit(lambda g: (jax.tree_util.tree_map(lambda a: a.sum(0), g),
                                        jax.tree_util.tree_map(lambda a: (a**2).sum(0), g)))(g)
    for layer, value in jax.jit(stats.gsnr, static_argnums=2)(total, squares, len(x)).items():
        assert record["gsnr"][layer] == pytest.approx(float(value), rel=1e-4)
    expected_scale = float(jax.jit(stats.noise_scale, static_argnums=2)(total, squares, len(x)))
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


def _spy_shared_norms(monkeypatch):
    from jdl.diagnostics import per_example

    calls = []
    original = per_example.SharedPass.example_norms

    def spy(self, captures, w):
        calls.append(self.n)
        return original(self, captures, w)

    monkeypatch.setattr(per_example.SharedPass, "example_norms", spy)
    return calls


def _fit_norms(model, x, y, share, **fit):
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.sgd(0.1))
    monitor = GradientMonitor(every=1, share_backward=share)
    trainer.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[monitor], **fit)
    return [(r["step"], r["example_index"], r["example_norm"], r.get("activations")) for r in monitor.records]


def test_norms_from_the_steps_own_backward_pass_equal_the_separate_pass(monkeypatch):
    rng = np.random.RandomState(1)
    x = rng.randn(40, 5).astype(np.float32)
    y = rng.randint(0, 3, size=40)
    model = jdl.models.MLP(hidden=(7, 6), outputs=3, activation="relu")
    calls = _spy_shared_norms(monkeypatch)
    weights = {0: 1.0, 1: 3.0, 2: 0.5}
    separate = _fit_norms(model, x, y, False, class_weight=weights)
    assert not calls
    shared = _fit_norms(model, x, y, True, class_weight=weights)
    assert calls, "an MLP without dropout takes its per-example norms from the training step's backward pass"
    assert len(shared) == len(separate) == 6, "40 examples in batches of 16: 3 steps per epoch, the last one padded"
    for (step_a, index_a, norms_a, act_a), (step_b, index_b, norms_b, act_b) in zip(shared, separate):
        assert step_a == step_b and index_a == index_b
        np.testing.assert_allclose(norms_a, norms_b, rtol=2e-5)
        assert set(act_a) == set(act_b) == {"Dense_0", "Dense_1"}
        for layer in act_a:
            for name, value in act_a[layer].items():
                assert value == pytest.approx(act_b[layer][name], rel=1e-5, abs=1e-7), (layer, name)
    assert len(shared[2][1]) == 8, "the padded last batch reports only its 8 real examples"


def test_a_monitor_sharing_the_backward_pass_leaves_training_bit_for_bit_unchanged(monkeypatch):
    rng = np.random.RandomState(2)
    x = rng.randn(64, 6).astype(np.float32)
    y = rng.randint(0, 4, size=64)
    calls = _spy_shared_norms(monkeypatch)

    def train(callbacks):
        trainer = jdl.Trainer(jdl.models.MLP(hidden=(16, 16), outputs=4), loss="sparse_categorical_crossentropy",
                              optimizer=jdl.optim.adam(1e-2))
        state, _ = trainer.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=callbacks)
        return jax.tree_util.tree_leaves(state.params)

    for plain, monitored in zip(train([]), train([GradientMonitor(every=1)])):
        np.testing.assert_array_equal(plain, monitored)
    assert calls


def test_models_with_dropout_or_batch_norm_use_the_separate_inference_mode_pass(monkeypatch):
    x, y = studies._digits(32, 0)
    calls = _spy_shared_norms(monkeypatch)
    _fit_norms(jdl.models.MLP(hidden=(8,), outputs=10, dropout=0.5), x, y, True)
    _fit_norms(studies.DeepMLP(width=8, depth=1, batch_norm=True), x, y, True)
    assert not calls


def test_a_train_only_branch_without_randomness_uses_the_separate_pass(monkeypatch):
    import flax.linen as nn

    class TrainScales(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            h = nn.relu(nn.Dense(8)(x))
            return nn.Dense(3)(3.0 * h if train else h)

    rng = np.random.RandomState(3)
    x = rng.randn(32, 5).astype(np.float32)
    y = rng.randint(0, 3, size=32)
    calls = _spy_shared_norms(monkeypatch)
    shared = _fit_norms(TrainScales(), x, y, True)
    assert not calls, "training mode differs from inference mode: the norms come from the inference-mode pass"
    for (_, _, norms_a, _), (_, _, norms_b, _) in zip(shared, _fit_norms(TrainScales(), x, y, False)):
        np.testing.assert_allclose(norms_a, norms_b, rtol=1e-6)


def test_layers_come_in_network_order_on_params_returned_by_fit():
    """jit and tree_map sort dict keys (Dense_10 before Dense_2); records, layers and layer_names keep call order."""
    rng = np.random.RandomState(0)
    x, y = rng.randn(8, 3).astype(np.float32), rng.randint(0, 2, 8)
    model = jdl.models.MLP(hidden=(2,) * 11, outputs=2)
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.sgd(0.1))
    monitor = GradientMonitor(every=1, per_example=False, activations=False)
    state, _ = trainer.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[monitor])
    want = [f"Dense_{i}" for i in range(12)]
    assert list(state.params) != want, "the returned params are sorted: the test needs the order from elsewhere"
    assert monitor.layers == want and list(monitor.records[0]["grad_norm"]) == want
    assert list(monitor.to_dict()["records"][0]["param_norm"]) == want
    assert jdl.diagnostics.layer_names(state.params) == want
    assert jdl.diagnostics.layer_names(state.params, model=model, x=x) == want

    tokens = rng.randint(1, 9, (4, 5))
    classifier = jdl.models.TransformerClassifier(vocab_size=9, max_length=5, embed_dim=8, num_heads=2, ff_dim=8,
                                                  num_layers=1, outputs=2)
    state = jdl.Trainer(classifier, loss="sparse_categorical_crossentropy").init(tokens, 0)
    names = jdl.diagnostics.layer_names(state.params, model=classifier, x=tokens)
    assert names[:2] == ["token_embedding", "position_embedding"] and names.index("head") > names.index("block_0/attention/query")


def test_monitor_log_stays_bounded_and_merges_repeated_top_examples():
    from jdl.diagnostics.recorder import MonitorLog

    log = MonitorLog(every=10, top_k=3, max_records=50)
    layers = [f"Dense_{i}" for i in range(10)]
    rng = np.random.RandomState(0)
    per_epoch = 20
    for epoch in range(100):
        steps = 10 * (epoch * per_epoch + np.arange(per_epoch))
        norms = rng.rand(per_epoch, 32) + 0.1
        index = rng.randint(100, 60000, (per_epoch, 32))
        norms[:, 0], index[:, 0] = 5.0 + epoch * 1e-3, 11  # the same hard example in every batch
        per_layer = {name: np.full(per_epoch, 0.5) for name in layers}
        log.add_chunk(epoch, {"on": np.ones(per_epoch, bool), "step": steps, "grad_norm": per_layer,
                              "param_norm": per_layer, "update_ratio": per_layer, "gsnr": per_layer,
                              "finite": {name: np.ones(per_epoch, bool) for name in layers},
                              "noise_scale": np.full(per_epoch, 3.0), "example_norm": norms, "index": index,
                              "activations": {name: {s: np.zeros(per_epoch) for s in ("mean", "std", "saturated", "dead")}
                                              for name in layers}}, layers)
    text = json.dumps(log.to_dict(), indent=2)
    assert len(text) < 20e6 * 50 / 2000 and len(log.records) <= 50 and log.thinned > 1
    steps = [r["step"] for r in log.records]
    assert steps == sorted(steps) and len(set(np.diff(steps))) == 1, "evenly thinned"
    assert sum(log.to_dict()["example_norm_histogram"]["counts"]) == 100 * per_epoch * 32
    top = log.top_examples
    assert top[0] == {"index": 11, "norm": pytest.approx(5.099), "step": 10 * 99 * per_epoch,
                      "epoch": 100, "count": 100 * per_epoch}
    assert len({t["index"] for t in top}) == 3
