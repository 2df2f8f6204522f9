"""The probe in a plain Flax loop: per-example norms equal a Python loop of jax.grad; stats equal GradientMonitor's."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jdl
from jdl import cli
from jdl.diagnostics import Recorder, per_example_grad_norms, probe, stats
from jdl.diagnostics.monitor import GradientMonitor
from jdl.diagnostics.probe import mixes_examples
from tests.diagnostics.per_example.cases import init_params


class Attention(nn.Module):
    """A small Transformer classifier from flax's own attention."""

    @nn.compact
    def __call__(self, tokens):
        h = nn.Embed(11, 8)(tokens)
        h = nn.LayerNorm()(h + nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=8)(h))
        h = nn.relu(nn.Dense(8)(h))
        return nn.Dense(3)(h.mean(axis=1))


class ConvNorm(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.LayerNorm()(nn.Conv(3, (3, 3))(x)))
        return nn.Dense(3)(h.reshape(h.shape[0], -1))


class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(4)(x))
        return nn.Dense(3)(h)


def _case(model, x, y):
    params = init_params(model, 0, x[:1])

    def loss_fn(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, xb), yb)

    return params, loss_fn


def _loop_norms(loss_fn, params, x, y):
    """Reference: a Python loop of jax.grad over one-example batches."""
    grad = jax.jit(lambda p, xi, yi: optax.tree.norm(jax.grad(lambda q: loss_fn(q, xi[None], yi[None])[0])(p)))
    return np.asarray([float(grad(params, x[i], y[i])) for i in range(len(x))])


RNG = np.random.RandomState(0)
CASES = {
    "transformer": (Attention(), RNG.randint(0, 11, (6, 4)), RNG.randint(0, 3, 6)),
    "conv_layernorm": (ConvNorm(), RNG.randn(6, 5, 5, 2).astype(np.float32), RNG.randint(0, 3, 6)),
    "dense": (Tiny(), RNG.randn(6, 3).astype(np.float32), RNG.randint(0, 3, 6)),
}


@pytest.mark.parametrize("name", ["transformer", "conv_layernorm"])
def test_a_hand_written_jit_step_gets_exact_per_example_norms(name, monkeypatch):
    model, x, y = CASES[name]
    params, loss_fn = _case(model, x, y)
    shared = []
    original = jdl.diagnostics.per_example.SharedPass.example_norms
    monkeypatch.setattr(jdl.diagnostics.per_example.SharedPass, "example_norms",
                        lambda self, c, w: shared.append(1) or original(self, c, w))
    probed, unshared = probe(loss_fn), probe(loss_fn, share_backward=False)
    tx = optax.sgd(0.1)

    @jax.jit
    def step(params, opt_state, x, y, i):
        loss, grads, st = probed(params, (x, y), i)
        updates, opt_state = tx.update(grads, opt_state, params)
        reference = jax.value_and_grad(lambda p: loss_fn(p, x, y).mean())(params)
        return optax.apply_updates(params, updates), loss, grads, st, reference, unshared(params, (x, y), i)[2]

    _, loss, grads, st, (want_loss, want_grads), other = step(params, tx.init(params), x, y, 0)
    want = _loop_norms(loss_fn, params, x, y)
    np.testing.assert_allclose(np.asarray(st["example_norm"]), want, rtol=1e-5)
    assert shared, "the norms came from the step's own backward pass"
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(want_grads)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-6)
    np.testing.assert_allclose(np.asarray(other["example_norm"]), want, rtol=1e-5)
    assert probed.layer_names[0] == ("Embed_0" if name == "transformer" else "Conv_0")


def test_weights_zero_out_examples_and_the_penalty_stays_out_of_the_per_example_losses():
    model, x, y = CASES["dense"]
    params, loss_fn = _case(model, x, y)
    w = np.asarray([1.0, 2.0, 0.0, 0.5, 1.0, 1.0], np.float32)
    penalty = lambda p: 0.01 * sum(jnp.sum(k ** 2) for k in jax.tree_util.tree_leaves(p))  # noqa: E731
    cost = lambda p: jnp.sum(w * loss_fn(p, x, y)) / w.sum() + penalty(p)  # noqa: E731
    (loss, grads, st), (want_loss, want_grads) = jax.jit(
        lambda p: (probe(loss_fn, penalty=penalty)(p, (x, y, w), 0), jax.value_and_grad(cost)(p)))(params)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(want_grads)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    want = _loop_norms(loss_fn, params, x, y) * (w > 0)
    np.testing.assert_allclose(np.asarray(st["example_norm"]), want, rtol=1e-5)


def test_stats_equal_gradient_monitor_on_the_same_model_and_batch():
    rng = np.random.RandomState(1)
    x = rng.randn(16, 5).astype(np.float32)
    y = np.argmax(x[:, :3], axis=1)
    model = jdl.models.MLP(hidden=(6, 6), outputs=3, activation="tanh")
    trainer = jdl.Trainer(model, loss="sparse_categorical_crossentropy", optimizer=jdl.optim.sgd(0.1))
    monitor = GradientMonitor(every=1, moments=True)
    trainer.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0, callbacks=[monitor])
    params = trainer.init(x, 0).params

    def loss_fn(p, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, xb), yb)

    recorder = Recorder(probed := probe(loss_fn, moments=True, activations="tanh"))
    recorder.record(jax.jit(lambda p: probed(p, (x, y), 0)[2])(params))
    recorder.end_epoch()
    mine, theirs = recorder.log.records[0], monitor.records[0]
    assert list(mine["grad_norm"]) == list(theirs["grad_norm"]) == ["Dense_0", "Dense_1", "Dense_2"]
    for key in ("grad_norm", "param_norm", "gsnr"):
        for layer in theirs[key]:
            assert mine[key][layer] == pytest.approx(theirs[key][layer], rel=1e-5), (key, layer)
    assert mine["noise_scale"] == pytest.approx(theirs["noise_scale"], rel=1e-4)
    np.testing.assert_allclose(mine["example_norm"], theirs["example_norm"], rtol=1e-5)
    for layer, values in theirs["activations"].items():
        for stat, value in values.items():
            assert mine["activations"][layer][stat] == pytest.approx(value, rel=1e-5, abs=1e-7)
    assert recorder.log.top_examples == monitor.top_examples


def test_every_k_steps_records_and_returns_zeros_in_between():
    model, x, y = CASES["dense"]
    params, loss_fn = _case(model, x, y)
    probed = probe(loss_fn, every=2)
    step = jax.jit(lambda p, s: probed(p, (x, y), s))
    on, off = step(params, 4)[2], step(params, 5)[2]
    assert bool(on["on"]) and not bool(off["on"])
    assert float(jnp.sum(off["example_norm"])) == 0.0 and float(jnp.sum(on["example_norm"])) > 0
    np.testing.assert_allclose(step(params, 5)[1]["Dense_0"]["kernel"], step(params, 4)[1]["Dense_0"]["kernel"])
    assert probed.layer_names == ["Dense_0", "Dense_1"]


class NormDrop(nn.Module):
    @nn.compact
    def __call__(self, x, train):
        h = nn.BatchNorm(use_running_average=not train)(nn.Dense(6)(x))
        h = nn.Dropout(0.5, deterministic=not train)(nn.relu(h))
        return nn.Dense(3)(h)


def test_dropout_key_batch_statistics_through_has_aux_and_an_inference_example_loss():
    rng = np.random.RandomState(2)
    x, y = rng.randn(8, 4).astype(np.float32), rng.randint(0, 3, 8)
    model = NormDrop()
    variables = jax.jit(model.init, static_argnames="train")(
        {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, x, train=False)
    params, batch_stats = variables["params"], variables["batch_stats"]
    key = jax.random.PRNGKey(3)

    def train_loss(p, xb, yb, key, bs):
        out, updates = model.apply({"params": p, "batch_stats": bs}, xb, train=True, rngs={"dropout": key},
                                   mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(out, yb), updates["batch_stats"]

    def eval_loss(p, xb, yb, key, bs):
        out = model.apply({"params": p, "batch_stats": bs}, xb, train=False)
        return optax.softmax_cross_entropy_with_integer_labels(out, yb)

    probed = probe(train_loss, has_aux=True, example_loss_fn=eval_loss)
    (loss, new_stats), grads, st = jax.jit(lambda p, bs: probed(p, (x, y), 0, key, bs))(params, batch_stats)
    assert mixes_examples(lambda: train_loss(params, x, y, key, batch_stats))
    reference = jax.jit(jax.grad(lambda p: train_loss(p, x, y, key, batch_stats)[0].mean()))(params)
    for a, b in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(reference)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(new_stats["BatchNorm_0"]["mean"], batch_stats["BatchNorm_0"]["mean"])
    want = _loop_norms(lambda p, xb, yb: eval_loss(p, xb, yb, key, batch_stats), params, x, y)
    np.testing.assert_allclose(np.asarray(st["example_norm"]), want, rtol=1e-5)


def test_bad_loss_functions_and_arguments_are_named_before_tracing():
    model, x, y = CASES["dense"]
    params, loss_fn = _case(model, x, y)
    with pytest.raises(ValueError, match=r"per-example losses, shape \(n,\) = \(6,\).*got \(\)"):
        probe(lambda p, xb, yb: loss_fn(p, xb, yb).mean())(params, (x, y), 0)
    with pytest.raises(ValueError, match="loss_fn must be either ONE example's loss.*failed with"):
        probe(lambda p, xb, yb: loss_fn(p, xb[:, :2], yb))(params, (x, y), 0)
    state = jdl.train.create_state(model, x[:1], "sgd")
    with pytest.raises(TypeError, match=r"state\.params.*TrainState"):
        probe(loss_fn)(state, (x, y), 0)
    with pytest.raises(TypeError, match="batch must be"):
        probe(loss_fn)(params, x, 0)
    with pytest.raises(ValueError, match="every"):
        probe(loss_fn, every=0)
    with pytest.raises(ValueError, match="activation"):
        probe(loss_fn, activations="no-such")


def test_per_example_grad_norms_takes_the_per_example_losses_form_and_names_the_contract():
    model, x, y = CASES["dense"]
    params, loss_fn = _case(model, x, y)
    want = _loop_norms(loss_fn, params, x, y)
    np.testing.assert_allclose(np.asarray(per_example_grad_norms(loss_fn, params, (x, y))), want, rtol=1e-5)
    one = lambda p, xi, yi: loss_fn(p, xi[None], yi[None])[0]  # noqa: E731
    np.testing.assert_allclose(np.asarray(per_example_grad_norms(one, params, (x, y))), want, rtol=1e-5)
    with pytest.raises(ValueError, match=r"loss_fn\(params, x_i, y_i\) -> a scalar.*On one example loss_fn failed"):
        per_example_grad_norms(lambda p, xb, yb: loss_fn(p, xb[:, :2], yb).mean(), params, (x, y))
    state = jdl.train.create_state(model, x[:1], "sgd")
    with pytest.raises(TypeError, match=r"pass state\.params"):
        per_example_grad_norms(loss_fn, state, (x, y))


def test_recorder_writes_a_run_directory_the_report_renders(tmp_path):
    model, x, y = CASES["dense"]
    params, loss_fn = _case(model, x, y)
    probed = probe(loss_fn, every=2, activations="relu")
    tx = optax.sgd(0.1)
    recorder = Recorder(probed, top_k=3)

    @jax.jit
    def step(params, opt_state, i):
        loss, grads, st = probed(params, (x, y), i, index=jnp.arange(6) + 100)
        updates, opt_state = tx.update(grads, opt_state, params)
        new = optax.apply_updates(params, updates)
        return new, opt_state, loss, {**st, "update_ratio": stats.update_ratios(params, new)}

    opt_state = tx.init(params)
    for epoch in range(2):
        for i in range(2):
            params, opt_state, loss, st = step(params, opt_state, 2 * epoch + i)
            recorder.record(st)
        recorder.end_epoch(loss=loss, accuracy=0.5)
    recorder.save(tmp_path, params=params, config={"optimizer": "sgd", "learning_rate": 0.1})
    monitor = json.loads((tmp_path / "monitor.json").read_text())
    assert [r["step"] for r in monitor["records"]] == [0, 2]
    assert monitor["layers"] == ["Dense_0", "Dense_1"] and list(monitor["records"][0]["grad_norm"]) == monitor["layers"]
    assert [m["layer"] for m in json.loads((tmp_path / "model.json").read_text())] == monitor["layers"]
    top = monitor["top_examples"]
    assert len(top) == 3 and all(t["index"] >= 100 and 1 <= t["epoch"] <= 2 and t["count"] >= 1 for t in top)
    assert len({t["index"] for t in top}) == 3
    assert cli.main(["report", str(tmp_path)]) == 0, "jdl report RUN_DIR renders a custom loop's run directory"
    html = (tmp_path / "report.html").read_text()
    assert "Gradient norms per layer" in html and "Training curves" in html and "Per-example gradient norms" in html
